"""The job queues: SAQ on the portal's PostgreSQL by default, on Redis when QUEUE_URL says so.

The database row is the truth and the queue only nudges: write state first, enqueue after commit
with a dedupe key, and let a sweeper re-enqueue anything left pending.

Two queues, each with its own workers, so that neither waits behind the other:
- GATEWAY: someone is waiting on it (a member's phone for a prompt, a gateway for a check, a
  reversal or a refund) and the sweepers that keep the queue's promises. Small jobs that mostly
  wait on the network.
- BULK: work that comes by the hundred or thousand and may take minutes to drain (PDFs,
  messages, the daily reminder and digest runs, the nightly renewal invoices).
Callers name the function only; `ROUTES` is the one place that says which queue runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools

from piccolo.engine import engine_finder
from saq import Queue
from saq.job import Status
from saq.queue.redis import RedisQueue

from portal.lib import db, logs
from portal.settings import Settings

# The gateway queue keeps the name of the single queue it was split from, so jobs queued before
# an upgrade are still found (its worker knows every function for that reason: tasks.worker).
GATEWAY = "portal"
BULK = "portal-bulk"

ROUTES = {
    "send_stk_push": GATEWAY, "check_stk": GATEWAY, "send_reversal": GATEWAY, "send_card_refund": GATEWAY,
    "sweep_mpesa": GATEWAY, "sweep_card_checkouts": GATEWAY, "sweep_card_refunds": GATEWAY,
    "sweep_messages": GATEWAY, "sweep_documents": GATEWAY, "sweep_webhooks": GATEWAY,
    # A quick status flip that must be done when the gym opens, whatever else is queued.
    "refresh_memberships": GATEWAY,
    "render_document": BULK, "send_message": BULK, "send_daily_reminders": BULK, "send_daily_digest": BULK, "send_weekly_money_edits": BULK,
    "raise_renewal_invoices": BULK, "run_backup": BULK,
    # Other systems' receivers: one slow or down must never hold a member's M-Pesa prompt.
    "deliver_webhooks": BULK,
    # Reconciliation: a manager may be waiting on "Pull now"; each run is a few Daraja pages.
    "pull_paybill": GATEWAY,
    # Reconciliation: a nightly pass over a gateway's own books (it may credit a card payment).
    "cards_daily_pass": GATEWAY,
    # Reconciliation: a large statement uploaded on the web (a manager watches its bar): bulk work.
    "import_statement_upload": BULK,
}


def route(function: str) -> str:
    """The queue that runs `function` (a name ROUTES does not know is a bug, said at once)."""
    try:
        return ROUTES[function]
    except KeyError:
        raise LookupError(f"job {function!r} has no queue: add it to portal.lib.queue.ROUTES") from None


class Queues:
    """The portal's queues used as one: enqueue and apply go to the function's queue; counts and
    look-ups by key span them all."""

    def __init__(self, queues: dict[str, Queue]):
        self.by_name = queues

    def __iter__(self):
        return iter(self.by_name.values())

    def for_function(self, function: str) -> Queue:
        return self.by_name[route(function)]

    async def connect(self) -> None:
        for q in self:
            await q.connect()

    async def disconnect(self) -> None:
        for q in self:
            await q.disconnect()

    async def enqueue(self, function: str, **kwargs):
        return await self.for_function(function).enqueue(function, **_traced(kwargs))

    async def apply(self, function: str, **kwargs):
        return await self.for_function(function).apply(function, **_traced(kwargs))

    async def job(self, key: str):
        for q in self:
            found = await q.job(key)
            if found is not None:
                return found
        return None

    async def count(self, kind) -> int:
        return sum(await asyncio.gather(*(q.count(kind) for q in self)))


def _traced(kwargs: dict) -> dict:
    """The job's kwargs with the request id of the request (or job) queueing it in the job's
    metadata, not its arguments: the worker's lines for the job carry it (tasks.worker)."""
    request_id = logs.bound().get("request_id")
    if request_id and "meta" not in kwargs:
        return {**kwargs, "meta": {"request_id": request_id}}
    return kwargs


def concurrency(settings: Settings, name: str) -> int:
    """How many of a queue's jobs a worker process runs at once."""
    return settings.worker_gateway_concurrency if name == GATEWAY else settings.worker_bulk_concurrency


