"""The manager's analytics for a period: every figure one SQL aggregate, seven queries in all,
whatever the data size.

Definitions (the tests check each against a hand-made gym):
- received: payments by the day they completed (gross, as received); refunds by the day they
  were paid back (money accounts' legs of refund entries); net = received - refunds.
- success rate per channel: of payments started in the period and decided (completed, possibly
  refunded since, or failed/cancelled/expired), the share that completed. Pending ones wait.
- collection rate: of what fell due in the period (non-void invoices by due date), the share
  collected so far, by the channel and the staff member that brought the money (credit applied
  is its own channel; gateway money without a staff member is "online").
- days to pay: for invoices fully paid in the period, the days from issue to the last allocation.
- aging: what is owed on open invoices today, by days past due.
- members: active on a day = a paid membership covering it; MRR = their prices per month;
  churned = active on the first day, no membership covering the last.
"""

from __future__ import annotations

import asyncio
import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from portal.lib.clock import today
from portal.lib.forms import parse_date
from portal.lib.i18n import S_
from portal.payments import figures
from portal.settings import get_settings
from tables.billing import Payment
from tables.statuses import OPEN_INVOICE_SQL

GRAINS = ("day", "week", "month")
PRESETS = [("7d", "Last 7 days"), ("30d", "Last 30 days"), ("month", "This month"), ("last_month", "Last month"),
           ("quarter", "Last 90 days"), ("year", "This year")]
MONEY_ACCOUNTS = "('cash', 'bank', 'cheque', 'mpesa', 'card')"
DONE = ("completed", "partially_refunded", "refunded")
DECIDED_BAD = ("failed", "cancelled", "expired")
# Each method's colour on every chart (M-Pesa in its green); fixed here so a method never changes
# colour between views that happen to hold different methods.
METHOD_COLOURS = {"mpesa": "#0f6b4f", "card": "#1d3f8f", "cash": "#d08a1a", "bank": "#7a3e9d", "cheque": "#2a9d8f"}
AGING = [("current", "Not yet due"), ("0-30", "0–30 days"), ("31-60", "31–60 days"), ("61-90", "61–90 days"),
         ("90+", "Over 90 days")]


@dataclass
class Period:
    start: date
    end: date  # inclusive
    grain: str
    preset: str = ""
    errors: dict = field(default_factory=dict)
    typed: dict = field(default_factory=dict)  # the dates as typed, shown back beside their errors

    @classmethod
    def parse(cls, params, on: date | None = None) -> "Period":
        on = on or today()
        get = lambda k: (params.get(k) or "").strip()  # noqa: E731
        preset = get("preset") or ("" if get("start") or get("end") else "30d")
        errors = {}
        typed = {"start": get("start"), "end": get("end")}
        if preset in dict(PRESETS):
            start, end = _preset(preset, on)
        else:
            preset = ""
            start, end = parse_date(get("start")), parse_date(get("end"))
            if start is None:
                errors["start"] = S_("Use a date like 2026-11-01")
            if end is None:
                errors["end"] = S_("Use a date like 2026-11-30")
            start, end = start or on - timedelta(days=29), end or on
            if start > end:
                errors["end"] = S_("The end is before the start")
                start, end = end, start
            if (end - start).days > 3 * 366:
                errors["start"] = S_("Pick at most three years")
                start = end - timedelta(days=3 * 366)
        grain = get("grain")
        if grain not in GRAINS:
            days = (end - start).days + 1
            grain = "day" if days <= 45 else "week" if days <= 200 else "month"
        return cls(start, end, grain, preset, errors, typed)

    def query_string(self, **override) -> str:
        from urllib.parse import urlencode

        values = ({"preset": self.preset} if self.preset else {"start": self.start.isoformat(), "end": self.end.isoformat()})
        return urlencode({**values, "grain": self.grain, **override})

    def bounds(self) -> tuple[datetime, datetime]:
        tz = get_settings().tz
        return datetime.combine(self.start, time.min, tz), datetime.combine(self.end + timedelta(days=1), time.min, tz)

    def buckets(self) -> list[date]:
        first = bucket_of(self.start, self.grain)
        out, d = [], first
        while d <= self.end:
            out.append(d)
            d = _next_bucket(d, self.grain)
        return out


def _preset(name: str, on: date) -> tuple[date, date]:
    if name == "7d":
        return on - timedelta(days=6), on
    if name == "30d":
        return on - timedelta(days=29), on
    if name == "quarter":
        return on - timedelta(days=89), on
    if name == "month":
        return on.replace(day=1), on
    if name == "last_month":
        last = on.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    return on.replace(month=1, day=1), on


