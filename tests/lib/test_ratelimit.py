"""ratelimit.take: a burst, then one per interval, counted exactly when many ask at once (any process
asking goes through the same row)."""

import asyncio
from datetime import timedelta

from portal.lib import ratelimit
from portal.lib.clock import now


async def test_a_burst_of_concurrent_takes_lets_exactly_the_burst_through(db):
    answers = await asyncio.gather(*[ratelimit.take("t:burst", 3, 3600) for _ in range(20)])
    taken = [a for a in answers if a is None]
    refused = [a for a in answers if a is not None]
    assert len(taken) == 3 and len(refused) == 17
    # Every refusal names the same moment: a third of the hour after the first take.
    assert len(set(refused)) == 1
    assert timedelta(minutes=19) < refused[0] - now() <= timedelta(minutes=20)
    other = await ratelimit.take("t:other", 3, 3600)  # buckets are separate
    assert other is None


async def test_counting_alone_skips_the_wal_flush_but_never_inside_a_callers_transaction(db):
    """A count on its own commits without waiting for the disk (synchronous_commit off for that
    statement only); inside a transaction the setting would cover the caller's money too, so
    there it is left alone."""
    from portal.lib import db as portal_db
    from tables.rate_limits import RateLimit

    assert await ratelimit.hit("t:alone", 5, 60)
    assert await ratelimit.take("t:alone-take", 3, 60) is None
    # The statement's setting ended with it: the pool's connections are back to the default.
    for _ in range(3):
        assert (await RateLimit.raw("SHOW synchronous_commit"))[0]["synchronous_commit"] == "on"
    async with portal_db.transaction():
        assert await ratelimit.hit("t:inside", 5, 60)
        assert await ratelimit.take("t:inside-take", 3, 60) is None
        assert (await RateLimit.raw("SHOW synchronous_commit"))[0]["synchronous_commit"] == "on"
    rows = await RateLimit.raw("SELECT bucket, hits FROM rate_limit WHERE bucket LIKE 't:%%' ORDER BY bucket")
    assert [(r["bucket"], r["hits"]) for r in rows] == [
        ("t:alone", 1), ("t:alone-take", 1), ("t:inside", 1), ("t:inside-take", 1)]
