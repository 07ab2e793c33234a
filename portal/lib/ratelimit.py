"""Rate limits kept in PostgreSQL, so every web process counts the same hits.

`hit()` is one statement: it counts a request in its bucket's current window (starting a new
window in place when the old one is over) and says whether the bucket is still within its limit.
"""

from __future__ import annotations

from tables.rate_limits import RateLimit

HIT_SQL = """
INSERT INTO rate_limit (bucket, window_start, hits)
VALUES ({}, to_timestamp(floor(extract(epoch FROM now()) / {}) * {}), 1)
ON CONFLICT (bucket) DO UPDATE SET
    hits = CASE WHEN rate_limit.window_start = EXCLUDED.window_start THEN rate_limit.hits + 1 ELSE 1 END,
    window_start = EXCLUDED.window_start
RETURNING hits
"""

PEEK_SQL = """
SELECT hits FROM rate_limit
WHERE bucket = {} AND window_start = to_timestamp(floor(extract(epoch FROM now()) / {}) * {})
"""


async def hit(bucket: str, limit: int, window_seconds: int) -> bool:
    """Count one request; True while the bucket has had at most `limit` in this window."""
    rows = await RateLimit.raw(HIT_SQL, bucket[:200], window_seconds, window_seconds)
    return rows[0]["hits"] <= limit


async def used_up(bucket: str, limit: int, window_seconds: int) -> bool:
    """Has the bucket had its `limit` in this window already (without counting a request)?"""
    rows = await RateLimit.raw(PEEK_SQL, bucket[:200], window_seconds, window_seconds)
    return bool(rows) and rows[0]["hits"] >= limit


async def forget_old(older_than_seconds: int = 86400) -> int:
    rows = await RateLimit.raw(
        "DELETE FROM rate_limit WHERE window_start < now() - make_interval(secs => {}) RETURNING id", older_than_seconds)
    return len(rows)
