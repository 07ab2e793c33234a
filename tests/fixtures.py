"""Shared fixtures: the migrated database, the queue, a real worker, the app and its personas."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import pytest_asyncio
from piccolo.apps.user.tables import BaseUser

from tests.support.client import PortalClient

# PBKDF2's work factor is a production cost, not behaviour: 600,000 rounds per persona per test
# would make the suite slow for nothing. Hashing, verifying and re-hashing work the same.
BaseUser._pbkdf2_iteration_count = 1_000

TABLES_TO_EMPTY = ["ledger_leg", "ledger_entry", "allocation", "payment_event", "credit_note", "document",
                   "document_counter", "invoice_line", "payment", "invoice", "membership", "member", "plan", "staff",
                   "sessions", "piccolo_user", "login_attempt", "audit_log", "location", "gateway_token", "rate_limit", "day_close", "message", "webhook_event", "webhook_endpoint", "webhook_hold",
                   "catalogue_item", "payment_figure", "gateway_line"]


@pytest.fixture(scope="session")
def settings():
    from portal.settings import get_settings

    return get_settings()


@pytest_asyncio.fixture(scope="session")
async def _database(settings):
    from piccolo.engine import engine_finder

    from portal.cli import migrate

    await migrate()
    engine = engine_finder()
    await engine.start_connection_pool(min_size=1, max_size=10)
    yield engine
    await engine.close_connection_pool()


async def empty_tables(engine) -> None:
    # The audit log refuses TRUNCATE by trigger; a superuser test session may switch triggers off.
    from asyncpg.exceptions import DeadlockDetectedError
    from piccolo.querystring import QueryString

    # The browser tests' live server runs its own worker and crons, which may be acting on these
    # tables at any moment: TRUNCATE takes its locks table by table, so a job holding one table and
    # reaching for another (a foreign key's check) deadlocks with it. PostgreSQL then rolls one of
    # the two back; when that is us, nothing was emptied and trying again is the whole remedy.
    for attempt in range(5):
        try:
            async with engine.transaction():
                await engine.run_querystring(QueryString("SET LOCAL session_replication_role = replica"))
                # A session left holding a lock (a leaked transaction) must fail this test loudly,
                # not stall the whole run: TRUNCATE waits for every lock on the tables.
                await engine.run_querystring(QueryString("SET LOCAL lock_timeout = '30s'"))
                await engine.run_querystring(
                    QueryString(f"TRUNCATE {', '.join(TABLES_TO_EMPTY)} RESTART IDENTITY CASCADE"))
                await engine.run_querystring(QueryString("ALTER SEQUENCE member_number_seq RESTART WITH 1"))
            return
        except DeadlockDetectedError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))


@pytest_asyncio.fixture
async def db(_database):
    """A migrated, empty database; emptied again after the test (committed rows are visible to
    the worker and to server processes, which rolled-back transactions would not be)."""
    await empty_tables(_database)
    yield _database
    await empty_tables(_database)


@pytest_asyncio.fixture(scope="session")
async def _queue(settings, _database):
    from portal.lib import queue

    q = queue.make_queues(settings, _database.config["dsn"])
    await q.connect()
    queue.set_queue(q)
    yield q
    queue.set_queue(None)
    await q.disconnect()


async def empty_queue(queues) -> None:
    """Every queue (gateway and bulk) emptied."""
    for q in queues:
        if hasattr(q, "redis"):
            keys = [k async for k in q.redis.scan_iter(match="saq:*")]
            if keys:
                await q.redis.delete(*keys)
        else:
            async with q.pool.connection() as conn:
                await conn.execute("DELETE FROM saq_jobs")


@pytest_asyncio.fixture
async def queue(_queue, db):
    """The SAQ queues (portal.lib.queue.Queues: `enqueue`/`apply` go to the function's queue), empty
    (stale cron rows would block crons: job keys are global on Postgres)."""
    await empty_queue(_queue)
    yield _queue
    await empty_queue(_queue)


@contextlib.asynccontextmanager
async def running_worker(settings, queue):
    """Real SAQ workers (one per queue) with the production functions, cron and concurrency,
    running on the test's loop until the block ends (a test that starts them late uses this)."""
    from tasks.worker import make_worker

    w = make_worker(settings, queue, in_process=True)
    task = asyncio.create_task(w.start())
    try:
        yield w
    finally:
        try:
            await asyncio.wait_for(w.stop(), 20)
        except asyncio.TimeoutError:  # say so loudly, but do not hang the rest of the suite on it
            import warnings

            warnings.warn("the SAQ worker did not stop within 20 s", stacklevel=1)
        task.cancel()


@pytest_asyncio.fixture
async def worker(settings, queue):
    async with running_worker(settings, queue) as w:
        yield w


@pytest.fixture
def app(settings):
    """The app with the settings in force now (gateway tests point them at the sandbox first)."""
    from portal.app import create_app
    from portal.settings import get_settings

    return create_app(get_settings(), manage_resources=False)


@pytest_asyncio.fixture
async def anon(app, db, queue):
    async with PortalClient(app) as client:
        yield client


async def _persona(app, username: str, role: str, first: str) -> PortalClient:
    from portal.auth import create_staff

    await create_staff(username, f"{username}-password-1", role, first_name=first)
    client = PortalClient(app)
    await client.__aenter__()
    await client.login(username, f"{username}-password-1")
    return client


@pytest_asyncio.fixture
async def alice(app, db, queue):
    """Front desk."""
    client = await _persona(app, "alice", "front_desk", "Alice")
    yield client
    await client.__aexit__()


@pytest_asyncio.fixture
async def bob(app, db, queue):
    """Manager."""
    client = await _persona(app, "bob", "manager", "Bob")
    yield client
    await client.__aexit__()


@pytest_asyncio.fixture
async def carol(app, db, queue):
    """Admin."""
    client = await _persona(app, "carol", "admin", "Carol")
    yield client
    await client.__aexit__()
