"""What members owe and whose memberships are ending: the payments-due and renewals-due lists.

Each list is two queries whatever the data size (one for the page of rows, one for the summary),
computed in SQL over partial indexes on open invoices and ending memberships.

A member is on **hold** while any invoice of theirs is more than HOLD_GRACE_DAYS past due: the
front desk sees it on the member page and in search results and acts on it. It is computed, not
stored, so paying clears it at once and nothing can forget to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import partial

from portal.lib import paging
from portal.lib.clock import today
from portal.members.holds import hold_cutoff, hold_sql
from portal.members.members import SEARCH_WHERE, _search_terms
from tables.billing import Invoice
from tables.statuses import IN_FLIGHT_SQL, OPEN_INVOICE_SQL

PAGE_SIZE = 50
URGENCIES = [("overdue", "Overdue"), ("d3", "Due in 3 days"), ("d7", "Due in 7 days"), ("d14", "Due in 14 days"),
             ("later", "Later")]
WINDOWS = [("7", "Next 7 days"), ("14", "Next 14 days"), ("30", "Next 30 days"), ("expired", "Expired (last 30 days)")]

URGENCY_SQL = """CASE WHEN i.due_date < {today}::date THEN 'overdue'
     WHEN i.due_date <= {today}::date + 3 THEN 'd3'
     WHEN i.due_date <= {today}::date + 7 THEN 'd7'
     WHEN i.due_date <= {today}::date + 14 THEN 'd14'
     ELSE 'later' END"""
OPEN_WHERE = f"i.status IN {OPEN_INVOICE_SQL}"


@dataclass
class DueFilters:
    q: str = ""
    urgency: str = ""
    page: int = 1

    @classmethod
    def parse(cls, params) -> "DueFilters":
        get = partial(paging.param, params)
        urgency = get("urgency")
        return cls(q=get("q")[:80], urgency=urgency if urgency in dict(URGENCIES) else "",
                   page=paging.page_number(params))

    def query_string(self, **override) -> str:
        # Page 1 goes unsaid too: the first page's link is the list's plain address.
        return paging.query_string({"q": self.q, "urgency": self.urgency, **override}, omit=("", None, 1))


@dataclass(kw_only=True)
class DuePage(paging.Page):
    summary: dict = field(default_factory=dict)  # urgency -> {"n": count, "owed": Decimal}
    total_owed: Decimal = Decimal("0")
    filters: DueFilters = field(default_factory=DueFilters)


def _due_where(f: DueFilters, on: date) -> paging.Where:
    where = paging.Where(OPEN_WHERE)
    if f.q:
        q, phone, number = _search_terms(f.q)
        where.add(SEARCH_WHERE.format(q="{}", number="{}", phone="{}"), q, q, q, q, q, number, phone, phone)
    return where


DUE_ROWS = """
SELECT i.id, i.number, i.due_date, i.total, i.paid, i.total - i.paid AS owed, i.currency, i.status,
       {urgency} AS urgency, {today}::date - i.due_date AS days_overdue,
       m.id AS member_id, m.member_number, m.first_name, m.last_name, m.phone, m.email,
       last_paid.at AS last_paid_at,
       EXISTS (SELECT 1 FROM payment f WHERE f.member = m.id AND f.status IN {in_flight}) AS in_flight,
       {hold} AS hold, link.id AS link_id, link.nonce AS link_nonce
FROM invoice i
JOIN member m ON m.id = i.member
LEFT JOIN LATERAL (
    SELECT l.id, l.nonce FROM pay_link l
    WHERE l.invoice = i.id AND l.revoked_at IS NULL AND l.expires_at > now()
    ORDER BY l.id DESC LIMIT 1
) link ON true
LEFT JOIN LATERAL (
    SELECT p.completed_at AS at FROM payment p
    WHERE p.member = m.id AND p.completed_at IS NOT NULL
    ORDER BY p.completed_at DESC LIMIT 1
) last_paid ON true
WHERE {where} {urgency_filter}
ORDER BY i.due_date, i.id
LIMIT {limit} OFFSET {offset}
"""

# LEFT JOIN: every invoice has its member (a NOT NULL foreign key), so the rows are the same, and
# PostgreSQL leaves the join out when no filter reads the member (an index-only scan of
# invoice_open_owed, 3 ms at 6,400 open invoices, rather than 30 ms with the join).
DUE_SUMMARY = """
SELECT {urgency} AS urgency, count(*) AS n, coalesce(sum(i.total - i.paid), 0) AS owed,
       count(*) FILTER (WHERE {matches}) AS matching
