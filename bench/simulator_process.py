"""The venue simulator in a process of its own, as the venues are to a real deployment: a simulator serving
from threads of the benchmark's own process would take the interpreter lock from the client it is timing."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from positioning.sim import free_port

POSITIONING = Path(sys.executable).with_name("positioning")


@contextlib.contextmanager
def simulator_process(seed: int = 7, latency: float = 0.0, now_ms: int | None = None) -> Iterator[str]:
    """``positioning sim`` on a free 127.0.0.1 port; yields its base URL and stops it on exit."""
    port = free_port()
    command = [str(POSITIONING), "sim", "--port", str(port), "--seed", str(seed), "--latency", str(latency)]
    if now_ms is not None:
        command += ["--now-ms", str(now_ms)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1.0)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the simulator did not start on {url}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
