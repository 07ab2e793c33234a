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
