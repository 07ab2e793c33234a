"""Reading the payment figures (tables/figures.py): what a period's payments add up to, from the
figures of its hours rather than from its payments, so the cost follows the hours asked for, not
the payments in them or in all history. The triggers that keep them are in migration
2026-12-09T04; `disagreements` checks them against the payments (the books check runs it).

An hour's figures fall wholly on one side of a bound, and in one local day, when the gym's zone
is a whole number of hours from UTC there (every zone but a few such as India's); elsewhere the
callers go to the payments themselves (`whole_hours`)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo

from tables.billing import Payment


def whole_hours(tz: tzinfo, *moments: datetime) -> bool:
    """Is `tz` a whole number of hours from UTC at each of these moments?"""
    return all(m.astimezone(tz).utcoffset().total_seconds() % 3600 == 0 for m in moments)


def whole_hour_days(tz: tzinfo, start: date, end: date) -> bool:
    """Does every local midnight from `start` to the day after `end` fall on a UTC hour (so each
    hour's figures belong to one local day, week or month)?"""
    days = (end - start).days + 2
    return whole_hours(tz, *(datetime.combine(start + timedelta(days=i), time.min, tz) for i in range(days)))


# The money received in a period by bucket and method (any payment that completed in it, whatever
# became of it since, as the payments' own query counts it); {grain} and {tz} are validated.
RECEIVED_SQL = """
SELECT date_trunc('{grain}', (f.hour AT TIME ZONE '{tz}'))::date AS bucket, f.method AS series,
       sum(f.amount) AS amount, sum(f.n)::bigint AS n
FROM payment_figure f
WHERE f.basis = 'completed' AND f.hour >= {{}} AND f.hour < {{}}
GROUP BY 1, 2 HAVING sum(f.n) <> 0
"""

# Payments started in a period, by method and status as they stand now.
STARTED_SQL = """
SELECT f.method, f.status, sum(f.n)::bigint AS n, sum(f.amount) AS amount
FROM payment_figure f WHERE f.basis = 'created' AND f.hour >= {} AND f.hour < {}
GROUP BY 1, 2 HAVING sum(f.n) <> 0
"""

# The payments list's totals (portal/payments/queries.py TOTALS) for filters the figures carry.
# Rows whose payments have all moved to another key hold zeros: left out, so no total reads 0.00
# where the payments' own query reads 0.
TOTALS_SQL = """
SELECT coalesce(sum(f.n), 0)::bigint AS n, coalesce(sum(f.amount) FILTER (WHERE f.n <> 0), 0) AS amount,
       coalesce(sum(f.refunded) FILTER (WHERE f.n <> 0), 0) AS refunded,
       coalesce(sum(f.amount - f.refunded) FILTER (WHERE f.n <> 0 AND f.status IN ('completed', 'partially_refunded')),
                0) AS net
FROM payment_figure f WHERE {where}
"""


async def payment_totals(*, status: str = "", method: str = "", staff: int | None = None,
                         location: int | None = None, since: datetime | None = None,
                         until: datetime | None = None) -> dict:
    """Count, amount, refunded and net (completed and part refunded) of the payments created in
    [since, until) (either may be None: open) with these filters; bounds on UTC hours only."""
    where, args = ["f.basis = {}"], ["all" if since is None and until is None else "created"]
    for column, value in (("status", status), ("method", method), ("staff", staff), ("location", location)):
        if value:
            where.append(f"f.{column} = {{}}")
            args.append(value)
    if since is not None:
        where.append("f.hour >= {}")
        args.append(since)
    if until is not None:
        where.append("f.hour < {}")
        args.append(until)
    return (await Payment.raw(TOTALS_SQL.format(where=" AND ".join(where)), *args))[0]


DISAGREEMENTS_SQL = """
WITH kept AS (
    SELECT basis, hour, method, status, staff, location, sum(n) AS n, sum(amount) AS amount, sum(refunded) AS refunded
    FROM payment_figure GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(n) <> 0 OR sum(amount) <> 0 OR sum(refunded) <> 0
),
counted AS (
    SELECT k.basis, k.hour, p.method, k.status, k.staff, k.location,
           count(*) AS n, sum(p.amount) AS amount, sum(p.refunded) AS refunded
    FROM payment p
    CROSS JOIN LATERAL (VALUES
        ('created', date_trunc('hour', p.created_at), p.status, coalesce(p.staff, 0), coalesce(p.location, 0)),
        ('completed', date_trunc('hour', p.completed_at), '', 0, 0),
        ('all', 'epoch'::timestamptz, p.status, coalesce(p.staff, 0), coalesce(p.location, 0))
    ) AS k (basis, hour, status, staff, location)
    WHERE k.hour IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6
)
SELECT coalesce(k.basis, c.basis) AS basis, coalesce(k.hour, c.hour) AS hour, coalesce(k.method, c.method) AS method,
       coalesce(k.status, c.status) AS status, k.n AS kept_n, c.n AS n, k.amount AS kept_amount, c.amount AS amount
FROM kept k FULL JOIN counted c USING (basis, hour, method, status, staff, location)
WHERE k.n IS DISTINCT FROM c.n OR k.amount IS DISTINCT FROM c.amount OR k.refunded IS DISTINCT FROM c.refunded
LIMIT 10
"""


async def disagreements() -> list[dict]:
    """Figures that are not what their payments add up to (empty when they agree)."""
    return await Payment.raw(DISAGREEMENTS_SQL)
