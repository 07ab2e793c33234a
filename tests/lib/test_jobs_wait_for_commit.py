"""A job asked for inside db.transaction() goes out when the transaction commits (a worker then
always finds the rows it is asked about), never if it rolls back; outside one, at once."""

import pytest

from portal.documents.requests import job_key, request_document
from portal.lib import db


async def test_jobs_wait_for_the_commit_and_a_rollback_sends_none(queue):
    async with db.transaction():
        await request_document("receipt", "payment:1")
        async with db.transaction():  # an inner block is the same transaction: still held
            await request_document("receipt", "payment:4")
        assert await queue.job(job_key("receipt", "payment:1")) is None  # held, not queued yet
        assert await queue.job(job_key("receipt", "payment:4")) is None
    assert await queue.job(job_key("receipt", "payment:1")) is not None
    assert await queue.job(job_key("receipt", "payment:4")) is not None
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await request_document("receipt", "payment:2")
            raise RuntimeError("the write failed")
    assert await queue.job(job_key("receipt", "payment:2")) is None
    await request_document("receipt", "payment:3")  # outside a transaction, at once
    assert await queue.job(job_key("receipt", "payment:3")) is not None