def bucket_of(d: date, grain: str) -> date:
    if grain == "week":
        return d - timedelta(days=d.weekday())  # weeks start on Monday, as PostgreSQL's date_trunc
    if grain == "month":
        return d.replace(day=1)
    return d


def _next_bucket(d: date, grain: str) -> date:
    if grain == "week":
        return d + timedelta(days=7)
    if grain == "month":
        return d.replace(day=calendar.monthrange(d.year, d.month)[1]) + timedelta(days=1)
    return d + timedelta(days=1)


# --- the queries ------------------------------------------------------------------------------
# {tz} and {grain} are ours (a validated zone name and one of GRAINS); the rest are parameters.

RECEIVED_FROM_PAYMENTS_SQL = """
SELECT date_trunc('{grain}', (p.completed_at AT TIME ZONE '{tz}'))::date AS bucket, p.method AS series,
       sum(p.amount) AS amount, count(*) AS n
FROM payment p
WHERE p.completed_at >= {{}} AND p.completed_at < {{}}
GROUP BY 1, 2
"""

REFUNDS_SQL = """
SELECT date_trunc('{grain}', (e.at AT TIME ZONE '{tz}'))::date, 'refunds', -sum(l.amount), count(DISTINCT e.id)
FROM ledger_entry e JOIN ledger_leg l ON l.entry = e.id
WHERE e.kind = 'refund' AND l.account IN {accounts} AND e.at >= {{}} AND e.at < {{}}
GROUP BY 1
"""
SERIES_SQL = RECEIVED_FROM_PAYMENTS_SQL + "UNION ALL" + REFUNDS_SQL
# The same from the hourly payment figures (portal/payments/figures.py): as many rows as the
# period has hours, however many payments they hold.
SERIES_FROM_FIGURES_SQL = figures.RECEIVED_SQL + "UNION ALL" + REFUNDS_SQL

STATUS_SQL = """
SELECT p.method, p.status, count(*) AS n, sum(p.amount) AS amount
FROM payment p WHERE p.created_at >= {} AND p.created_at < {}
GROUP BY 1, 2
"""

COLLECTION_SQL = """
WITH due AS MATERIALIZED (SELECT id, total FROM invoice WHERE status <> 'void' AND due_date BETWEEN {} AND {}),
by_payment AS MATERIALIZED (  -- what each payment (NULL: credit) put on those invoices
    SELECT a.payment, sum(a.amount) AS amount
    FROM due d CROSS JOIN LATERAL (SELECT payment, amount FROM allocation WHERE invoice = d.id OFFSET 0) a
    GROUP BY a.payment
),
got AS MATERIALIZED (  -- a handful of rows: per channel and staff member
    SELECT p.method, p.staff, b.payment IS NULL AS credit, sum(b.amount) AS amount
    FROM by_payment b LEFT JOIN payment p ON p.id = b.payment
    GROUP BY 1, 2, 3
)
SELECT 'total' AS dim, '' AS name, (SELECT coalesce(sum(total), 0) FROM due) AS amount
UNION ALL
SELECT 'channel', coalesce(g.method, 'credit'), sum(g.amount) FROM got g GROUP BY 2
UNION ALL
SELECT 'staff', CASE WHEN g.credit THEN 'credit applied' ELSE coalesce(u.username, 'online') END, sum(g.amount)
FROM got g LEFT JOIN staff s ON s.id = g.staff LEFT JOIN piccolo_user u ON u.id = s."user"
GROUP BY 2
"""

# Invoices fully paid in the period: their last allocation falls in it. Found from the period's
# allocations (an index on allocation.at) and "nothing later", not by grouping every paid
# invoice there has ever been.
DAYS_TO_PAY_SQL = """
SELECT count(*) AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY days) AS median, avg(days) AS mean
FROM (
    SELECT (g.last AT TIME ZONE '{tz}')::date - i.issue_date AS days
    FROM (SELECT invoice, max(at) AS last FROM allocation WHERE at >= {{}} AND at < {{}} GROUP BY invoice) g
    -- OFFSET 0 keeps this a lookup per invoice (the planner would rather scan every paid invoice)
    CROSS JOIN LATERAL (SELECT issue_date FROM invoice WHERE id = g.invoice AND status = 'paid' OFFSET 0) i
    WHERE NOT EXISTS (SELECT 1 FROM allocation later WHERE later.invoice = g.invoice AND later.at >= {{}})
) paid
"""

