"""Rate limits kept in PostgreSQL, so every web process counts the same hits.

`hit()` is one statement: it counts a request in its bucket's current window (starting a new
window in place when the old one is over) and says whether the bucket is still within its limit.
`take()` is for actions a person repeats: a few at once, then one per interval, and it says when.
"""

from __future__ import annotations

from datetime import datetime

from tables.rate_limits import RateLimit

# A count is not money: when a statement runs on its own (no transaction of the caller's around
# it) its commit need not wait for the WAL to reach the disk. On a busy disk that flush was most of
# an API request's time; a crash loses at most the last moment's counts. Inside a caller's
# transaction the setting would outlive the statement and cover that transaction's money too, so
# there the statement runs as written (see _quiet).
QUIET = "(SELECT set_config('synchronous_commit', 'off', true)) AS quiet"

HIT_SQL = """
INSERT INTO rate_limit (bucket, window_start, hits)
SELECT {}, to_timestamp(floor(extract(epoch FROM now()) / {}) * {}), 1 FROM %s
ON CONFLICT (bucket) DO UPDATE SET
    hits = CASE WHEN rate_limit.window_start = EXCLUDED.window_start THEN rate_limit.hits + 1 ELSE 1 END,
    window_start = EXCLUDED.window_start
RETURNING hits
"""


def _quiet(sql: str) -> str:
    from piccolo.engine import engine_finder

    alone = engine_finder().current_transaction.get() is None
    return sql % (QUIET if alone else "(SELECT 1) AS one")

PEEK_SQL = """
SELECT hits FROM rate_limit
WHERE bucket = {} AND window_start = to_timestamp(floor(extract(epoch FROM now()) / {}) * {})
"""


async def hit(bucket: str, limit: int, window_seconds: int) -> bool:
    """Count one request; True while the bucket has had at most `limit` in this window."""
    rows = await RateLimit.raw(_quiet(HIT_SQL), bucket[:200], window_seconds, window_seconds)
    return rows[0]["hits"] <= limit


async def used_up(bucket: str, limit: int, window_seconds: int) -> bool:
    """Has the bucket had its `limit` in this window already (without counting a request)?"""
    rows = await RateLimit.raw(PEEK_SQL, bucket[:200], window_seconds, window_seconds)
    return bool(rows) and rows[0]["hits"] >= limit


async def forget_old(older_than_seconds: int = 86400) -> int:
    rows = await RateLimit.raw(
        "DELETE FROM rate_limit WHERE window_start < now() - make_interval(secs => {}) RETURNING id", older_than_seconds)
    return len(rows)


# --- a few uses, then one per interval (GCRA) --------------------------------------------------
# For actions a person repeats (sending a member their pay link again): at most `burst` at once,
# then one every period/burst, so `burst` per period over time. Unlike a fixed window this has no
# edge (a window ending just after the third send would allow three more at once), and it can say
# when the next use is allowed. The row's window_start holds the bucket's "theoretical
# arrival time" (the GCRA's TAT): the bucket is full once that is `period` ahead of now.

TAKE_SQL = """
INSERT INTO rate_limit (bucket, window_start, hits) SELECT {}, now() + make_interval(secs => {}), 1 FROM %s
ON CONFLICT (bucket) DO UPDATE SET
    window_start = greatest(rate_limit.window_start, now()) + make_interval(secs => {}),
    hits = rate_limit.hits + 1
WHERE greatest(rate_limit.window_start, now()) + make_interval(secs => {}) <= now() + make_interval(secs => {})
RETURNING window_start
"""

NEXT_SQL = "SELECT window_start + make_interval(secs => {}) - make_interval(secs => {}) AS at FROM rate_limit WHERE bucket = {}"


async def take(bucket: str, burst: int, period_seconds: int) -> datetime | None:
    """Use the bucket once if it has room: None when taken, else when it next has room (nothing
    is counted then). One statement: concurrent callers in any process are counted one by one
    (the update's condition is checked again on the row as the other committed it)."""
    bucket, interval = bucket[:200], period_seconds / burst
    if await RateLimit.raw(_quiet(TAKE_SQL), bucket, interval, interval, interval, period_seconds):
        return None
    rows = await RateLimit.raw(NEXT_SQL, interval, period_seconds, bucket)
    return rows[0]["at"] if rows else None