FROM invoice i
LEFT JOIN member m ON m.id = i.member
WHERE {open}
GROUP BY 1
"""


async def payments_due(f: DueFilters, on: date | None = None, size: int = PAGE_SIZE) -> DuePage:
    """Open invoices, most urgent first, with what is still owed on each. Two queries."""
    on = on or today()
    due_where = _due_where(f, on)
    where, args = due_where.sql()
    page = DuePage(page=f.page, size=size, filters=f)
    urgency = URGENCY_SQL.replace("{today}", "{}")
    urgency_args = [on] * 4
    urgency_filter = f"AND {urgency} = {{}}" if f.urgency else ""
    row_args = [*urgency_args, on, hold_cutoff(on), *args, *(urgency_args + [f.urgency] if f.urgency else [])]
    page.rows = await Invoice.raw(DUE_ROWS.format(
        urgency=urgency, today="{}", hold=hold_sql(), in_flight=IN_FLIGHT_SQL, where=where,
        urgency_filter=urgency_filter, limit=page.size, offset=page.offset), *row_args)
    # The summary covers every open invoice (the cards at the top), and counts what the filters match.
    matches = " AND ".join(due_where.clauses[1:]) or "TRUE"  # the filters alone, without OPEN_WHERE
    summary_rows = await Invoice.raw(DUE_SUMMARY.format(urgency=urgency, matches=matches, open=OPEN_WHERE),
                                     *urgency_args, *args)
    summary = {key: {"n": 0, "owed": Decimal("0")} for key, _ in URGENCIES}
    count = 0
    for r in summary_rows:
        summary[r["urgency"]] = {"n": r["n"], "owed": r["owed"]}
        if not f.urgency or r["urgency"] == f.urgency:
            count += r["matching"]
    page.summary, page.count = summary, count
    page.total_owed = sum((s["owed"] for s in summary.values()), Decimal("0"))
    return page


# --- renewals ---------------------------------------------------------------------------------

# A later membership of the member's (a paid renewal, or a new plan) means this one is renewed.
RENEWED_SQL = """EXISTS (SELECT 1 FROM membership nxt WHERE nxt.member = ms.member AND nxt.start_date > ms.end_date
        AND nxt.status IN ('pending', 'active'))"""

RENEWAL_ROWS = """
SELECT ms.id AS membership_id, ms.end_date, ms.status, ms.price, ms.currency, ms.end_date - {today}::date AS days_left,
       p.name AS plan_name, p.price AS plan_price, p.active AS plan_active,
       m.id AS member_id, m.member_number, m.first_name, m.last_name, m.phone,
       r.id AS renewal_invoice, r.number AS renewal_number, r.status AS renewal_status, r.total - r.paid AS renewal_owed,
       {renewed} AS renewed,
       (SELECT max(fz.end_date) FROM membership_freeze fz WHERE fz.membership = ms.id AND fz.status = 'active'
          AND fz.end_date >= {today}::date) AS frozen_until
FROM membership ms
JOIN member m ON m.id = ms.member
JOIN plan p ON p.id = ms.plan
LEFT JOIN LATERAL (
    SELECT i.id, i.number, i.status, i.total, i.paid FROM invoice i
    WHERE i.membership = ms.id AND i.kind = 'renewal' AND i.status <> 'void'
    ORDER BY i.id DESC LIMIT 1
) r ON true
WHERE {where}
ORDER BY ms.end_date, ms.id
LIMIT {limit} OFFSET {offset}
"""

RENEWAL_SUMMARY = """
SELECT count(*) AS n,
       coalesce(sum(coalesce(r.total, p.price)), 0) AS expected,
       count(r.id) AS invoiced,
       count(r.id) FILTER (WHERE r.status = 'paid') AS paid,
       coalesce(sum(r.paid), 0) AS collected,
       count(*) FILTER (WHERE {renewed}) AS renewed
FROM membership ms
JOIN plan p ON p.id = ms.plan
LEFT JOIN LATERAL (
    SELECT i.id, i.status, i.total, i.paid FROM invoice i
    WHERE i.membership = ms.id AND i.kind = 'renewal' AND i.status <> 'void'
    ORDER BY i.id DESC LIMIT 1
) r ON true
WHERE {where}
"""


@dataclass(kw_only=True)
class RenewalPage(paging.Page):
    window: str
    expected: Decimal = Decimal("0")  # what renewing them all would bring in (the renewal invoice, else the plan price)
    invoiced: int = 0
    paid: int = 0
    collected: Decimal = Decimal("0")
    renewed: int = 0


def _renewal_where(window: str) -> str:
    if window == "expired":
        return "ms.status = 'expired' AND ms.end_date >= {}::date - 30 AND ms.end_date < {}::date"
    return "ms.status IN ('active', 'pending') AND ms.end_date >= {}::date AND ms.end_date <= {}::date + " + str(int(window))


async def renewals_due(window: str = "7", page: int = 1, on: date | None = None, size: int = PAGE_SIZE,
                       summary: bool = True) -> RenewalPage:
    """Memberships ending in the window (or expired in the last 30 days), with their renewal
    invoice if it exists and whether a later membership already follows. Two queries.

    summary=False (the API, which shows no cards) counts the rows only: the summary's sums look up
    every membership's renewal invoice and successor, 20-40 ms for a week's 2,500 endings at
    20,000 members; the count is an index range scan."""
    on = on or today()
    window = window if window in dict(WINDOWS) else "7"
    where = _renewal_where(window)
    result = RenewalPage(page=page, size=size, window=window)
    result.rows = await Invoice.raw(RENEWAL_ROWS.format(today="{}", where=where, renewed=RENEWED_SQL,
                                                        limit=result.size, offset=result.offset), on, on, on, on)
    if not summary:
        result.count = (await Invoice.raw(f"SELECT count(*) AS n FROM membership ms WHERE {where}", on, on))[0]["n"]
        return result
    s = (await Invoice.raw(RENEWAL_SUMMARY.format(where=where, renewed=RENEWED_SQL), on, on))[0]
    result.count, result.expected, result.invoiced = s["n"], s["expected"], s["invoiced"]
    result.paid, result.collected, result.renewed = s["paid"], s["collected"], s["renewed"]
    return result
