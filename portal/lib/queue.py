"""The job queue: SAQ on the portal's PostgreSQL by default, on Redis when QUEUE_URL says so.

The database row is the truth and the queue only nudges: write state first, enqueue after commit
with a dedupe key, and let a sweeper re-enqueue anything left pending.
"""

from __future__ import annotations

from piccolo.engine import engine_finder
from saq import Queue

from portal.settings import Settings

QUEUE_NAME = "portal"
_queue: Queue | None = None


def queue_dsn(settings: Settings, database_dsn: str) -> str:
    return settings.queue_url or database_dsn


def make_queue(settings: Settings, database_dsn: str) -> Queue:
    url = queue_dsn(settings, database_dsn)
    if url.startswith(("redis://", "rediss://")):
        return Queue.from_url(url, name=QUEUE_NAME)
    return Queue.from_url(url.replace("postgres://", "postgresql://", 1), name=QUEUE_NAME, min_size=1, max_size=5)


async def start(settings: Settings, *, pool_size: int) -> Queue:
    """What a serving process opens first (the web app and a worker alike): the database pool,
    then the queue, which becomes this process's queue."""
    settings.check_for_serving()
    engine = engine_finder()
    await engine.start_connection_pool(min_size=1, max_size=pool_size)
    queue = make_queue(settings, engine.config["dsn"])
    await queue.connect()
    set_queue(queue)
    return queue


def set_queue(queue: Queue | None) -> None:
    global _queue
    _queue = queue


def get_queue() -> Queue:
    if _queue is None:
        raise RuntimeError("queue not started")
    return _queue


async def enqueue(function: str, *, key: str | None = None, timeout: int = 60, retries: int = 3, **kwargs):
    """Enqueue after the state is committed; `key` makes a repeat a no-op while the job lives."""
    return await get_queue().enqueue(function, key=key, timeout=timeout, retries=retries, **kwargs)
