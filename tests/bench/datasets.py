"""The benchmark's data sets: one database per size on the test server, named `..._bench`, loaded
by the real command (`portal demo-data --members N --payments N`, timed) and kept for later runs
on the same day. The data is laid out relative to the day it was loaded (what is due, today's
close), so a set from an earlier day is loaded again; BENCH_RELOAD=1 always loads afresh."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SEED = 7
PORTAL = str(Path(sys.executable).parent / "portal")


@dataclass
class DataSet:
    members: int
    payments: int
    url: str
    load_seconds: float | None  # None: kept from an earlier run (see `note`)
    note: str

    @property
    def label(self) -> str:
        return f"{_short(self.members)}/{_short(self.payments)}"


def _short(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 and n >= 1000 else str(n)


def _database_url(name: str) -> str:
    """The session's test database URL with another database name (same server, same socket)."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{name}"))


def _portal(*args: str, url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "DEMO": "1", "SANDBOX": "0", "WORKER_IN_PROCESS": "0"}
    subprocess.run([PORTAL, *args], env=env, check=True)


def prepare(members: int, payments: int) -> DataSet:
    import psycopg

    from portal.lib.clock import today

    # BENCH_DB_PREFIX: sessions sharing one server keep their data sets apart (default "portal").
    name = f"{os.environ.get('BENCH_DB_PREFIX', 'portal')}_{_short(members)}_{_short(payments)}_bench".lower()
    url = _database_url(name)
    marker = f"bulk demo data: {members} members, {payments} payments, seed {SEED}, loaded {today().isoformat()}"
    maintenance = os.environ["PORTAL_TEST_MAINTENANCE_URL"]
    with psycopg.connect(maintenance, autocommit=True) as conn:
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                           (name,)).fetchone()
        if row and (row[0] or "").startswith(marker) and os.environ.get("BENCH_RELOAD") != "1":
            _portal("migrate", url=url)  # indexes added since apply to the kept data too
            return DataSet(members, payments, url, None, row[0])
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    print(f"\nloading {members:,} members / {payments:,} payments into {name}…", flush=True)
    started = time.monotonic()
    _portal("demo-data", "--members", str(members), "--payments", str(payments), "--seed", str(SEED), url=url)
    seconds = time.monotonic() - started
    note = f"{marker} in {seconds:.0f} s"
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{note}'")
    return DataSet(members, payments, url, seconds, note)
