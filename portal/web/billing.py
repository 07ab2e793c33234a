"""Money pages: record a desk payment, a payment and its receipts, refunds, invoices and voids,
the payments list with its CSV export, member statements, and the PDFs."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Body, FromPath, FromQuery, Parameter
from litestar.response import Redirect, Stream, Template

from portal.auth import manager_required, staff_required
from portal.billing import paylinks
from portal.billing.discounts import desk_limit_text
from portal.billing.invoices import void_invoice
from portal.billing.queries import invoice_discounts, invoice_lines_and_allocations
from portal.documents import context as document_context
from portal.documents import store as document_store
from portal.documents.render import render_html
from portal.documents.requests import request_document, request_receipts
from portal.lib.clock import today
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.forms import confirmed_amount, desk_payment_form, parse_date
from portal.lib.i18n import S_
from portal.lib.money import Money, MoneyParseError
from portal.members.members import get_member
from portal.payments.limits import NeedsConfirmation
from portal.payments.queries import (
    CSV_COLUMNS,
    CSV_TIME_COLUMNS,
    METHODS,
    STATUSES,
    PaymentFilters,
    payment_page,
    stream_rows,
)
from portal.payments.refunds import refund_reason, start_refund
from portal.payments.service import (
    METHOD_LABELS,
    desk_payment_problems,
    record_desk_payment,
)
from portal.payments.state import KeyReused
from portal.web.exports import csv_stream
from portal.web.pages import (
    ask_to_confirm,
    member_page,
    new_idempotency_key,
    payment_or_404,
    payment_page_response,
    qr_svg,
)
from portal.web.templating import is_htmx
from tables.billing import CreditNote, Invoice
from tables.locations import Location
from tables.staff import Staff

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


# --- recording a payment at the desk -----------------------------------------------------------

def _desk_field(error: RuleBroken) -> str:
    # The form has no place of its own for the invoice: its problems show under the amount.
    return error.field if error.field in ("method", "amount", "reference", "location") else "amount"


@post("/members/{member_id:int}/payments", guards=[staff_required], status_code=200)
async def record_payment(request: Request, member_id: FromPath[int], data: FormData) -> Template | Redirect:
    values, errors = desk_payment_form(data, request.app.state.settings.currency)
    values["idempotency_key"] = values["idempotency_key"] or new_idempotency_key()
    clean = values.pop("clean")
    # The rules are asked even when something could not be read, so the desk sees every problem at once.
    for problem in desk_payment_problems(method=clean["method"], amount=clean["amount"], reference=clean["reference"]):
        errors.setdefault(_desk_field(problem), str(problem))
    if not errors:
        user = request.scope["user"]
        try:
            recorded = await record_desk_payment(
                member_id=member_id, method=clean["method"], amount=clean["amount"], reference=clean["reference"],
                invoice_id=clean["invoice_id"], idempotency_key=values["idempotency_key"], staff_id=user.staff_id,
                location_id=user.location_id or clean["location_id"], note=clean["note"], confirmed=clean["confirmed"])
        except NeedsConfirmation as e:
            errors["amount"] = str(e)
            values.update(ask_to_confirm(clean["amount"]))
        except KeyReused as e:
            # Sent again after Back, and changed: never the first payment in its place, never silently.
            values["idempotency_key"] = new_idempotency_key()
            return await member_page(member_id, status=409, pay_values=values, pay_errors={"form": str(e)},
                                     reused=e.earlier)
        except RuleBroken as e:
            errors[_desk_field(e)] = str(e)
        else:
            if recorded.created:
                await request_receipts(recorded.payment["id"])
            if data.get("then") == "slip":
                return Redirect(f"/payments/{recorded.payment['id']}/slip?print=1", status_code=303)
            return Redirect(f"/payments/{recorded.payment['id']}", status_code=303)
    return await member_page(member_id, status=422, pay_values=values, pay_errors=errors)


# --- a payment and its receipts -----------------------------------------------------------------


@get("/payments/{payment_id:int}", guards=[staff_required])
async def payment_detail(payment_id: FromPath[int]) -> Template:
    return await payment_page_response(payment_id)


@get("/payments/{payment_id:int}/slip", guards=[staff_required])
async def payment_slip(payment_id: FromPath[int], print_: Annotated[bool, Parameter(query="print")] = False) -> Response:
    """The 80 mm receipt slip as a page the desk's browser prints (the same template as the slip
    PDF, 80 mm wide), printing itself when asked (`?print=1`, after "Record and print slip") and
    then going back to the member search for the next person in the queue."""
    context = await document_context.receipt_context(payment_id)
    html = render_html("receipt_80mm", {**context, "stylesheet": "/static/pdf.css",
                                        "slip": {"autoprint": print_, "payment_id": payment_id}})
    return Response(html, media_type="text/html")


@post("/payments/{payment_id:int}/refund", guards=[manager_required], status_code=200)
async def payment_refund(request: Request, payment_id: FromPath[int], data: FormData) -> Template | Redirect:
    """Refund all or part of a payment by the rail it came in on (M-Pesa's Reverse posts here too)."""
    payment = await payment_or_404(payment_id)
    values = {"amount": (data.get("amount") or "").strip(), "reason": (data.get("reason") or "").strip()}
    errors = {}
    amount = None  # no amount field (the Reverse form): all that is left
    if "amount" in data:
        try:
            amount = Money.parse(values["amount"], payment["currency"])
        except MoneyParseError as e:
            errors["refund_amount"] = str(e)[:1].upper() + str(e)[1:]
    try:
        refund_reason(values["reason"])
    except RuleBroken as e:
        errors["reason"] = str(e)
    if not errors:
        asked = amount if amount is not None else Money(payment["amount"] - payment["refunded"], payment["currency"])
        try:
            await start_refund(payment_id, amount, values["reason"], request.scope["user"].staff_id,
                               confirmed=confirmed_amount(data, asked))
            return Redirect(f"/payments/{payment_id}", status_code=303)
        except NeedsConfirmation as e:
            errors["refund_amount"] = str(e)
            values.update(ask_to_confirm(asked))
        except RuleBroken as e:
            errors["reason" if e.field == "reason" else "refund_amount"] = str(e)
    return await payment_page_response(payment_id, status=422, refund_values=values, refund_errors=errors)


# --- invoices ---------------------------------------------------------------------------------

@get("/invoices/{invoice_id:int}", guards=[staff_required])
async def invoice_detail(invoice_id: FromPath[int]) -> Template:
    return await invoice_page(invoice_id)


async def invoice_page(invoice_id: int, status: int = 200, void_values: dict | None = None,
                       void_errors: dict | None = None, discount_values: dict | None = None,
                       discount_errors: dict | None = None) -> Template:
    rows = await Invoice.raw(
        "SELECT i.*, m.first_name || ' ' || m.last_name AS member_name, m.member_number, "
        # Who it is addressed to, when a payer (portal/payers): as at issue, in the same query.
        "b.payer AS bill_payer, b.kind AS bill_kind, b.name AS bill_name, b.address AS bill_address, "
        "b.kra_pin AS bill_kra_pin FROM invoice i "
        "JOIN member m ON m.id = i.member LEFT JOIN invoice_bill_to b ON b.invoice = i.id WHERE i.id = {}", invoice_id)
    if not rows:
        raise NotFound("invoice")
    invoice = rows[0]
    lines, allocations = await invoice_lines_and_allocations(invoice_id)
    subject = await document_store.invoice_subject(invoice_id)  # makes the pay link the PDF prints
    link = await paylinks.live_link(invoice_id)
    token = link and paylinks.token_for(link)
    link_url = paylinks.url_for(token) if token else ""
    notes = await CreditNote.select().where(CreditNote.invoice == invoice_id)
    discounts = await invoice_discounts(invoice_id)
    return Template("invoices/detail.html", status_code=status, context={
        "invoice": invoice, "lines": lines, "allocations": allocations, "credit_notes": notes,
        "document": {"kind": "invoice", "subject": subject, "label": "Invoice PDF",
                     "ready": await document_store.find("invoice", subject)},
        "void_values": void_values or {}, "void_errors": void_errors or {},
        "discounts": discounts, "discount_values": discount_values or {"kind": "percent"},
        "discount_errors": discount_errors or {}, "desk_limit": desk_limit_text(),
        "pay_link": link, "pay_link_url": link_url, "qr": qr_svg(link_url) if link_url else "",
    })


@post("/invoices/{invoice_id:int}/void", guards=[manager_required], status_code=200)
async def invoice_void(request: Request, invoice_id: FromPath[int], data: FormData) -> Template | Redirect:
    reason = (data.get("reason") or "").strip()
    errors = {}
    if not reason:
        errors["reason"] = S_("Give a reason for voiding")
    else:
        try:
            note = await void_invoice(invoice_id, reason, request.scope["user"].staff_id)
            await request_document("credit_note", f"credit_note:{note['id']}")
            return Redirect(f"/invoices/{invoice_id}", status_code=303)
        except RuleBroken as e:
            # Voided meanwhile (a double click, a second tab): the page shows it void, by whom and why.
            if await Invoice.exists().where((Invoice.id == invoice_id) & (Invoice.status == "void")):
                return Redirect(f"/invoices/{invoice_id}", status_code=303)
            errors["reason"] = str(e)
    return await invoice_page(invoice_id, 422, {"reason": reason}, errors)


# --- documents --------------------------------------------------------------------------------

def _allowed_subject(kind: str, subject: str) -> bool:
    return document_store.KIND_SOURCES.get(kind) == subject.split(":")[0]


# A document is a printout of a page, so it is guarded like that page: whoever is refused the page
# is refused its PDF (a front desk member gets 403 on /close, so on the close report too).
DOCUMENT_PAGE_GUARDS = {
    "receipt": staff_required,       # /payments/{id}
    "receipt_80mm": staff_required,  # /payments/{id}
    "invoice": staff_required,       # /invoices/{id}
    "credit_note": staff_required,   # /invoices/{id} (a void) and /payments/{id} (a refund)
    "statement": staff_required,     # /members/{id}/statement
    "day_close": manager_required,   # /close
    "payer_statement": staff_required,  # /payers/{id}/statement
}


def document_page_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    # An unknown kind is left to the handler's 404; staff_required (listed first) has already run.
    guard = DOCUMENT_PAGE_GUARDS.get(connection.path_params.get("kind", ""))
    if guard is not None:
        guard(connection, handler)


@get("/documents/{kind:str}/{subject:str}/status", guards=[staff_required, document_page_guard])
async def document_status(kind: FromPath[str], subject: FromPath[str], label: FromQuery[str] = "Download") -> Template:
    """The self-polling link: asks the worker for the PDF, polls until it is stored."""
    if not _allowed_subject(kind, subject):
        raise NotFound("document")
    ready = await document_store.find(kind, subject)
    if not ready:
        await request_document(kind, subject)
    return Template("documents/_link.html", context={"doc": {"kind": kind, "subject": subject, "label": label, "ready": ready}})


@get("/documents/{kind:str}/{subject:str}", guards=[staff_required, document_page_guard])
async def document_download(kind: FromPath[str], subject: FromPath[str], download: FromQuery[bool] = False) -> Response:
    if not _allowed_subject(kind, subject):
        raise NotFound("document")
    found = await document_store.content(kind, subject)
    if not found:
        await request_document(kind, subject)
        return Response("Being prepared; try again in a moment.", status_code=404, media_type="text/plain")
    name, pdf = found
    disposition = "attachment" if download else "inline"
    return Response(pdf, media_type="application/pdf", headers={
        "content-disposition": f'{disposition}; filename="{name}"', "cache-control": "private, max-age=3600"})


@get("/members/{member_id:int}/statement", guards=[staff_required])
async def member_statement(member_id: FromPath[int], start: FromQuery[str] = "", end: FromQuery[str] = "") -> Template:
    member = await get_member(member_id)
    # A date that cannot be read is said so beside its field, not quietly replaced: the
    # statement below is then for the default period, and the page says which.
    errors = {name: "Use a date like 2026-11-30" for name, text in (("start", start), ("end", end))
              if text.strip() and parse_date(text) is None}
    end_date = parse_date(end) or today()
    start_date = parse_date(start) or date(end_date.year, 1, 1)
    if start_date > end_date:
        start_date, end_date = end_date, start_date
    subject = document_store.statement_subject(member_id, start_date, end_date)
    ready = await document_store.find("statement", subject)
    if not ready:
        await request_document("statement", subject)
    return Template("members/statement.html", context={
        "member": member, "start": start_date, "end": end_date, "errors": errors, "typed": {"start": start, "end": end},
        "doc": {"kind": "statement", "subject": subject, "label": "Statement PDF", "ready": ready},
    })


# --- the payments list -------------------------------------------------------------------------

@get("/payments", guards=[staff_required])
async def payment_list(request: Request) -> Template:
    filters = PaymentFilters.parse(request.query_params)
    page = await payment_page(filters)
    if is_htmx(request):
        # oob: the export link above the table follows the filters too (templates/payments/_export.html).
        return Template("payments/_table.html", context={"page": page, "f": filters, "oob": True})
    staff = await Staff.raw("SELECT s.id, u.username FROM staff s JOIN piccolo_user u ON u.id = s.user ORDER BY u.username")
    locations = await Location.select(Location.id, Location.name).order_by(Location.name)
    return Template("payments/index.html", context={
        "page": page, "f": filters, "staff": staff, "locations": locations, "statuses": STATUSES,
        "methods": [(m, METHOD_LABELS[m]) for m in METHODS]})


@get("/payments.csv", guards=[manager_required])
async def payment_export(request: Request) -> Stream:
    filters = PaymentFilters.parse(request.query_params)

    async def rows():
        async for record in stream_rows(filters):
            yield [record[c] for c in CSV_COLUMNS]

    return csv_stream("payments", CSV_COLUMNS, rows(), request.app.state.settings.tz, time_columns=CSV_TIME_COLUMNS)


routes = [record_payment, payment_detail, payment_slip, payment_refund, invoice_detail, invoice_void, document_status,
          document_download, member_statement, payment_list, payment_export]
