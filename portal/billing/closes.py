"""The end-of-day close of one location: what the ledger expects per method (cash per staff
member), against the cash counted; closing locks the day.

Locking: posting money at a location takes a shared advisory lock on it for the transaction;
closing takes it exclusively. So a close never misses a payment that was being written while it
added up the day, and money posted after a close sees the day closed and counts toward the
location's next open day instead, with the reason in the ledger entry's memo (portal/billing/ledger.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

from portal import audit
from portal.lib import db, paging
from portal.lib.clock import now, today
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.forms import whole
from portal.lib.i18n import S_
from portal.lib.money import Money, MoneyParseError
from portal.settings import get_settings
from tables.closes import DayClose

LOCK_CLASS = 7301  # pg_advisory_xact_lock(class, location): ours for day closes
DENOMINATIONS = (1000, 500, 200, 100, 50, 20, 10, 5, 1)  # KES notes and coins
METHOD_ACCOUNTS = ("cash", "mpesa", "card", "bank", "cheque")


async def _lock(location_id: int, *, shared: bool) -> None:
    fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    await engine_finder().run_querystring(QueryString(f"SELECT {fn}({{}}, {{}})", LOCK_CLASS, location_id))


async def business_day_for(locations: set[int]) -> tuple[date, date | None]:
    """(the day money posted now at these locations counts toward, the closed day it was moved
    from or None). Called by ledger.post inside the posting transaction."""
    day = today()
    if not locations:
        return day, None
    for location in sorted(locations):
        await _lock(location, shared=True)
    rows = await DayClose.raw(
        "SELECT business_date FROM day_close WHERE location = ANY({}::int[]) AND status = 'closed' "
        "AND business_date >= {}::date", sorted(locations), day)
    closed = {r["business_date"] for r in rows}
    moved = day
    while moved in closed:
        moved += timedelta(days=1)
    return moved, (day if moved != day else None)


EXPECTED_SQL = """
SELECT l.account, l.location IS NULL AS online, e.staff,
       coalesce(nullif(trim(u.first_name || ' ' || u.last_name), ''), u.username) AS staff_name,
       e.kind = 'gateway_fee' AS fee, (e.at AT TIME ZONE '{tz}')::date <> e.business_date AS moved,
       sum(l.amount) AS amount, count(DISTINCT e.payment) AS payments
FROM ledger_entry e
JOIN ledger_leg l ON l.entry = e.id
LEFT JOIN staff s ON s.id = e.staff
LEFT JOIN piccolo_user u ON u.id = s."user"
WHERE e.business_date = {{}} AND (l.location = {{}} OR l.location IS NULL)
  AND l.account IN ('cash', 'bank', 'cheque', 'mpesa', 'card')
