"""The payments list: filters to SQL, one query for the page, one for the totals, and a
server-side cursor for CSV exports of any size."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import partial

from piccolo.engine import engine_finder

from portal.lib import paging
from portal.lib.forms import parse_date
from portal.lib.i18n import S_
from portal.payments import figures
from portal.settings import get_settings
from tables.billing import Payment

PAGE_SIZE = 50
STATUSES = [s.value for s in Payment.Status]
METHODS = [m.value for m in Payment.Method]


@dataclass
class PaymentFilters(paging.Filters):
    q: str = ""
    status: str = ""
    method: str = ""
    date_from: date | None = None
    date_to: date | None = None
    staff: int | None = None
    location: int | None = None

    def read(self, params) -> None:
        get = partial(paging.param, params)
        self.q = get("q")[:80]
        self.status = get("status") if get("status") in STATUSES else ""
        self.method = get("method") if get("method") in METHODS else ""
        for name in ("date_from", "date_to"):
            raw = get(name)
            if raw:
                value = parse_date(raw)
                if value is None:
                    self.errors[name] = S_("Use a date like 2026-11-30")
                setattr(self, name, value)
        self.staff = paging.whole_number(params, "staff")
        self.location = paging.whole_number(params, "location")

    def values(self) -> dict:
        return {"q": self.q, "status": self.status, "method": self.method,
                "date_from": self.date_from.isoformat() if self.date_from else "",
                "date_to": self.date_to.isoformat() if self.date_to else "",
                "staff": self.staff or "", "location": self.location or ""}


def where_clause(f: PaymentFilters) -> tuple[str, list]:
    tz = get_settings().tz
    where = paging.Where()
    where.equal("p.status", f.status)
    where.equal("p.method", f.method)
    if f.date_from:
        where.add("p.created_at >= {}", datetime.combine(f.date_from, time.min, tz))
    if f.date_to:
        where.add("p.created_at < {}", datetime.combine(f.date_to + timedelta(days=1), time.min, tz))
    where.equal("p.staff", f.staff)
    where.equal("p.location", f.location)
    where.equal("p.member", f.member)
    if f.q:
        text = f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        upper = text.upper().replace(" ", "")
        where.add("(upper(p.receipt_number) LIKE {} || '%' OR upper(p.reference) LIKE {} || '%' "
                  "OR upper(m.member_number) LIKE {} || '%' "
                  # Names folded as the member search folds them (portal.members.members.SEARCH_WHERE).
                  "OR m.first_name_folded || ' ' || m.last_name_folded LIKE (SELECT fold_name({})) || '%' "
                  "OR m.last_name_folded LIKE (SELECT fold_name({})) || '%')",
                  upper, upper, upper, text.lower(), text.lower())
    return where.sql()


SELECT_ROWS = """
SELECT p.id, p.created_at, p.completed_at, p.method, p.amount, p.currency, p.refunded, p.status, p.reference,
       p.receipt_number, m.id AS member_id, m.member_number, m.first_name || ' ' || m.last_name AS member_name,
       u.username AS staff_username, l.name AS location_name,
       coalesce(sold.items, '') AS sold, coalesce(sold.buyer_name, '') AS buyer_name
FROM payment p
LEFT JOIN member m ON m.id = p.member
LEFT JOIN staff s ON s.id = p.staff
LEFT JOIN piccolo_user u ON u.id = s.user
LEFT JOIN location l ON l.id = p.location
-- What a desk sale's payment paid for (portal/sales/sales.py): "1 x Day pass, 2 x Water".
LEFT JOIN LATERAL (
    SELECT sa.buyer_name, string_agg(il.quantity || ' x ' || il.description, ', ' ORDER BY il.id) AS items
    FROM sale sa JOIN sale_line sl ON sl.sale = sa.id JOIN invoice_line il ON il.id = sl.invoice_line
    WHERE sa.payment = p.id GROUP BY sa.id
) sold ON true
WHERE {where}
ORDER BY p.created_at DESC, p.id DESC
"""

TOTALS = """
SELECT count(*) AS n, coalesce(sum(p.amount), 0) AS amount, coalesce(sum(p.refunded), 0) AS refunded,
       coalesce(sum(p.amount - p.refunded) FILTER (WHERE p.status IN ('completed', 'partially_refunded')), 0) AS net
FROM payment p LEFT JOIN member m ON m.id = p.member
WHERE {where}
"""


@dataclass(kw_only=True)
class PaymentPage(paging.Page):
    amount: Decimal
    refunded: Decimal
    net: Decimal


def _bounds(f: PaymentFilters) -> tuple[datetime | None, datetime | None]:
    """The created-at range the date filters stand for (where_clause's own)."""
    tz = get_settings().tz
    since = datetime.combine(f.date_from, time.min, tz) if f.date_from else None
    until = datetime.combine(f.date_to + timedelta(days=1), time.min, tz) if f.date_to else None
    return since, until


async def _totals(f: PaymentFilters, where: str, args: list) -> dict:
    """The list's totals: from the payment figures (portal/payments/figures.py) when the filters
    are ones they carry, so 50 rows of 500,000 do not cost a pass over the 500,000; a member's or
    a search's from the payments themselves (an index finds those few)."""
    since, until = _bounds(f)
    if not f.q and not f.member and figures.whole_hours(get_settings().tz, *(b for b in (since, until) if b)):
        return await figures.payment_totals(status=f.status, method=f.method, staff=f.staff, location=f.location,
                                            since=since, until=until)
    return (await Payment.raw(TOTALS.format(where=where), *args))[0]


async def payment_page(f: PaymentFilters) -> PaymentPage:
    where, args = where_clause(f)
    totals = await _totals(f, where, args)
    page = PaymentPage(page=f.page, size=PAGE_SIZE, count=totals["n"], amount=totals["amount"],
                       refunded=totals["refunded"], net=totals["net"])
    page.rows = await Payment.raw(SELECT_ROWS.format(where=where) + f" LIMIT {page.size} OFFSET {page.offset}", *args)
    return page


async def payments_after(f: PaymentFilters, before_id: int | None, limit: int) -> list[dict]:
    """The API's list: the payments page's filters, newest first by id, `limit` + 1 rows after the
    cursor `before_id` (the extra row says whether there is a next page). One query."""
    where, args = where_clause(f)
    if before_id is not None:
        where, args = where + " AND p.id < {}", [*args, before_id]
    sql = SELECT_ROWS.format(where=where).replace("ORDER BY p.created_at DESC, p.id DESC", "ORDER BY p.id DESC")
    return await Payment.raw(sql + f" LIMIT {int(limit) + 1}", *args)


def _positional(sql: str) -> str:
    """Piccolo's {} placeholders -> asyncpg's $1, $2, ..."""
    parts = sql.split("{}")
    return "".join(part + (f"${i + 1}" if i < len(parts) - 1 else "") for i, part in enumerate(parts))


CSV_COLUMNS = ["receipt_number", "created_at", "completed_at", "member_number", "member_name", "method", "status",
               "amount", "refunded", "currency", "reference", "staff_username", "location_name", "sold", "buyer_name"]
CSV_TIME_COLUMNS = ("created_at", "completed_at")  # in the gym's time zone, which their headers name


async def stream_rows(f: PaymentFilters, batch: int = 2000):
    """All matching rows through a server-side cursor: memory stays flat for 500,000 rows."""
    where, args = where_clause(f)
    sql = _positional(SELECT_ROWS.format(where=where))
    engine = engine_finder()
    async with engine.pool.acquire() as conn:
        async with conn.transaction(readonly=True):
            async for record in conn.cursor(sql, *args, prefetch=batch):
                yield record
