"""The fixtures empty the tables between tests while a live server's own worker may be writing to
them. A deadlock with such a job (seen in a whole-suite run: the check-in journey's reminder) must
cost a retry, not the test."""

import asyncio

import asyncpg

from tests.factories import make_member
from tests.fixtures import empty_tables


async def test_emptying_the_tables_survives_a_deadlock_with_a_job_writing_to_them(db):
    await make_member("Wanjiku", "Kamau", number="PTF0001")
    job = await asyncpg.connect(db.config["dsn"])
    try:
        # A job that has written to one table the fixture empties late in its list (message comes
        # after member) and is about to read one it empties early.
        tx = job.transaction()
        await tx.start()
        await job.execute("LOCK TABLE message IN ROW EXCLUSIVE MODE")
        emptying = asyncio.create_task(empty_tables(db))
        await asyncio.sleep(0.5)  # the TRUNCATE holds member and waits for message
        assert not emptying.done()
        # Now the job reaches for member: each waits for the other, PostgreSQL must break it.
        await job.fetch("SELECT id FROM member FOR KEY SHARE")
        await tx.commit()
        await asyncio.wait_for(emptying, 30)
        assert await job.fetchval("SELECT count(*) FROM member") == 0
    finally:
        await job.close()
