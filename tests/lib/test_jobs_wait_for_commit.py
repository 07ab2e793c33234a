"""queue.after_commit: jobs asked for inside the block wait for it to end (the caller's commit),
and a block that fails sends none (an API write rolled back asks the worker for nothing)."""

import pytest

from portal.documents.requests import job_key, request_document
from portal.lib import queue as jobs


async def test_jobs_wait_for_the_block_and_a_failed_block_sends_none(queue):
    async with jobs.after_commit():
        await request_document("receipt", "payment:1")
        assert await queue.job(job_key("receipt", "payment:1")) is None  # held, not queued yet
    assert await queue.job(job_key("receipt", "payment:1")) is not None
    with pytest.raises(RuntimeError):
        async with jobs.after_commit():
            await request_document("receipt", "payment:2")
            raise RuntimeError("the write failed")
    assert await queue.job(job_key("receipt", "payment:2")) is None
    await request_document("receipt", "payment:3")  # outside the block, at once as before
    assert await queue.job(job_key("receipt", "payment:3")) is not None