def job_slots(settings: Settings, names=(GATEWAY, BULK)) -> int:
    """Database connections a worker process needs so that no job waits for one (a job on one
    queue never waits for a connection another queue's job holds)."""
    return sum(concurrency(settings, name) for name in names)


_queues: Queues | None = None


def queue_dsn(settings: Settings, database_dsn: str) -> str:
    return settings.queue_url or database_dsn


class PatientRedisQueue(RedisQueue):
    """SAQ's Redis queue with one race closed (tobymao/saq#124, #277).

    A worker takes a job by moving its id to the active list and only then, a round trip later,
    marks the job active. SAQ's sweep aborts any job on the active list that is not marked active,
    so a sweep landing in between aborted a job nobody had run: with no retry left (the nightly
    backup's cron) the job was simply lost. Here a job found still marked queued on the active list
    is left alone the first time this process sees it; only if it is still like that at the next
    sweep (its worker died between the two steps) is it swept, as SAQ would have."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._in_transit: set[bytes] = set()
        self._active_ids = None

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        if self._active_ids is None:
            # The lock makes one process sweep a queue at a time, as SAQ's own sweep does.
            self._active_ids = self.redis.register_script(
                """
                if redis.call('EXISTS', KEYS[1]) == 1 then return {} end
                redis.call('SETEX', KEYS[1], ARGV[1], 1)
                local found = {}
                for i, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
                    found[i] = {id, redis.call('GET', id)}
                end
                return found
                """
            )
        found = await self._active_ids(keys=[self._sweep, self._active], args=[lock], client=self.redis)
        seen_before, self._in_transit = self._in_transit, set()
        swept = []
        for job_id, job_bytes in found:
            job = self.deserialize(job_bytes)
            if job is None:  # its record expired: nothing to abort, only the list entry to drop
                swept.append(job_id)
                async with self.redis.pipeline(transaction=True) as pipe:
                    await pipe.lrem(self._active, 0, job_id).zrem(self._incomplete, job_id).execute()
                continue
            if job.status == Status.QUEUED and job_id not in seen_before:
                self._in_transit.add(job_id)
                continue
            if job.status == Status.ACTIVE and not job.stuck:
                continue
            swept.append(job_id)
            await self.abort(job, error=self.swept_error_message)
            with contextlib.suppress(asyncio.TimeoutError):
                await job.refresh(abort)
            if job.retryable:
                await self.retry(job, error=self.swept_error_message)
            else:
                await self.finish(job, Status.ABORTED, error=self.swept_error_message)
        return [job_id.decode() for job_id in swept]


def _make_one(url: str, name: str) -> Queue:
    if url.startswith(("redis://", "rediss://")):
        return PatientRedisQueue.from_url(url, name=name)
    # A pool per queue: a busy bulk queue never holds the connections the gateway queue needs.
    return Queue.from_url(url.replace("postgres://", "postgresql://", 1), name=name, min_size=1, max_size=5)


def make_queues(settings: Settings, database_dsn: str) -> Queues:
    url = queue_dsn(settings, database_dsn)
    return Queues({name: _make_one(url, name) for name in (GATEWAY, BULK)})


async def start(settings: Settings, *, pool_size: int) -> Queues:
    """What a serving process opens first (the web app and a worker alike): the database pool,
    then the queues, which become this process's queues."""
    settings.check_for_serving()
    engine = engine_finder()
    await engine.start_connection_pool(min_size=1, max_size=pool_size)
    queues = make_queues(settings, engine.config["dsn"])
    await queues.connect()
    set_queue(queues)
    return queues


def set_queue(queues: Queues | None) -> None:
    global _queues
    _queues = queues


def get_queue() -> Queues:
    if _queues is None:
        raise RuntimeError("queue not started")
    return _queues


async def enqueue(function: str, *, key: str | None = None, timeout: int = 60, retries: int = 3, **kwargs):
    """Enqueue once the state is committed: inside `db.transaction()` the job goes out when it
    commits (never if it rolls back), so a worker always finds the rows it is asked about;
    outside one, at once. `key` makes a repeat a no-op while the job lives. Returns the job when
    it went out at once, None when it waits for the commit."""
    job = functools.partial(_enqueue_now, function, dict(key=key, timeout=timeout, retries=retries, **kwargs))
    if db.deferred_to_commit(job):
        return None
    return await job()


async def _enqueue_now(function: str, kwargs: dict):
    return await get_queue().enqueue(function, **kwargs)
