"""The reconciliation page's figures: per business day and channel, the gateway's book
(gateway_line, see book.py) against the ledger's payments, in SQL, a fixed number of queries.

An item is one gateway line, one ledger payment, or the pair of them when they are the same money
(M-Pesa and bank by the receipt code or reference, cards by Flutterwave's id). Its day is the
gateway's day when the gateway has it (a payment credited days later by a statement still counts
on the day the money arrived), else the day the payment completed. Its channel is the payment's
(M-Pesa: Paybill when it was recorded from a confirmation, `c2b:<code>`, else STK), or for a line
with no payment, its own (M-Pesa lines: Paybill).

A difference is an item with one side missing or amounts that differ. A ledger payment with no
line is a difference only where the gateway's book covers the day and channel (an imported
statement's period, or any line of that channel that day): without a book there is nothing to
compare with, and the cell says so. Differences settled by a manager (actions.py) with "not
ours" or "explained" are left out of both counted totals; a cell is green when its counted totals
and counts are equal and the book covers it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from portal.settings import get_settings
from tables.reconcile import GatewayLine

CHANNELS = {"mpesa_paybill": "M-Pesa Paybill", "mpesa_stk": "M-Pesa STK", "card": "Card", "bank": "Bank"}
RECORDED = "('completed', 'partially_refunded', 'refunded')"
SHOWN = 500  # differences listed on a day's page (the counts are exact)

# A payment as the page sees it: its key at the gateway (cards: Flutterwave's id), its channel
# (Paybill or STK by how it was recorded) and when it completed. The business day it counts on is
# worked out (DAY_OF_PAYMENT) only for a payment with no line, whose day it is: a named time zone's
# conversion, row by row, was most of a month's cost (20 of 35 ms at 20,000 members: 9,000 rows).
PAYMENT_AS_ITEM = """SELECT p.id, p.amount, p.member, p.status, p.receipt_number,
           CASE WHEN p.method = 'card' THEN coalesce(p.gateway_ref, '') ELSE p.reference END AS key,
           p.method AS family,
           CASE WHEN p.method <> 'mpesa' THEN p.method
                WHEN p.idempotency_key LIKE 'c2b:%' THEN 'mpesa_paybill' ELSE 'mpesa_stk' END AS channel,
           p.completed_at"""
# {2}: the time zone
DAY_OF_PAYMENT = "(p.completed_at AT TIME ZONE {2}::text)::date"

# {0} first day, {1} the day after the last, {2} time zone name, {3} first instant, {4} last instant
ITEMS = f"""
WITH g AS (
    SELECT id, channel AS family, external_id, day, amount
      FROM gateway_line WHERE day >= {{0}}::date - 2 AND day < {{1}}::date + 2
), p_win AS (
    {PAYMENT_AS_ITEM}
      FROM payment p
     WHERE p.completed_at >= {{3}}::timestamptz AND p.completed_at < {{4}}::timestamptz
       AND p.method IN ('mpesa', 'card', 'bank') AND p.status IN {RECORDED}
), far AS (
    -- A line whose payment was recorded long after (a statement imported weeks later): by its code.
    SELECT g.family, g.external_id FROM g
     WHERE g.day >= {{0}}::date AND g.day < {{1}}::date
       AND NOT EXISTS (SELECT 1 FROM p_win WHERE p_win.family = g.family AND p_win.key = g.external_id)
), p AS (
    SELECT * FROM p_win
    UNION ALL
    {PAYMENT_AS_ITEM}
      FROM far JOIN payment p ON p.reference = far.external_id AND p.method = far.family
     WHERE far.family <> 'card' AND p.status IN {RECORDED}
       AND (p.completed_at < {{3}}::timestamptz OR p.completed_at >= {{4}}::timestamptz)
    UNION ALL
    {PAYMENT_AS_ITEM}
      FROM far JOIN payment p ON p.method = 'card' AND p.gateway_ref = far.external_id
     WHERE far.family = 'card' AND p.status IN {RECORDED}
       AND (p.completed_at < {{3}}::timestamptz OR p.completed_at >= {{4}}::timestamptz)
), cov AS (
    SELECT DISTINCT day, family FROM g
    UNION
    SELECT generate_series(greatest(period_start, {{0}}::date), least(period_end, {{1}}::date - 1), interval '1 day')::date,
           'mpesa'
      FROM mpesa_statement WHERE period_end >= {{0}}::date AND period_start < {{1}}::date
), i AS (
    SELECT coalesce(g.day, {DAY_OF_PAYMENT}) AS day,
           coalesce(p.channel, CASE WHEN g.family = 'mpesa' THEN 'mpesa_paybill' ELSE g.family END) AS channel,
           coalesce(g.family, p.family) AS family,
           g.id AS line_id, g.external_id, g.amount AS g_amount,
           p.id AS payment_id, p.amount AS p_amount, p.member, p.status AS payment_status, p.receipt_number,
           CASE WHEN g.id IS NOT NULL THEN g.family || ':' || g.external_id ELSE 'payment:' || p.id END AS key
      FROM g FULL JOIN p ON p.family = g.family AND p.key = g.external_id AND p.key <> ''
), j AS (
    SELECT i.*, r.action, r.reason, r.created_at AS resolved_at, r.staff AS resolved_by,
           (cov.day IS NOT NULL) AS covered,
           (i.line_id IS NULL OR i.payment_id IS NULL OR i.g_amount <> i.p_amount) AS differs,
           (r.action IS NULL OR r.action NOT IN ('not_ours', 'explained')) AS counted
      FROM i LEFT JOIN reconcile_resolution r ON r.key = i.key
      LEFT JOIN cov ON cov.day = i.day AND cov.family = i.family
     WHERE i.day >= {{0}}::date AND i.day < {{1}}::date
)
"""

OPEN = "(differs AND action IS NULL AND covered)"

CELLS = ITEMS + f"""
SELECT day, channel, bool_or(covered) AS covered,
       count(line_id) FILTER (WHERE counted) AS g_count, coalesce(sum(g_amount) FILTER (WHERE counted), 0) AS g_total,
       count(payment_id) FILTER (WHERE counted) AS p_count, coalesce(sum(p_amount) FILTER (WHERE counted), 0) AS p_total,
       count(*) FILTER (WHERE {OPEN}) AS open_count,
       coalesce(sum(abs(coalesce(g_amount, 0) - coalesce(p_amount, 0))) FILTER (WHERE {OPEN}), 0) AS open_amount,
       count(*) FILTER (WHERE action IS NOT NULL) AS settled_count
  FROM j GROUP BY day, channel
