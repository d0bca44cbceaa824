"""Cost of the model's content hash (the resume key, ``benchcal_eval.identity``): first hash of a
large weight file versus a re-run served from the (path, device, inode, size, mtime, ctime) cache.

    .venv/bin/python benchmarks/bench_identity.py --gb 1

Writes a file of random bytes (not zeros: no filesystem shortcut) under --dir, drops it from the
page cache where the OS allows (posix_fadvise DONTNEED), then times ``file_sha256`` twice.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        os.environ["BENCHCAL_HASH_CACHE"] = str(Path(tmp) / "hashes.json")
        from benchcal_eval.identity import file_sha256

        path = Path(tmp) / "model.safetensors"
        size = int(args.gb * (1 << 30))
        block = os.urandom(8 << 20)
        with open(path, "wb") as fh:
            for _ in range(size // len(block)):
                fh.write(block)
            fh.flush()
            os.fsync(fh.fileno())
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        cpu0, t0 = time.process_time(), time.monotonic()
        digest = file_sha256(path)
        first, first_cpu = time.monotonic() - t0, time.process_time() - cpu0
        t1 = time.monotonic()
        assert file_sha256(path) == digest
        cached = time.monotonic() - t1
        print(f"file: {size / (1 << 30):.2f} GiB ({size} bytes), sha256 {digest[:16]}...")
        print(
            f"first hash: {first:.2f} s wall, {first_cpu:.2f} s CPU ({size / first / 1e6:.0f} MB/s); "
            f"re-run (cache hit): {cached * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
