"""Debian's chromium, headless, for tests of the HTML report: DOM after scripts ran, screenshots,
and real mouse clicks through the DevTools protocol.

Without chromium a test skips on a developer machine and fails under CI (tests/real_parts.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.real_parts import missing

# No network, no first-run work, no background services: the page must stand on its own.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND")  # fmt: skip
TIMEOUT_S = 120


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        missing("chromium is not on PATH; apt-get install -y chromium (.ci/run does)")
    return path


def _run(profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def dump_dom(url: str, profile: Path) -> str:
    """The DOM after the page's scripts ran."""
    done = _run(profile, "--virtual-time-budget=5000", "--dump-dom", url)
    assert done.returncode == 0 and done.stdout.strip(), done.stderr[-2000:]
    return done.stdout


def screenshot(url: str, out: Path, profile: Path, size: tuple[int, int] = (1280, 1600)) -> Path:
    done = _run(
        profile, f"--window-size={size[0]},{size[1]}", "--hide-scrollbars", f"--screenshot={out}", url
    )
    assert done.returncode == 0 and out.is_file(), done.stderr[-2000:]
    return out


class DevTools:
    """One headless chromium on a page, driven over the DevTools protocol (websocket)."""

    def __init__(self, url: str, profile: Path, size: tuple[int, int] = (1280, 1000)) -> None:
        import websocket  # websocket-client (dev extra)

        self._proc = subprocess.Popen(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             f"--window-size={size[0]},{size[1]}", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            port = self._port(profile / "DevToolsActivePort")
            page = self._page(port)
            self._ws = websocket.create_connection(page, timeout=30, suppress_origin=True)
        except BaseException:
            self.close()
            raise
        self._id = 0

    def _port(self, marker: Path) -> int:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self._proc.returncode}")
            if marker.is_file() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            time.sleep(0.1)
        raise TimeoutError("chromium wrote no DevToolsActivePort")

    def _page(self, port: int) -> str:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
                pages = [t for t in json.load(resp) if t["type"] == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.1)
        raise TimeoutError("no page target")

    def call(self, method: str, **params) -> dict:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(expression)
            time.sleep(0.1)

    def click(self, selector: str) -> None:
        """A real left click (mouse pressed + released) at the element's centre, scrolled into view."""
        x, y = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView();"
            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def close(self) -> None:
        ws = getattr(self, "_ws", None)
        if ws is not None:
            ws.close()
        # chromium's own process group: the browser and the helpers it started, nothing else
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self._proc.pid, sig)
                self._proc.wait(timeout=20)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> DevTools:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
