"""Results on an S3-protocol object store (moto's standalone server): written, resumed, and a
pod killed mid-upload that loses nothing (issue 12 §5)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchcal import storage
from benchcal.app.cli import main
from benchcal.results import read_summary, stored_keys
from tests.evaluator.tiny_checkpoint import tiny_checkpoint_dir, write_tiny_tasks
from tests.s3_server import moto_server

pytest.importorskip("s3fs", reason="the s3 extra (s3fs) is part of dev")

REPO = Path(__file__).resolve().parents[2]

# The evaluator CLI in a child process whose upload of one pair's result is a real HTTP PUT to
# the server that stops half-way (the connection stays open, as when a pod is SIGKILLed while
# sending): it announces that through MARKER and waits to be killed.
KILLED_MID_UPLOAD = """
import http.client, os, sys, time, urllib.parse
from benchcal import storage
from benchcal.app.cli import main

victim, marker = os.environ["VICTIM"], os.environ["MARKER"]
real_write = storage.write_bytes

def write_bytes(loc, data):
    if f"/results/{victim}/" not in str(loc):
        return real_write(loc, data)
    endpoint = urllib.parse.urlparse(os.environ["AWS_ENDPOINT_URL"])
    conn = http.client.HTTPConnection(endpoint.hostname, endpoint.port)
    conn.putrequest("PUT", "/" + str(loc)[len("s3://"):])
    conn.putheader("Content-Length", str(len(data)))
    conn.endheaders()
    conn.send(data[: len(data) // 2])
    open(marker, "w").close()
    time.sleep(600)

storage.write_bytes = write_bytes
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def s3_env():
    with moto_server() as env:
        yield env


@pytest.fixture()
def bucket(s3_env, monkeypatch) -> str:
    for k, v in s3_env.items():
        monkeypatch.setenv(k, v)
    import fsspec

    name = f"results-{os.urandom(4).hex()}"
    fsspec.filesystem("s3").mkdir(name)
    return name


def _argv(task_file: Path, out: str, tasks: str = "tiny_mc,tiny_schema") -> list[str]:
    return ["evaluate", "--model", str(tiny_checkpoint_dir()), "--tasks", tasks, "--shots", "0",
            "--task-file", str(task_file), "--out", out, "--device", "cpu"]  # fmt: skip


def test_storage_round_trip_on_s3(bucket):
    url = f"s3://{bucket}/run/checkpoints/c0"
    storage.write_text(storage.join(url, "results", "x", "0shot.json"), "{}")
    assert storage.list_dir(storage.join(url, "results", "x")) == ["0shot.json"]
    assert storage.read_text(f"{url}/results/x/0shot.json") == "{}"
    assert not storage.exists(f"{url}/results/x/1shot.json")
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(f"{url}/nothing.json")


def test_results_on_s3_are_written_and_resumed(bucket, tmp_path, caplog):
    task_file = write_tiny_tasks(tmp_path / "tasks")
    url = f"s3://{bucket}/run/checkpoints/c0"
    assert main(_argv(task_file, url)) == 0
    summary = read_summary(url)
    assert sorted(r.benchmark for r in summary.results) == ["tiny_mc", "tiny_schema"]
    caplog.set_level(logging.INFO, logger="benchcal.evaluate")
    assert main(_argv(task_file, url)) == 0
    assert sum("already done" in r.getMessage() for r in caplog.records) == 2


def test_a_pod_killed_mid_upload_resumes_and_loses_nothing(bucket, tmp_path, s3_env, caplog):
    task_file = write_tiny_tasks(tmp_path / "tasks")
    url = f"s3://{bucket}/run/checkpoints/c0"
    marker = tmp_path / "uploading"
    env = {**os.environ, **s3_env, "VICTIM": "tiny_schema", "MARKER": str(marker)}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_UPLOAD, *_argv(task_file, url)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 600
        while not marker.exists():
            assert child.poll() is None, child.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the child never reached the upload"
            time.sleep(0.2)
        os.kill(child.pid, signal.SIGKILL)  # as the kubelet kills a pod: no cleanup runs
    finally:
        child.kill()
        child.wait()
        child.stderr.close()
    # the pair finished before the kill is stored; the half-sent one left no object at all
    (mc_key,) = stored_keys(url, "tiny_mc", 0)
    mc_path = f"{url}/results/tiny_mc/0shot.{mc_key}.json"
    mc_before = storage.read_bytes(mc_path)
    assert json.loads(mc_before)["config_key"] == mc_key
    assert storage.list_dir(f"{url}/results/tiny_schema") == []
    # the re-run (the Job's next pod) resumes: the finished pair is reused, the other computed
    caplog.set_level(logging.INFO, logger="benchcal.evaluate")
    assert main(_argv(task_file, url)) == 0
    done = [r.getMessage() for r in caplog.records if "already done" in r.getMessage()]
    assert len(done) == 1 and "tiny_mc" in done[0]
    assert storage.read_bytes(mc_path) == mc_before
    summary = read_summary(url)
    assert sorted(r.benchmark for r in summary.results) == ["tiny_mc", "tiny_schema"]
    assert len(stored_keys(url, "tiny_schema", 0)) == 1


def test_the_reducer_writes_its_report_to_s3(bucket, tmp_path):
    from tests.reducer.tables import make_table
    from tests.reducer.test_report import SERIES

    table = tmp_path / "in.csv"
    make_table(SERIES).to_csv(table, index=False)
    url = f"s3://{bucket}/run/report"
    assert main(["reduce", str(table), "--out", url, "--no-figures", "--bootstrap", "0"]) == 0
    names = storage.list_dir(url)
    assert {"classification.csv", "per_shot.csv", "summary.json", "report.md"} <= set(names)
    assert json.loads(storage.read_text(f"{url}/summary.json"))["options"]["bootstrap"] == 0
