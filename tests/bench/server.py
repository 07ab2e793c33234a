"""`portal run` as its own process on a bench database: what the benchmark times over real HTTP,
as a gym's PC or server would serve it (uvicorn, the app's own pool, the sandbox off so no
gateway is called, no worker in the process so its sweepers do not compete with the client)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.servers import free_port

HOOK_TOKEN = "bench-hook-token-12345"


@contextlib.contextmanager
def portal_run(url: str, **env_extra: str) -> Iterator[str]:
    """Serve the bench database at `url` until the block ends; yields the base URL."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "PORT": str(port), "DEMO": "0", "SANDBOX": "0",
           "WORKER_IN_PROCESS": "0", "DARAJA_CALLBACK_TOKEN": HOOK_TOKEN, "LOG_LEVEL": "WARNING",
           "API_RATE_PER_MINUTE": "100000", **env_extra}
    output = tempfile.TemporaryFile()  # a pipe nobody reads would block the server when full
    proc = subprocess.Popen([str(Path(sys.executable).parent / "portal"), "run"], env=env,
                            stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                output.seek(0)
                raise AssertionError("portal run stopped:\n" + output.read().decode(errors="replace")[-4000:])
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "portal run did not start in 120 s"
            time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
