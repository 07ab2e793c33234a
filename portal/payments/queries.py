"""The payments list: filters to SQL, one query for the page, one for the totals, and a
server-side cursor for CSV exports of any size."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from piccolo.engine import engine_finder

from portal.lib.forms import parse_date
from portal.settings import get_settings
from tables.billing import Payment

PAGE_SIZE = 50
STATUSES = [s.value for s in Payment.Status]
METHODS = [m.value for m in Payment.Method]


@dataclass
class PaymentFilters:
    q: str = ""
    status: str = ""
    method: str = ""
    date_from: date | None = None
    date_to: date | None = None
    staff: int | None = None
    location: int | None = None
    member: int | None = None
    page: int = 1
    errors: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, params) -> "PaymentFilters":
        f = cls()
        get = lambda k: (params.get(k) or "").strip()  # noqa: E731
        f.q = get("q")[:80]
        f.status = get("status") if get("status") in STATUSES else ""
        f.method = get("method") if get("method") in METHODS else ""
        for name in ("date_from", "date_to"):
            raw = get(name)
            if raw:
                value = parse_date(raw)
                if value is None:
                    f.errors[name] = "Use a date like 2026-11-30"
                setattr(f, name, value)
        for name in ("staff", "location", "member"):
            raw = get(name)
            setattr(f, name, int(raw) if raw.isdigit() else None)
        page = get("page")
        f.page = max(1, int(page)) if page.isdigit() else 1
        return f

    def query_string(self, **override) -> str:
        from urllib.parse import urlencode

        values = {"q": self.q, "status": self.status, "method": self.method,
                  "date_from": self.date_from.isoformat() if self.date_from else "",
                  "date_to": self.date_to.isoformat() if self.date_to else "",
                  "staff": self.staff or "", "location": self.location or "", "member": self.member or "", **override}
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def where_clause(f: PaymentFilters) -> tuple[str, list]:
    tz = get_settings().tz
    clauses, args = ["TRUE"], []
    if f.status:
        clauses.append("p.status = {}")
        args.append(f.status)
    if f.method:
        clauses.append("p.method = {}")
        args.append(f.method)
    if f.date_from:
        clauses.append("p.created_at >= {}")
        args.append(datetime.combine(f.date_from, time.min, tz))
    if f.date_to:
        clauses.append("p.created_at < {}")
        args.append(datetime.combine(f.date_to + timedelta(days=1), time.min, tz))
    if f.staff:
        clauses.append("p.staff = {}")
        args.append(f.staff)
    if f.location:
        clauses.append("p.location = {}")
        args.append(f.location)
    if f.member:
        clauses.append("p.member = {}")
        args.append(f.member)
    if f.q:
        text = f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        upper = text.upper().replace(" ", "")
        clauses.append("(upper(p.receipt_number) LIKE {} || '%' OR upper(p.reference) LIKE {} || '%' "
                       "OR upper(m.member_number) LIKE {} || '%' "
                       "OR lower(m.first_name || ' ' || m.last_name) LIKE {} || '%' OR lower(m.last_name) LIKE {} || '%')")
        args.extend([upper, upper, upper, text.lower(), text.lower()])
    return " AND ".join(clauses), args


SELECT_ROWS = """
SELECT p.id, p.created_at, p.completed_at, p.method, p.amount, p.currency, p.refunded, p.status, p.reference,
       p.receipt_number, m.id AS member_id, m.member_number, m.first_name || ' ' || m.last_name AS member_name,
       u.username AS staff_username, l.name AS location_name
FROM payment p
LEFT JOIN member m ON m.id = p.member
LEFT JOIN staff s ON s.id = p.staff
LEFT JOIN piccolo_user u ON u.id = s.user
LEFT JOIN location l ON l.id = p.location
WHERE {where}
ORDER BY p.created_at DESC, p.id DESC
"""

TOTALS = """
SELECT count(*) AS n, coalesce(sum(p.amount), 0) AS amount, coalesce(sum(p.refunded), 0) AS refunded,
       coalesce(sum(p.amount - p.refunded) FILTER (WHERE p.status IN ('completed', 'partially_refunded')), 0) AS net
FROM payment p LEFT JOIN member m ON m.id = p.member
WHERE {where}
"""


@dataclass
class PaymentPage:
    rows: list[dict]
    count: int
    amount: Decimal
    refunded: Decimal
    net: Decimal
    page: int
    pages: int


async def payment_page(f: PaymentFilters) -> PaymentPage:
    where, args = where_clause(f)
    totals = (await Payment.raw(TOTALS.format(where=where), *args))[0]
    rows = await Payment.raw(SELECT_ROWS.format(where=where) + f" LIMIT {PAGE_SIZE} OFFSET {(f.page - 1) * PAGE_SIZE}", *args)
    pages = max(1, -(-totals["n"] // PAGE_SIZE))
    return PaymentPage(rows, totals["n"], totals["amount"], totals["refunded"], totals["net"], f.page, pages)


def _positional(sql: str) -> str:
    """Piccolo's {} placeholders -> asyncpg's $1, $2, ..."""
    parts = sql.split("{}")
    return "".join(part + (f"${i + 1}" if i < len(parts) - 1 else "") for i, part in enumerate(parts))


CSV_COLUMNS = ["receipt_number", "created_at", "completed_at", "member_number", "member_name", "method", "status",
               "amount", "refunded", "currency", "reference", "staff_username", "location_name"]


async def stream_rows(f: PaymentFilters, batch: int = 2000):
    """All matching rows through a server-side cursor: memory stays flat for 500,000 rows."""
    where, args = where_clause(f)
    sql = _positional(SELECT_ROWS.format(where=where))
    engine = engine_finder()
    async with engine.pool.acquire() as conn:
        async with conn.transaction(readonly=True):
            async for record in conn.cursor(sql, *args, prefetch=batch):
                yield record