AGING_SQL = f"""
WITH d AS (SELECT {{}}::date AS today)
SELECT CASE WHEN i.due_date >= d.today THEN 'current'
            WHEN d.today - i.due_date <= 30 THEN '0-30'
            WHEN d.today - i.due_date <= 60 THEN '31-60'
            WHEN d.today - i.due_date <= 90 THEN '61-90'
            ELSE '90+' END AS bucket,
       count(*) AS n, sum(i.total - i.paid) AS owed
FROM invoice i, d WHERE i.status IN {OPEN_INVOICE_SQL}
GROUP BY 1
"""

MEMBERS_SQL = """
WITH bounds AS (SELECT {}::date AS s, {}::date AS e),
covering AS (
    SELECT ms.member, ms.price, p.duration_months, p.duration_days,
           (ms.start_date <= b.s AND ms.end_date >= b.s) AS at_start,
           (ms.start_date <= b.e AND ms.end_date >= b.e) AS at_end
    FROM membership ms JOIN plan p ON p.id = ms.plan, bounds b
    WHERE ms.status IN ('active', 'expired', 'pending') AND ms.start_date <= b.e AND ms.end_date >= b.s
),
per_member AS (
    SELECT member, bool_or(at_start) AS at_start, bool_or(at_end) AS at_end,
           sum(CASE WHEN at_end THEN CASE WHEN duration_months > 0 THEN price / duration_months
                                         ELSE price * 30 / greatest(duration_days, 1) END END) AS monthly
    FROM covering GROUP BY member
)
SELECT count(*) FILTER (WHERE at_start) AS active_start, count(*) FILTER (WHERE at_end) AS active_end,
       coalesce(round(sum(monthly), 2), 0) AS mrr, count(*) FILTER (WHERE at_start AND NOT at_end) AS churned
FROM per_member
"""

TOP_SQL = """
WITH top AS (
    SELECT p.member, count(*) AS n, sum(p.amount - p.refunded) AS amount
    FROM payment p WHERE p.completed_at >= {} AND p.completed_at < {} AND p.member IS NOT NULL
      -- the walk-in account (portal/sales/walkin.py) is no member to rank
      AND p.member IS DISTINCT FROM (SELECT id FROM member WHERE member_number = 'WALKIN')
    GROUP BY p.member ORDER BY amount DESC, p.member LIMIT 10
)
SELECT m.id, m.member_number, m.first_name || ' ' || m.last_name AS name, t.n, t.amount
FROM top t JOIN member m ON m.id = t.member
ORDER BY t.amount DESC, m.id
"""


# Revenue invoiced in the period by what was sold: each desk sale's line by its item's category
# (tables/sales.py sale_line), plan invoices as memberships, anything else (custom invoices) as
# other; the discounts given on those invoices (their negative lines, portal/billing/discounts.py)
# as the row "discounts", so the categories are revenue before discount and the whole sum after.
# Net of VAT, void invoices left out; read from the lines, which sum to the ledger's revenue less
# its discounts account.
REVENUE_BY_CATEGORY_SQL = """
SELECT CASE WHEN d.id IS NOT NULL THEN 'discounts'
            ELSE coalesce(sl.category, CASE WHEN i.plan IS NOT NULL THEN 'membership' ELSE 'other' END) END AS category,
       sum(il.net) AS net, sum(il.vat) AS vat, sum(il.total) AS total, sum(il.quantity) AS quantity
FROM invoice i
JOIN invoice_line il ON il.invoice = i.id
LEFT JOIN sale_line sl ON sl.invoice_line = il.id
LEFT JOIN discount d ON d.discount_line = il.id
WHERE i.status <> 'void' AND i.issue_date BETWEEN {} AND {}
GROUP BY 1 ORDER BY bool_or(d.id IS NOT NULL), net DESC, category
"""


async def revenue_by_category(period: Period) -> list[dict]:
    """Revenue invoiced in the period by category (one query; the staff analytics page)."""
    return await Payment.raw(REVENUE_BY_CATEGORY_SQL, period.start, period.end)


def _rate(part: Decimal, whole: Decimal) -> Decimal | None:
    return (Decimal(part) * 100 / whole).quantize(Decimal("0.1")) if whole else None


