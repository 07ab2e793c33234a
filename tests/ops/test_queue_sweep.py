"""The Redis queue's sweep never aborts a job a worker is in the middle of taking.

A worker takes a job in two steps (move its id to the active list, then mark it active); SAQ's
own sweep aborted a job caught between them, and the nightly backup, with no retry, was lost
(seen as test_the_worker_makes_the_nightly_backup failing with "swept" on a busy machine).
The steps are played here by hand, exactly as SAQ's worker does them, with no worker running.
"""

import os
import uuid

import pytest
from saq.job import Status
from saq.utils import now

from portal.lib.queue import _make_one

pytestmark = pytest.mark.skipif(
    not os.environ.get("QUEUE_URL", "").startswith(("redis://", "rediss://")),
    reason="the Redis queue: only on the server configuration (QUEUE_URL=redis://)")


@pytest.fixture
async def redis_queue():
    q = _make_one(os.environ["QUEUE_URL"], f"sweep-test-{uuid.uuid4().hex[:8]}")
    await q.connect()
    yield q
    await q.redis.delete(q._queued, q._active, q._incomplete, q._sweep, q._schedule, q._stats)
    await q.disconnect()


async def _take(q):
    """A worker's first step: the job's id moves to the active list (SAQ's dequeue)."""
    assert await q.redis.blmove(q._queued, q._active, 1, "LEFT", "RIGHT") is not None


async def _sweep(q) -> list[str]:
    await q.redis.delete(q._sweep)  # each call is a later sweep, not one inside the last's lock
    return await q.sweep(abort=0.1)


async def test_a_job_being_taken_is_not_swept_and_then_runs_active(redis_queue):
    q = redis_queue
    job = await q.enqueue("run_backup", retries=1)
    await _take(q)
    assert await _sweep(q) == []  # SAQ's own sweep aborted it here
    stored = await q.job(job.key)
    assert stored.status == Status.QUEUED
    # The worker's second step: started and marked active; a sweep now leaves it running.
    stored.started, stored.attempts = now(), 1
    await stored.update(status=Status.ACTIVE)
    assert await _sweep(q) == [] and await _sweep(q) == []
    assert (await q.job(job.key)).status == Status.ACTIVE


async def test_a_job_whose_worker_died_while_taking_it_is_swept_at_the_next_sweep(redis_queue):
    q = redis_queue
    job = await q.enqueue("run_backup", retries=1)
    await _take(q)
    assert await _sweep(q) == []
    assert await _sweep(q) == [q.job_id(job.key)]
    # Never started, so it has its try left: back on the queue for a live worker to take.
    assert (await q.job(job.key)).status == Status.QUEUED
    assert await q.redis.lrange(q._active, 0, -1) == []
    assert await q.redis.lrange(q._queued, 0, -1) == [q.job_id(job.key).encode()]


async def test_a_job_past_its_timeout_is_still_swept(redis_queue):
    q = redis_queue
    job = await q.enqueue("run_backup", retries=1, timeout=1)
    await _take(q)
    stored = await q.job(job.key)
    stored.started, stored.attempts = now() - 5000, 1
    await stored.update(status=Status.ACTIVE)
    assert await _sweep(q) == [q.job_id(job.key)]
    assert (await q.job(job.key)).status == Status.ABORTED