"""

DIFFERENCES = ITEMS + f"""
SELECT j.*, gl.source, gl.account, gl.payer, gl.callback, m.member_number, m.first_name, m.last_name,
       u.username AS resolved_by_name, c.outcome AS callback_outcome, count(*) OVER () AS total
  FROM j LEFT JOIN gateway_line gl ON gl.id = j.line_id LEFT JOIN member m ON m.id = j.member
  LEFT JOIN staff s ON s.id = j.resolved_by LEFT JOIN piccolo_user u ON u.id = s.user
  LEFT JOIN gateway_callback c ON c.id = gl.callback
 WHERE (j.differs AND (j.covered OR j.line_id IS NOT NULL)) OR j.action IS NOT NULL
 ORDER BY j.action IS NOT NULL, j.channel, j.key LIMIT {SHOWN}
"""

RECONCILED = """
SELECT d.day, d.created_at, d.note, u.username FROM reconcile_day d
  JOIN staff s ON s.id = d.staff JOIN piccolo_user u ON u.id = s.user
 WHERE d.day >= {} AND d.day < {} ORDER BY d.day
"""


@dataclass(frozen=True)
class Cell:
    day: date
    channel: str
    covered: bool = False
    g_count: int = 0
    g_total: Decimal = Decimal("0")
    p_count: int = 0
    p_total: Decimal = Decimal("0")
    open_count: int = 0
    open_amount: Decimal = Decimal("0")
    settled_count: int = 0

    @property
    def state(self) -> str:
        """green: equal; red: not equal; none: no book for it (grey); empty: nothing either side."""
        if not self.covered:
            return "empty" if not self.p_count else "none"
        equal = self.g_total == self.p_total and self.g_count == self.p_count
        return "green" if equal and not self.open_count else "red"


_NUMBERED = re.compile(r"\{(\d)\}")


def _query(template: str, first: date, after: date) -> tuple[str, list]:
    """The template with its numbered values ({0}..{4}) written in as literals. On purpose: as
    parameters of a prepared statement the planner soon switches to a generic plan that cannot see
    the dates, and a month's page took 350 ms instead of 30 at 20,000 members. They are dates, a
    validated time zone name and instants, never text a person typed."""
    tz = get_settings().tz
    # Lines and payments two days either side: money that arrived at 23:59 and was credited after
    # midnight pairs up across the month's edge (and counts on the gateway's day).
    values = (first.isoformat(), after.isoformat(), tz.key,
              datetime.combine(first - timedelta(days=2), time.min, tz).isoformat(),
              datetime.combine(after + timedelta(days=2), time.min, tz).isoformat())
    return _NUMBERED.sub(lambda m: "'" + values[int(m.group(1))].replace("'", "''") + "'", template), []


async def cells(first: date, after: date) -> dict[tuple[date, str], Cell]:
    sql, args = _query(CELLS, first, after)
    rows = await GatewayLine.raw(sql, *args)
    return {(r["day"], r["channel"]): Cell(**r) for r in rows}


async def differences(day: date) -> list[dict]:
    sql, args = _query(DIFFERENCES, day, day + timedelta(days=1))
    return await GatewayLine.raw(sql, *args)


async def reconciled(first: date, after: date) -> dict[date, dict]:
    return {r["day"]: r for r in await GatewayLine.raw(RECONCILED, first, after)}


@dataclass(frozen=True)
class DaySummary:
    day: date
    reconciled: dict | None
    open_count: int
    open_amount: Decimal
    uncovered: int  # channels with ledger payments and no gateway book


def summary(day: date, by_cell: dict, done: dict) -> DaySummary:
    day_cells = [c for (d, _), c in by_cell.items() if d == day]
    return DaySummary(day, done.get(day), sum(c.open_count for c in day_cells),
                      sum((c.open_amount for c in day_cells), Decimal("0")),
                      sum(1 for c in day_cells if c.state == "none"))


def month_days(month: date) -> list[date]:
    first = month.replace(day=1)
    after = (first + timedelta(days=32)).replace(day=1)
    return [first + timedelta(days=n) for n in range((after - first).days)]
