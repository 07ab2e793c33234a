"""CSV of every list, with the list's own filters (issue 15): members, payments due, renewals,
messages, unmatched M-Pesa and the close history, beside the payments list's and the analytics figures' exports.

Each export reads the list through the same function as its page, page after page, so the
filters, order and rules are the page's; it streams (a page of rows in memory at a time) and
writes through `CsvText` (formula-safe, times in the gym's zone to the second). Exports are for
managers: a list of members with their phones leaves the building with whoever downloads it.

    GET /members.csv?q=                 GET /dues.csv?q=&urgency=
    GET /renewals.csv?window=           GET /messages.csv?channel=&status=&kind=&member=
    GET /mpesa/unmatched.csv            GET /close.csv?location=  (the close history)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from decimal import Decimal
from zoneinfo import ZoneInfo

from litestar import Request, get
from litestar.params import FromQuery
from litestar.response import Stream

from portal.auth import manager_required
from portal.billing import closes
from portal.lib import paging
from portal.lib.clock import today
from portal.lib.csvfile import CsvText, local_header
from portal.members.members import search_members
from portal.messages.queries import MessageFilters, message_page
from portal.payments.mpesa.c2b import unmatched_payments
from portal.reports import dues

EXPORT_PAGE = 1000  # rows read per query while streaming


def csv_stream(name: str, columns: list[str], rows: AsyncIterator[Iterable], tz: ZoneInfo,
               time_columns: Iterable[str] = ()) -> Stream:
    """A CSV download named `name-<today>.csv`: the header (time columns naming the zone), then
    `rows` as they come, handed to the client every few hundred rows."""
    times = set(time_columns)

    async def lines():
        out = CsvText(tz)
        out.row(local_header(c, tz) if c in times else c for c in columns)
        count = 0
        async for values in rows:
            out.row(values)
            count += 1
            if count % 500 == 0:
                yield out.take().encode()
        yield out.take().encode()

    filename = f"{name}-{today().isoformat()}.csv"
    return Stream(lines(), media_type="text/csv", headers={"content-disposition": f'attachment; filename="{filename}"'})


async def every_row(fetch: Callable[[int], Awaitable[paging.Page]]) -> AsyncIterator[dict]:
    """The rows of every page of a list, `fetch(page_number)` giving one page."""
    number = 1
    while True:
        page = await fetch(number)
        for row in page.rows:
            yield row
        if len(page.rows) < page.size:
            return
        number += 1


def _pick(rows: AsyncIterator[dict], columns: list[str], **computed: Callable[[dict], object]) -> AsyncIterator[list]:
    async def picked():
        async for r in rows:
            yield [computed[c](r) if c in computed else r[c] for c in columns]
    return picked()


MEMBER_COLUMNS = ["member_number", "first_name", "last_name", "phone", "email", "status", "plan", "membership_status",
                  "membership_ends", "on_hold", "language"]


@get("/members.csv", guards=[manager_required])
async def members_csv(request: Request, q: FromQuery[str] = "") -> Stream:
    rows = every_row(lambda n: search_members(q.strip()[:80], n, size=EXPORT_PAGE))
    return csv_stream("members", MEMBER_COLUMNS, _pick(
        rows, MEMBER_COLUMNS, plan=lambda r: r["plan_name"], membership_ends=lambda r: r["end_date"],
        on_hold=lambda r: "yes" if r["hold"] else "no"), request.app.state.settings.tz)


DUE_COLUMNS = ["member_number", "first_name", "last_name", "phone", "invoice", "due_date", "urgency", "total", "paid",
               "still_owed", "currency", "last_paid", "on_hold"]


@get("/dues.csv", guards=[manager_required])
async def dues_csv(request: Request) -> Stream:
    f = dues.DueFilters.parse(request.query_params)
    on = today()

    async def fetch(n: int) -> paging.Page:
        f.page = n
        return await dues.payments_due(f, on=on, size=EXPORT_PAGE)

    return csv_stream("payments-due", DUE_COLUMNS, _pick(
        every_row(fetch), DUE_COLUMNS, invoice=lambda r: r["number"], still_owed=lambda r: r["owed"],
        last_paid=lambda r: r["last_paid_at"], on_hold=lambda r: "yes" if r["hold"] else "no"),
        request.app.state.settings.tz, time_columns=("last_paid",))


RENEWAL_COLUMNS = ["member_number", "first_name", "last_name", "phone", "plan", "membership_status", "end_date",
                   "days_left", "renewal_price", "currency", "renewal_invoice", "renewal_status", "renewal_owed", "renewed"]


@get("/renewals.csv", guards=[manager_required])
async def renewals_csv(request: Request, window: FromQuery[str] = "7") -> Stream:
    on = today()
    rows = every_row(lambda n: dues.renewals_due(window, n, on=on, size=EXPORT_PAGE))
    return csv_stream("renewals", RENEWAL_COLUMNS, _pick(
        rows, RENEWAL_COLUMNS, plan=lambda r: r["plan_name"], membership_status=lambda r: r["status"],
        renewal_price=lambda r: r["price"], renewal_invoice=lambda r: r["renewal_number"],
        renewed=lambda r: "yes" if r["renewed"] else "no"), request.app.state.settings.tz)


MESSAGE_COLUMNS = ["created_at", "member_number", "member_name", "kind", "channel", "to_address", "subject", "status",
                   "attempts", "last_error", "sent_at", "delivered_at"]


@get("/messages.csv", guards=[manager_required])
async def messages_csv(request: Request) -> Stream:
    f = MessageFilters.parse(request.query_params)

    async def fetch(n: int) -> paging.Page:
        f.page = n
        return await message_page(f, size=EXPORT_PAGE)

    return csv_stream("messages", MESSAGE_COLUMNS, _pick(every_row(fetch), MESSAGE_COLUMNS), request.app.state.settings.tz,
                      time_columns=("created_at", "sent_at", "delivered_at"))


UNMATCHED_COLUMNS = ["received_at", "mpesa_code", "amount", "account_typed", "phone", "name", "paid_at", "via", "deliveries"]
UNMATCHED_MAX = 100_000  # the queue is worked down by staff; this is far beyond any real one


@get("/mpesa/unmatched.csv", guards=[manager_required])
async def unmatched_csv(request: Request) -> Stream:
    async def rows():
        for u in await unmatched_payments(limit=UNMATCHED_MAX):
            yield [u.received_at, u.trans_id, u.amount, u.account, u.phone, u.name, u.trans_time, u.via, u.deliveries]

    return csv_stream("unmatched-mpesa", UNMATCHED_COLUMNS, rows(), request.app.state.settings.tz,
                      time_columns=("received_at",))


CLOSE_COLUMNS = ["business_date", "location", "status", "expected_total", "cash_expected", "cash_counted", "variance",
                 "note", "closed_by", "closed_at", "reopened_by", "reopened_at", "reopen_reason", "version"]


@get("/close.csv", guards=[manager_required])
async def closes_csv(request: Request) -> Stream:
    location = paging.whole_number(request.query_params, "location")
    rows = every_row(lambda n: closes.close_history(location, n, size=EXPORT_PAGE))
    return csv_stream("closes", CLOSE_COLUMNS, _pick(
        rows, CLOSE_COLUMNS, expected_total=lambda r: Decimal(r["expected_total"]) if r["expected_total"] else None),
        request.app.state.settings.tz, time_columns=("closed_at", "reopened_at"))


routes = [members_csv, dues_csv, renewals_csv, messages_csv, unmatched_csv, closes_csv]