GROUP BY 1, 2, 3, 4, 5, 6
"""


async def expected(location_id: int, day: date) -> dict:
    """What the ledger says the location took on the day: per method (card gross, fees and net),
    cash per staff member who took it, and how much arrived after an earlier day's close. Beside
    it, for information, the day's money that reached no desk (Paybill, pay links): the gym's, but
    nobody at a location counts it. Amounts as strings (the close keeps this as its snapshot)."""
    rows = await DayClose.raw(EXPECTED_SQL.format(tz=get_settings().tz), day, location_id)
    zero = Decimal("0")
    methods = {a: zero for a in METHOD_ACCOUNTS}
    payments = {a: 0 for a in METHOD_ACCOUNTS}
    fees, moved_in = zero, zero
    cash: dict = {}
    online = {a: zero for a in METHOD_ACCOUNTS}
    for r in rows:
        if r["online"]:
            online[r["account"]] += r["amount"]
            continue
        methods[r["account"]] += r["amount"]
        if r["fee"]:
            fees -= r["amount"]
        else:
            payments[r["account"]] += r["payments"]
        if r["moved"]:
            moved_in += r["amount"]
        if r["account"] == "cash":
            key = str(r["staff"] or "")
            entry = cash.setdefault(key, {"staff": r["staff"], "name": r["staff_name"] or "No staff recorded",
                                          "expected": zero})
            entry["expected"] += r["amount"]
    return {
        "methods": {a: str(v) for a, v in methods.items()}, "payments": payments,
        "card": {"gross": str(methods["card"] + fees), "fees": str(fees), "net": str(methods["card"])},
        "cash_by_staff": [{**c, "expected": str(c["expected"])} for c in sorted(cash.values(), key=lambda c: c["name"])],
        "moved_in": str(moved_in), "total": str(sum(methods.values(), zero)),
        "online": {a: str(v) for a, v in online.items() if v}, "online_total": str(sum(online.values(), zero)),
    }


@dataclass
class CashCount:
    staff: int | None
    amount: Money
    denominations: dict[str, int]


def parse_counts(form: dict, expected_cash: list[dict], currency: str) -> tuple[list[CashCount], dict[str, str]]:
    """The cash counted per staff member from the close form: a typed amount, or notes and coins
    (which then must agree with a typed amount, if one was typed too). Errors by field name."""
    counts, errors = [], {}
    for row in expected_cash:
        key = str(row["staff"] or "none")
        typed = (form.get(f"counted_{key}") or "").strip().replace(",", "")
        notes: dict[str, int] = {}
        for d in DENOMINATIONS:
            raw = (form.get(f"d_{key}_{d}") or "").strip()
            if raw:
                # Up to a million of one note: more is a typo, and the sum must fit the close's column.
                count = whole(raw, 999_999)
                if count is None:
                    errors[f"d_{key}_{d}"] = S_("A whole number of notes or coins")
                    continue
                if count:
                    notes[str(d)] = count
        from_notes = Decimal(sum(int(d) * n for d, n in notes.items()))
        try:
            # Money.parse: plain decimals only, and no more than the money columns hold.
            amount = Money.parse(typed, currency).amount if typed else (from_notes if notes else None)
        except MoneyParseError:
            errors[f"counted_{key}"] = S_("Type the cash counted, e.g. 12500")
            continue
        if amount is None:
            errors[f"counted_{key}"] = S_("Count this cash (0 if there is none)")
            continue
        if amount < 0 or amount != amount.quantize(Decimal("0.01")):
            errors[f"counted_{key}"] = S_("Type the cash counted, e.g. 12500")
            continue
        if notes and amount != from_notes:
            errors[f"counted_{key}"] = f"The notes and coins add up to {Money(from_notes, currency).format()}, not {Money(amount, currency).format()}"
            continue
        counts.append(CashCount(row["staff"], Money(amount, currency), notes))
    return counts, errors


async def close_day(location_id: int, day: date, counts: list[CashCount], note: str, staff_id: int) -> dict:
    if day > today():
        raise RuleBroken(S_("A day can be closed once it has started, not before"))
    async with db.transaction():
        await _lock(location_id, shared=False)  # waits for money being posted here right now
        existing = await DayClose.select().where(
            (DayClose.location == location_id) & (DayClose.business_date == day)).lock_rows().first()
        if existing and existing["status"] == "closed":
            raise RuleBroken(S_("This day is already closed"))
        exp = await expected(location_id, day)
        by_staff = {str(c.staff or ""): c for c in counts}
        lines, cash_expected, cash_counted = [], Decimal("0"), Decimal("0")
        for row in exp["cash_by_staff"]:
            count = by_staff.get(str(row["staff"] or ""))
            if count is None:
                raise RuleBroken(f"Count the cash {row['name']} took")
            e, c = Decimal(row["expected"]), count.amount.amount
            lines.append({**row, "counted": str(c), "variance": str(c - e), "denominations": count.denominations})
            cash_expected, cash_counted = cash_expected + e, cash_counted + c
        values = {"expected": exp, "counted": {"cash_by_staff": lines}, "cash_expected": cash_expected,
                  "cash_counted": cash_counted, "variance": cash_counted - cash_expected, "note": note.strip(),
                  "closed_by": staff_id, "closed_at": now(), "status": "closed"}
        if existing:
            await DayClose.update({getattr(DayClose, k): v for k, v in values.items()} | {
                DayClose.version: existing["version"] + 1}).where(DayClose.id == existing["id"])
            close_id = existing["id"]
        else:
            close_id = (await DayClose.insert(DayClose(location=location_id, business_date=day, **values))
                        .returning(DayClose.id))[0]["id"]
        await audit.record("day.closed", "day_close", close_id, staff_id=staff_id, reason=note.strip(), details={
            "location": location_id, "day": day.isoformat(), "cash_expected": str(cash_expected),
            "cash_counted": str(cash_counted), "variance": str(cash_counted - cash_expected)})
    return await DayClose.select().where(DayClose.id == close_id).output(load_json=True).first()


async def reopen_day(close_id: int, reason: str, staff_id: int) -> dict:
    found = await DayClose.select(DayClose.location).where(DayClose.id == close_id).first()
    if not found:  # before the reason: a form for a close that does not exist has nothing to show
        raise NotFound("close")
    reason = reason.strip()
    if not reason:
        raise RuleBroken(S_("Give a reason for reopening the day"))
    async with db.transaction():
        await _lock(found["location"], shared=False)  # the same order as close_day: no deadlock
        row = await DayClose.select().where(DayClose.id == close_id).lock_rows().first()
        if row["status"] != "closed":
            raise RuleBroken(S_("This day is not closed"))
        await DayClose.update({DayClose.status: "reopened", DayClose.reopened_by: staff_id, DayClose.reopened_at: now(),
                               DayClose.reopen_reason: reason}).where(DayClose.id == close_id)
        await audit.record("day.reopened", "day_close", close_id, staff_id=staff_id, reason=reason,
                           details={"location": row["location"], "day": row["business_date"].isoformat()})
    return await DayClose.select().where(DayClose.id == close_id).output(load_json=True).first()


async def close_for(location_id: int, day: date) -> dict | None:
    return await DayClose.select().where(
        (DayClose.location == location_id) & (DayClose.business_date == day)).output(load_json=True).first()


HISTORY_ROWS = """
SELECT c.id, c.business_date, c.status, c.cash_expected, c.cash_counted, c.variance, c.note, c.closed_at,
       c.reopened_at, c.reopen_reason, c.version, c.expected ->> 'total' AS expected_total,
       l.id AS location_id, l.name AS location,
       coalesce(nullif(trim(coalesce(cu.first_name, '') || ' ' || coalesce(cu.last_name, '')), ''), cu.username) AS closed_by,
       coalesce(nullif(trim(coalesce(ru.first_name, '') || ' ' || coalesce(ru.last_name, '')), ''), ru.username) AS reopened_by
FROM day_close c
JOIN location l ON l.id = c.location
LEFT JOIN staff cs ON cs.id = c.closed_by LEFT JOIN piccolo_user cu ON cu.id = cs.user
LEFT JOIN staff rs ON rs.id = c.reopened_by LEFT JOIN piccolo_user ru ON ru.id = rs.user
WHERE {where}
ORDER BY c.business_date DESC, c.id DESC
LIMIT {limit} OFFSET {offset}
"""


async def close_history(location_id: int | None = None, page: int = 1, size: int = 14) -> paging.Page:
    """Past closes, newest day first (one location's, or every location's): what was expected,
    counted and short or over, who closed and who reopened. One query per page."""
    result = paging.Page(page=page, size=size)
    where = paging.Where()
    where.equal("c.location", location_id)
    clause, args = where.sql()
    result.rows = await DayClose.raw(HISTORY_ROWS.format(where=clause, limit=result.size, offset=result.offset), *args)
    return result
