"""`portal run` the way `make run` starts it: embedded PostgreSQL, demo data, clean Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from tests.support.servers import free_port

BIN = Path(sys.executable).parent


def _env(data_dir: Path, port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "QUEUE_URL", "SECRET_KEY")}
    env.update(DATA_DIR=str(data_dir), PORT=str(port), SANDBOX_PORT=str(free_port()), DEMO="1", SANDBOX="1",
               WORKER_IN_PROCESS="1")
    return env


class Run(subprocess.Popen):
    """`portal run` writing to a file, not a pipe: a pipe nobody reads while the demo loads fills
    up and blocks the process on a log line (it then never answers, the slower the machine the
    likelier). communicate() returns what it wrote."""

    def communicate(self, timeout=None):
        self.wait(timeout)
        self.output.seek(0)
        return self.output.read(), b""


def _start(env: dict, port: int, timeout: float = 180) -> tuple[Run, float]:
    t0 = time.monotonic()
    output = tempfile.TemporaryFile()
    proc = Run([str(BIN / "portal"), "run"], env=env, stdout=output, stderr=subprocess.STDOUT)
    proc.output = output
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, proc.communicate()[0].decode()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("portal run did not answer /healthz")


def _postgres_for(data_dir: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if p.info["name"] == "postgres" and str(data_dir) in " ".join(p.info["cmdline"] or []):
                found.append(p)
        except psutil.Error:
            pass
    return found


def test_run_serves_demo_and_ctrl_c_leaves_nothing_behind(tmp_path):
    port = free_port()
    env = _env(tmp_path, port)
    proc, first = _start(env, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as web:
            login = web.get("/login")
            assert "Demo logins" in login.text
            token = web.cookies["portal_csrf"]
            r = web.post("/login", data={"username": "frontdesk", "password": "frontdesk", "_csrf_token": token})
            assert r.status_code == 303
            members = web.get("/members")
            assert "200 members" in members.text
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, out
    assert "sandbox Paybill URLs registered: Success" in out  # the demo's Pay Bill page reaches us
    time.sleep(0.5)
    assert _postgres_for(tmp_path / "pgdata") == []
    assert json.loads((tmp_path / "pgdata" / ".handle_pids.json").read_text()) == []

    # A second start reuses the data (no demo reload) and is quick.
    proc, second = _start(env, port)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0
    assert "demo data:" not in out
    assert second < first
    assert _postgres_for(tmp_path / "pgdata") == []


def test_db_stop_cleans_up_after_a_crash(tmp_path):
    port = free_port()
    env = _env(tmp_path, port)
    proc, _ = _start(env, port)
    proc.kill()  # a crash: no shutdown hooks run
    proc.wait()
    assert _postgres_for(tmp_path / "pgdata"), "the server outlives a crashed portal"
    r = subprocess.run([str(BIN / "portal"), "db", "stop"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "stopped" in r.stdout
    time.sleep(0.5)
    assert _postgres_for(tmp_path / "pgdata") == []
    # and the next start recovers (the dead pid in the handle file is pruned)
    proc, _ = _start(env, port)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert _postgres_for(tmp_path / "pgdata") == []