async def report(period: Period, on: date | None = None) -> dict:
    settings = get_settings()
    tz = str(settings.tz)
    since, until = period.bounds()
    raw = Payment.raw

    # The money received and the payments' outcomes from the hourly figures where the zone allows
    # (every local midnight of the period on a UTC hour): the same numbers, for a fixed cost a day.
    hourly = figures.whole_hour_days(settings.tz, period.start, period.end)
    series_sql, status_sql = (SERIES_FROM_FIGURES_SQL, figures.STARTED_SQL) if hourly else (SERIES_SQL, STATUS_SQL)

    # Seven independent aggregates, run side by side on their own connections: the page waits for
    # the slowest, not for the sum.
    (series_rows, status_rows, collection_rows, days_rows, aging_rows, member_rows, top) = await asyncio.gather(
        raw(series_sql.format(grain=period.grain, tz=tz, accounts=MONEY_ACCOUNTS), since, until, since, until),
        raw(status_sql, since, until),
        raw(COLLECTION_SQL, period.start, period.end),
        raw(DAYS_TO_PAY_SQL.format(tz=tz), since, until, until),
        raw(AGING_SQL, on or today()),
        raw(MEMBERS_SQL, period.start, period.end),
        raw(TOP_SQL, since, until),
    )
    days, members = days_rows[0], member_rows[0]

    zero = Decimal("0")
    buckets = period.buckets()
    methods = sorted({r["series"] for r in series_rows} - {"refunds"})
    by_bucket = {b: {"bucket": b, "received": zero, "refunds": zero, **{m: zero for m in methods}} for b in buckets}
    for r in series_rows:
        row = by_bucket.setdefault(r["bucket"], {"bucket": r["bucket"], "received": zero, "refunds": zero,
                                                 **{m: zero for m in methods}})
        if r["series"] == "refunds":
            row["refunds"] += r["amount"]
        else:
            row[r["series"]] += r["amount"]
            row["received"] += r["amount"]
    series = [dict(v, net=v["received"] - v["refunds"]) for _, v in sorted(by_bucket.items())]
    received = sum((s["received"] for s in series), zero)
    refunds = sum((s["refunds"] for s in series), zero)

    by_method: dict[str, dict] = {}
    by_status: dict[str, dict] = {}
    for r in status_rows:
        m = by_method.setdefault(r["method"], {"method": r["method"], "started": 0, "done": 0, "bad": 0,
                                               "pending": 0, "amount_done": zero})
        m["started"] += r["n"]
        if r["status"] in DONE:
            m["done"] += r["n"]
            m["amount_done"] += r["amount"]
        elif r["status"] in DECIDED_BAD:
            m["bad"] += r["n"]
        else:
            m["pending"] += r["n"]
        s = by_status.setdefault(r["status"], {"status": r["status"], "n": 0, "amount": zero})
        s["n"] += r["n"]
        s["amount"] += r["amount"]
    for m in by_method.values():
        m["success_rate"] = _rate(m["done"], m["done"] + m["bad"])

    due_total = next((r["amount"] for r in collection_rows if r["dim"] == "total"), zero)
    collection = {"due": due_total, "collected": zero, "rate": None, "channels": [], "staff": []}
    for r in collection_rows:
        if r["dim"] == "total":
            continue
        item = {"name": r["name"], "collected": r["amount"], "rate": _rate(r["amount"], due_total)}
        collection["channels" if r["dim"] == "channel" else "staff"].append(item)
        if r["dim"] == "channel":
            collection["collected"] += r["amount"]
    for key in ("channels", "staff"):
        collection[key].sort(key=lambda i: (-i["collected"], i["name"]))
    collection["rate"] = _rate(collection["collected"], due_total)

    aging = {key: {"key": key, "label": label, "n": 0, "owed": zero} for key, label in AGING}
    for r in aging_rows:
        aging[r["bucket"]].update(n=r["n"], owed=r["owed"])

    active_start = members["active_start"]
    return {
        "period": period, "series": series, "methods": methods,
        "totals": {"received": received, "refunds": refunds, "net": received - refunds},
        # Ties in one order whichever rows came first (figures and payments list them differently).
        "by_method": sorted(by_method.values(), key=lambda m: (-m["amount_done"], m["method"])),
        "by_status": sorted(by_status.values(), key=lambda s: (-s["n"], s["status"])),
        "collection": collection,
        "days_to_pay": {"n": days["n"], "median": None if days["median"] is None else Decimal(str(days["median"])),
                        "mean": None if days["mean"] is None else Decimal(days["mean"]).quantize(Decimal("0.1"))},
        "aging": list(aging.values()),
        "members": {"active_start": active_start, "active_end": members["active_end"], "mrr": members["mrr"],
                    "churned": members["churned"], "churn_rate": _rate(members["churned"], active_start)},
        "top": top,
    }
