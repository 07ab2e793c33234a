"""The JSON API, v1 (/api/v1/...): thin handlers over the same domain functions as the pages.

Callers are other systems with an API key (`Authorization: Bearer ptf_live_...`, made by admins at
/settings/api-keys); cookies count for nothing here, so CSRF does not apply (portal/app.py). Each
handler's guard names the scope it needs; the guard also spends one of the key's requests from
its rate limit (portal/lib/ratelimit.py: shared by every process). Errors are
application/problem+json (RFC 9457), naming the field at fault. Lists are newest first with an
opaque `cursor` and a `limit`. Money is a decimal string with its currency.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from litestar import Request, Response, Router, get, patch, post
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter
from msgspec import Meta

from portal import audit
from portal.api import idempotency, keys
from portal.billing.invoices import void_invoice
from portal.billing.queries import invoice_lines_and_allocations, invoices_after
from portal.documents import store as document_store
from portal.documents.requests import request_document, request_receipts
from portal.gateways.http import GatewayError
from portal.lib import db, forms, ratelimit
from portal.lib.clock import today
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.forms import INT_MAX
from portal.lib.money import Money, MoneyParseError
from portal.members import checkin, enrol, members, memberships
from portal.payments import state
from portal.payments.cards.checkout import check_card_payment, new_tx_ref, start_card_checkout
from portal.payments.limits import NeedsConfirmation
from portal.payments.mpesa.stk import check_stk, request_stk_push, start_stk_push
from portal.payments.queries import PaymentFilters, payments_after
from portal.payments.refunds import refund_reason, start_refund
from portal.payments.service import (
    DESK_METHODS,
    desk_payment_problems,
    payment_history,
    record_desk_payment,
)
from portal.payments.state import KeyReused
from portal.reports import analytics, dues
from portal.settings import get_settings
from portal.web.cards import RETURN_PATH as CARD_RETURN_PATH
from tables.billing import Invoice, Payment, PaymentEvent
from tables.locations import Location
from tables.members import Member, Membership, Plan
from tables.statuses import IN_FLIGHT

PROBLEM = "application/problem+json"
DEFAULT_LIMIT, MAX_LIMIT = 25, 100


# --- errors: application/problem+json ----------------------------------------------------------

class ApiProblem(HTTPException):
    """An RFC 9457 problem: `errors` names the fields at fault ({"name", "reason"})."""

    def __init__(self, status: int, title: str, detail: str = "", errors: list[dict] | None = None,
                 headers: dict | None = None):
        super().__init__(status_code=status, detail=detail or title, headers=headers)
        self.title, self.errors = title, errors or []


def _problem(status: int, title: str, detail: str, errors: list | None = None, headers: dict | None = None) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return Response(content=json.dumps(body), status_code=status, media_type=PROBLEM, headers=headers)


TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          409: "Conflict", 422: "Unprocessable content", 429: "Too many requests", 503: "Service unavailable"}


@dataclass
class ProblemField:
    name: str
    reason: str


@dataclass
class Problem:
    """RFC 9457 problem details (application/problem+json)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemField] | None = None


def _problems(*codes: int) -> dict[int, ResponseSpec]:
    return {code: ResponseSpec(data_container=Problem, media_type=PROBLEM, description=TITLES[code], generate_examples=False)
            for code in codes}


# What each kind of operation may answer besides success (the OpenAPI document says so).
LIST_PROBLEMS = _problems(400, 401, 403, 422, 429)
ONE_PROBLEMS = _problems(400, 401, 403, 404, 429)
WRITE_PROBLEMS = _problems(400, 401, 403, 404, 422, 429)


def problem(status: int, detail: str) -> Response:
    return _problem(status, TITLES.get(status, "Error"), detail)



def _on_problem(request: Request, exc: ApiProblem) -> Response:
    return _problem(exc.status_code, exc.title, exc.detail, exc.errors, exc.headers)


# msgspec names a missing body field only in its message; Litestar's key is then the body ("data").
MISSING_FIELD = re.compile(r"missing required field `([A-Za-z_]+)`")


def _invalid_name(e: dict) -> str:
    missing = MISSING_FIELD.search(str(e.get("message", "")))
    return missing.group(1) if missing else e.get("key") or e.get("source") or "body"


def _on_validation(request: Request, exc: ValidationException) -> Response:
    # Litestar's own checks of parameters and bodies (a missing field, a word for a number).
    errors = [{"name": _invalid_name(e), "reason": e.get("message", "invalid")}
              for e in (exc.extra or []) if isinstance(e, dict)]
    detail = "; ".join(f"{e['name']}: {e['reason']}" for e in errors) or str(exc.detail)
    return _problem(400, "Bad request", detail, errors)


def _on_http(request: Request, exc: HTTPException) -> Response:
    if exc.status_code >= 500:
        raise exc
    return _problem(exc.status_code, TITLES.get(exc.status_code, "Error"), str(exc.detail), headers=exc.headers)


def _on_not_found(request: Request, exc: Exception) -> Response:
    return _problem(404, "Not found", f"There is no such {exc.args[0] if exc.args else 'thing'}.")


def _field_errors(errors: dict[str, str]) -> ApiProblem:
    return ApiProblem(422, "Unprocessable content", "; ".join(f"{k}: {v}" for k, v in errors.items()),
                      [{"name": k, "reason": v} for k, v in errors.items()])


# --- who is calling ----------------------------------------------------------------------------

def _bearer(connection: ASGIConnection) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def scope_required(scope: str):
    """A guard: a live API key with `scope` (or admin), within its rate limit."""
    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        challenge = {"WWW-Authenticate": 'Bearer realm="api"'}
        token = _bearer(connection)
        if not token:
            raise ApiProblem(401, "Unauthorized", "Send an API key: Authorization: Bearer <key>", headers=challenge)
        caller = await keys.caller_for(token)
        if caller is None:
            raise ApiProblem(401, "Unauthorized", "This API key is not valid (unknown or revoked)", headers=challenge)
        connection.scope["api_caller"] = caller  # the middleware's X-Query-Count is for callers too
        per_minute = get_settings().api_rate_per_minute
        next_at = await ratelimit.take(f"api:{caller.key_id}", per_minute, 60)
        if next_at is not None:
            raise ApiProblem(429, "Too many requests", f"This key may make {per_minute} requests a minute",
                             headers={"Retry-After": str(keys.retry_after_seconds(next_at))})
        if not caller.allows(scope):
            raise ApiProblem(403, "Forbidden", f"This API key does not have the {scope!r} scope")
        audit.api_key.set({"id": caller.key_id, "name": caller.name})

    guard.api_scope = scope  # type: ignore[attr-defined]  # tests/web/test_every_page_is_guarded.py
    return guard


def _caller(request: Request) -> keys.ApiCaller:
    return request.scope["api_caller"]  # type: ignore[typeddict-item]


# --- shapes ------------------------------------------------------------------------------------

@dataclass
class Amount:
    """Money: a decimal string (never a float) and its currency."""

    amount: str
    currency: str


def _amount(value: Decimal | None, currency: str) -> Amount:
    money = Money(value if value is not None else Decimal("0"), currency)
    return Amount(amount=str(money.amount), currency=money.currency)


@dataclass
class MemberOut:
    id: int
    member_number: str
    first_name: str
    last_name: str
    phone: str
    email: str | None
    status: str
    home_location: int | None
    message_channel: str
    reminder_opt_out: bool
    on_hold: bool | None = None
    language: str = "en"  # what the member reads messages, the pay page and receipts in: en or sw


@dataclass
class MemberList:
    items: list[MemberOut]
    next_cursor: str | None


@dataclass
class MemberIn:
    """A member as the member form takes it. Phone as typed in Kenya (0712 345 678 or 254712345678)."""

    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    email: str | None = None
    notes: str | None = None
    home_location: int | None = None
    message_channel: str | None = None
    reminder_opt_out: bool | None = None
    language: str | None = None  # en or sw


@dataclass
class NewMember:
    """A member to register: the member form's required fields are required here too (the form's
    own rules, such as a real Kenyan phone number, still answer 422 naming the field)."""

    first_name: str
    last_name: str
    phone: str
    email: str | None = None
    notes: str | None = None
    home_location: int | None = None
    message_channel: str | None = None
    reminder_opt_out: bool | None = None
    language: str | None = None  # en or sw


@dataclass
class PlanOut:
    id: int
    name: str
    price: Amount
    duration_months: int
    duration_days: int
    active: bool


@dataclass
class PaymentOut:
    id: int
    created_at: datetime
    completed_at: datetime | None
    method: str
    status: str
    amount: Amount
    refunded: Amount
    reference: str
    receipt_number: str | None
    member_id: int | None
    member_number: str | None
    member_name: str | None
    location: str | None


@dataclass
class PaymentList:
    items: list[PaymentOut]
    next_cursor: str | None


@dataclass
class PaymentEventOut:
    at: datetime
    kind: str
    old_status: str
    new_status: str
    reason: str


@dataclass
class PaymentDetail:
    payment: PaymentOut
    events: list[PaymentEventOut] = field(default_factory=list)


@dataclass
class DueOut:
    invoice_id: int
    invoice_number: str
    due_date: date
    total: Amount
    paid: Amount
    owed: Amount
    status: str
    urgency: str
    days_overdue: int
    member_id: int
    member_number: str
    member_name: str
    on_hold: bool
    payment_in_flight: bool


@dataclass
class DueList:
    items: list[DueOut]
    next_cursor: str | None


@dataclass
class RenewalOut:
    membership_id: int
    end_date: date
    days_left: int
    status: str
    plan_name: str
    price: Amount
    member_id: int
    member_number: str
    member_name: str
    renewal_invoice: str | None
    renewal_status: str | None
    renewed: bool


@dataclass
class RenewalList:
    items: list[RenewalOut]
    next_cursor: str | None


@dataclass
class AccessStatus:
    """For a door controller: may this member come in, and if not, why."""

    member_id: int
    member_number: str
    allowed: bool
    member_status: str
    membership_active: bool
    membership_ends: date | None
    on_hold: bool
    reason: str | None
    hold_invoice: str | None
    hold_days_overdue: int | None
    checkin_colour: str  # the check-in screen's answer (portal/members/checkin.py): green, amber or red
    checkin_reasons: list[str]  # its reasons, in plain words


# --- cursors -----------------------------------------------------------------------------------
# Opaque to callers: base64 of a small JSON object, {"before": id} for lists newest first by id,
# {"page": n} for the reports (ordered by date, then id, as on their pages).

def _encode(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str | None, name: str) -> int | None:
    if cursor is None or cursor == "":
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        number = value[name]
        if not isinstance(number, int) or isinstance(number, bool) or not 0 < number <= INT_MAX:
            raise ValueError
        return number
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ApiProblem(400, "Bad request", "cursor: not a cursor this list gave",
                         [{"name": "cursor", "reason": "not a cursor this list gave"}]) from None


Limit = Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description=f"Rows per page (1 to {MAX_LIMIT})")]
# No address may carry a NUL byte (the middleware refuses it with a 400 before any handler runs),
# so the document says so for every text parameter.
NO_NUL = {"pattern": r"^[^\x00]*$"}
Cursor = Annotated[str | None, Parameter(description="next_cursor of the previous page", max_length=200,
                                         schema_extra=NO_NUL)]
Query = Annotated[str, Parameter(description="Name, member number or phone, as on the members page", max_length=80,
                                 schema_extra=NO_NUL)]


def _next(rows: list, limit: int) -> tuple[list, str | None]:
    if len(rows) > limit:
        return rows[:limit], _encode({"before": rows[limit - 1]["id"]})
    return rows, None


# --- members -----------------------------------------------------------------------------------

def _member_out(r: dict, on_hold: bool | None = None) -> MemberOut:
    return MemberOut(id=r["id"], member_number=r["member_number"], first_name=r["first_name"], last_name=r["last_name"],
                     phone=r["phone"], email=r["email"], status=r["status"], home_location=r["home_location"],
                     message_channel=r["message_channel"], reminder_opt_out=r["reminder_opt_out"],
                     on_hold=r.get("hold", on_hold), language=r.get("language") or "en")


@get("/members", guards=[scope_required("read")], responses=LIST_PROBLEMS, summary="Members, newest first; search by name, number or phone")
async def list_members(q: Query = "", cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT) -> MemberList:
    rows, nxt = _next(await members.members_after(q.strip(), _decode(cursor, "before"), limit), limit)
    return MemberList(items=[_member_out(r) for r in rows], next_cursor=nxt)


@get("/members/{member_id:int}", guards=[scope_required("read")], responses=ONE_PROBLEMS, summary="One member")
async def member_detail(member_id: FromPath[int]) -> MemberOut:
    row = await members.member_with_hold(member_id)
    return _member_out(row, on_hold=row["hold_invoice"] is not None)


async def _location_ids() -> set[int]:
    return {r["id"] for r in await Location.select(Location.id).where(Location.active == True)}  # noqa: E712


def _as_form(data: MemberIn | NewMember, current: dict | None = None) -> dict[str, str]:
    """The member form's fields from JSON (missing fields keep the member's current values)."""
    current = current or {}
    form = {}
    for name in ("first_name", "last_name", "phone", "email", "notes", "message_channel", "language"):
        value = getattr(data, name)
        form[name] = value if value is not None else (current.get(name) or "")
    location = data.home_location if data.home_location is not None else current.get("home_location")
    form["home_location"] = str(location) if location is not None else ""
    opt_out = data.reminder_opt_out if data.reminder_opt_out is not None else current.get("reminder_opt_out", False)
    form["reminder_opt_out"] = "on" if opt_out else ""
    # No text column can hold a NUL byte (the pages' forms lose theirs in the middleware).
    if nul := {name: "Remove the NUL character" for name, value in form.items() if "\x00" in value}:
        raise _field_errors(nul)
    return form


def _body(data: MemberIn | NewMember) -> dict:
    return {k: v for k, v in data.__dict__.items() if v is not None}


async def _answer(request: Request, body, write) -> Response:
    key = request.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= idempotency.MAX_KEY_LENGTH and key.isprintable()):
        raise ApiProblem(400, "Bad request", "Idempotency-Key: 1 to 200 printable characters",
                         [{"name": "Idempotency-Key", "reason": "1 to 200 printable characters"}])
    try:
        status, response, replayed = await idempotency.once(_caller(request).key_id, key, body, write)
    except idempotency.KeyReused:
        raise ApiProblem(422, "Idempotency-Key reused", "This Idempotency-Key was sent before with a different body",
                         [{"name": "Idempotency-Key", "reason": "sent before with a different body"}]) from None
    return Response(response, status_code=status, headers={"Idempotent-Replayed": "true"} if replayed else None)


@post("/members", guards=[scope_required("members")], summary="Register a member", status_code=201,
      responses=WRITE_PROBLEMS)
async def create_member(request: Request, data: JSONBody[NewMember]) -> Response[MemberOut]:
    values, errors = forms.member_form(_as_form(data), await _location_ids())
    if errors:
        raise _field_errors(errors)

    async def write():
        member = await members.create_member(values["clean"], None)
        return 201, _member_out(await members.get_member(member.id), on_hold=False).__dict__

    return await _answer(request, _body(data), write)


@patch("/members/{member_id:int}", guards=[scope_required("members")], responses=WRITE_PROBLEMS, summary="Change a member (fields left out are kept)")
async def update_member(member_id: FromPath[int], data: JSONBody[MemberIn]) -> MemberOut:
    current = await members.get_member(member_id)
    form = _as_form(data, {**current, "phone": "0" + current["phone"][3:]})
    values, errors = forms.member_form(form, await _location_ids() | {current["home_location"]} - {None})
    if errors:
        raise _field_errors(errors)
    await members.update_member(member_id, values["clean"], None)
    row = await members.member_with_hold(member_id)
    return _member_out(row, on_hold=row["hold_invoice"] is not None)


@get("/members/{member_id:int}/access", guards=[scope_required("read")], responses=ONE_PROBLEMS,
     summary="May this member come in? (for a door controller)")
async def member_access(member_id: FromPath[int]) -> AccessStatus:
    row = await members.member_with_hold(member_id)
    current = await Membership.select(Membership.end_date).where(
        (Membership.member == member_id) & (Membership.status == "active")).order_by(Membership.end_date, ascending=False).first()
    on_hold = row["hold_invoice"] is not None
    # The door lets in whom the check-in desk lets in: one rule (portal/members/checkin.py).
    answer = await checkin.check(member_id)
    stops = [r.text for r in answer.reasons if r.colour == checkin.RED]
    reason = None if answer.allowed else " ".join(stops)
    return AccessStatus(member_id=row["id"], member_number=row["member_number"], allowed=answer.allowed,
                        member_status=row["status"], membership_active=current is not None,
                        membership_ends=current["end_date"] if current else None, on_hold=on_hold, reason=reason,
                        hold_invoice=row["hold_invoice"], hold_days_overdue=row["hold_days"],
                        checkin_colour=answer.colour, checkin_reasons=[r.text for r in answer.reasons])


# --- plans -------------------------------------------------------------------------------------

@get("/plans", guards=[scope_required("read")], responses=LIST_PROBLEMS, summary="Membership plans, active first")
async def list_plans() -> list[PlanOut]:
    plans = await Plan.select().order_by(Plan.active, ascending=False).order_by(Plan.price).order_by(Plan.id)
    return [PlanOut(id=p["id"], name=p["name"], price=_amount(p["price"], p["currency"]),
                    duration_months=p["duration_months"], duration_days=p["duration_days"], active=p["active"])
            for p in plans]


# --- payments ----------------------------------------------------------------------------------

def _payment_out(r: dict) -> PaymentOut:
    return PaymentOut(id=r["id"], created_at=r["created_at"], completed_at=r["completed_at"], method=r["method"],
                      status=r["status"], amount=_amount(r["amount"], r["currency"]),
                      refunded=_amount(r["refunded"], r["currency"]), reference=r["reference"],
                      receipt_number=r["receipt_number"], member_id=r["member_id"], member_number=r["member_number"],
                      member_name=r["member_name"], location=r["location_name"])


def _payment_filters(request: Request, member_id: int | None = None) -> PaymentFilters:
    f = PaymentFilters.parse(request.query_params)
    if f.errors:
        raise ApiProblem(400, "Bad request", "; ".join(f"{k}: {v}" for k, v in f.errors.items()),
                         [{"name": k, "reason": v} for k, v in f.errors.items()])
    if member_id is not None:
        f.member = member_id
    if (location := _caller(request).location_id) is not None:
        f.location = location  # a key made for one location sees that location's payments
    return f


Status = Annotated[str | None, Parameter(description="One of: " + ", ".join(s.value for s in Payment.Status),
                                         schema_extra=NO_NUL)]
Method = Annotated[str | None, Parameter(description="One of: " + ", ".join(m.value for m in Payment.Method),
                                         schema_extra=NO_NUL)]
# The years the pages' date fields accept (portal/lib/forms.py MIN_DATE, MAX_DATE), said in the document.
Day = Annotated[date | None, Parameter(description="A date, 2026-11-30 (years 1900 to 2999)",
                                       schema_extra={"pattern": r"^(19|2[0-9])[0-9]{2}-"})]
Id = Annotated[int | None, Parameter(ge=1, le=INT_MAX)]
# In a JSON body Litestar's Parameter only describes (the OpenAPI document); msgspec's Meta is
# what refuses a value out of range (as 400, naming the field) before any query can overflow.
BodyId = Annotated[int, Parameter(ge=1, le=INT_MAX), Meta(ge=1, le=INT_MAX)]
OptionalBodyId = Annotated[Annotated[int, Meta(ge=1, le=INT_MAX)] | None, Parameter(ge=1, le=INT_MAX)]


@get("/payments", guards=[scope_required("read")], responses=LIST_PROBLEMS, summary="Payments, newest first, with the payments page's filters")
async def list_payments(request: Request, q: Query = "", status: Status = None, method: Method = None,
                        date_from: Day = None, date_to: Day = None, staff: Id = None, location: Id = None,
                        member: Id = None, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT) -> PaymentList:
    rows, nxt = _next(await payments_after(_payment_filters(request), _decode(cursor, "before"), limit), limit)
    return PaymentList(items=[_payment_out(r) for r in rows], next_cursor=nxt)


@get("/members/{member_id:int}/payments", guards=[scope_required("read")], responses=ONE_PROBLEMS, summary="A member's payment history")
async def member_payments(request: Request, member_id: FromPath[int], cursor: Cursor = None,
                          limit: Limit = DEFAULT_LIMIT) -> PaymentList:
    await members.get_member(member_id)  # 404 for no such member, not an empty list
    f = _payment_filters(request, member_id)
    rows, nxt = _next(await payments_after(f, _decode(cursor, "before"), limit), limit)
    return PaymentList(items=[_payment_out(r) for r in rows], next_cursor=nxt)


@get("/payments/{payment_id:int}", guards=[scope_required("read")], responses=ONE_PROBLEMS, summary="One payment and its events")
async def payment_detail(request: Request, payment_id: FromPath[int]) -> PaymentDetail:
    f = PaymentFilters()
    f.location = _caller(request).location_id
    rows = await payments_after(f, payment_id + 1 if payment_id < INT_MAX else None, 1)
    if not rows or rows[0]["id"] != payment_id:
        raise NotFound("payment")
    events = [PaymentEventOut(at=e["at"], kind=e["kind"], old_status=e["old_status"], new_status=e["new_status"],
                              reason=e["reason"]) for e in await payment_history(payment_id)]
    return PaymentDetail(payment=_payment_out(rows[0]), events=events)


# --- reports -----------------------------------------------------------------------------------

# The document lists the choices (so a caller, or Schemathesis, knows them; an empty urgency is
# "any", as on the dues page); the handler still answers another value with a 422 naming the field.
Urgency = Annotated[str | None, Parameter(description="One of: " + ", ".join(k for k, _ in dues.URGENCIES),
                                          schema_extra={"enum": ["", *(k for k, _ in dues.URGENCIES)]})]
Window = Annotated[str, Parameter(description="One of: " + ", ".join(k for k, _ in dues.WINDOWS),
                                  schema_extra={"enum": [k for k, _ in dues.WINDOWS]})]


@get("/dues", guards=[scope_required("read")], responses=LIST_PROBLEMS, summary="Open invoices, most urgent first (the dues page)")
async def list_dues(request: Request, q: Query = "", urgency: Urgency = None, cursor: Cursor = None,
                    limit: Limit = DEFAULT_LIMIT) -> DueList:
    if urgency and urgency not in dict(dues.URGENCIES):
        raise _field_errors({"urgency": "One of: " + ", ".join(k for k, _ in dues.URGENCIES)})
    page = _decode(cursor, "page") or 1
    f = dues.DueFilters(q=q.strip(), urgency=urgency or "", page=page)
    result = await dues.payments_due(f, size=limit)
    items = [DueOut(invoice_id=r["id"], invoice_number=r["number"], due_date=r["due_date"],
                    total=_amount(r["total"], r["currency"]), paid=_amount(r["paid"], r["currency"]),
                    owed=_amount(r["owed"], r["currency"]), status=r["status"], urgency=r["urgency"],
                    days_overdue=r["days_overdue"], member_id=r["member_id"], member_number=r["member_number"],
                    member_name=f"{r['first_name']} {r['last_name']}", on_hold=r["hold"],
                    payment_in_flight=r["in_flight"]) for r in result.rows]
    return DueList(items=items, next_cursor=_encode({"page": page + 1}) if page < result.pages else None)


@get("/renewals", guards=[scope_required("read")], responses=LIST_PROBLEMS, summary="Memberships ending soon (the renewals page)")
async def list_renewals(window: Window = "7", cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT) -> RenewalList:
    if window not in dict(dues.WINDOWS):
        raise _field_errors({"window": "One of: " + ", ".join(k for k, _ in dues.WINDOWS)})
    page = _decode(cursor, "page") or 1
    result = await dues.renewals_due(window, page, size=limit, summary=False)
    currency = get_settings().currency
    items = [RenewalOut(membership_id=r["membership_id"], end_date=r["end_date"], days_left=r["days_left"],
                        status=r["status"], plan_name=r["plan_name"],
                        price=_amount(r["price"] if r["price"] is not None else r["plan_price"], r["currency"] or currency),
                        member_id=r["member_id"], member_number=r["member_number"],
                        member_name=f"{r['first_name']} {r['last_name']}", renewal_invoice=r["renewal_number"],
                        renewal_status=r["renewal_status"], renewed=r["renewed"]) for r in result.rows]
    return RenewalList(items=items, next_cursor=_encode({"page": page + 1}) if page < result.pages else None)


# --- writes that move money: shared plumbing ---------------------------------------------------

# What the domain's RuleBroken.field calls an input, as this API's bodies call it.
API_FIELD = {"invoice": "invoice_id", "location": "location_id", "member": "member_id", "plan": "plan_id"}


def _rule_problem(e: RuleBroken, default: str) -> ApiProblem:
    name = API_FIELD.get(e.field or "", e.field or default)
    return _field_errors({name: str(e)})


async def _answer_after_commit(request: Request, body, write) -> Response:
    """`_answer` in one transaction, with or without an Idempotency-Key (a write that fails part
    way leaves nothing behind), and the jobs the domain functions ask for sent once it has
    committed (a worker then always finds the payment, refund or document it is asked about)."""
    async with db.transaction():
        return await _answer(request, body, write)


def _located(request: Request, location_id: int | None) -> int | None:
    """A key made for one location acts for that location; other keys may name one."""
    own = _caller(request).location_id
    return own if own is not None else location_id


async def _payment_row(request: Request, payment_id: int) -> dict:
    """The payment, or 404: also for a payment at another location than the key's own."""
    row = await Payment.select().where(Payment.id == payment_id).first()
    own = _caller(request).location_id
    if row is None or (own is not None and row["location"] != own):
        raise NotFound("payment")
    return row


# --- payments: start, status, verify, refund, receipt ------------------------------------------

@dataclass
class PaymentIn:
    """A payment to start. cash, bank, cheque: recorded now (bank and cheque need `reference`);
    mpesa: a prompt sent to `phone`; card: a Flutterwave checkout link to open."""

    member_id: BodyId
    method: Annotated[str, Parameter(description="One of: cash, bank, cheque, mpesa, card", max_length=10), Meta(max_length=10)]
    amount: Annotated[str, Parameter(description="A decimal string, 3000.00", max_length=30), Meta(max_length=30)]
    reference: Annotated[Annotated[str, Meta(max_length=60)] | None, Parameter(max_length=60, description="Bank reference or cheque number")] = None
    phone: Annotated[Annotated[str, Meta(max_length=30)] | None, Parameter(max_length=30)] = None
    invoice_id: OptionalBodyId = None
    location_id: Annotated[Annotated[int, Meta(ge=1, le=INT_MAX)] | None, Parameter(ge=1, le=INT_MAX, description="The desk (ignored for a key made for one location)")] = None
    note: Annotated[Annotated[str, Meta(max_length=500)] | None, Parameter(max_length=500)] = None
    confirmed: bool = False


@dataclass
class PaymentStatusOut:
    """A payment's state, small enough to poll."""

    id: int
    method: str
    status: str
    in_flight: bool
    amount: Amount
    refunded: Amount
    reason: str
    reference: str
    receipt_number: str | None
    completed_at: datetime | None


@dataclass
class PaymentStarted:
    payment: PaymentStatusOut
    checkout_url: str | None = None


def _status_out(p: dict, reason: str) -> PaymentStatusOut:
    return PaymentStatusOut(id=p["id"], method=p["method"], status=p["status"], in_flight=p["status"] in IN_FLIGHT,
                            amount=_amount(p["amount"], p["currency"]), refunded=_amount(p["refunded"], p["currency"]),
                            reason=reason, reference=p["reference"], receipt_number=p["receipt_number"],
                            completed_at=p["completed_at"])


async def _status_now(payment_id: int, payment: dict | None = None) -> PaymentStatusOut:
    payment = payment or await Payment.select().where(Payment.id == payment_id).first()
    last = await PaymentEvent.select(PaymentEvent.reason).where(
        (PaymentEvent.payment == payment_id) & (PaymentEvent.kind == state.STATUS)).order_by(
        PaymentEvent.id, ascending=False).first()
    return _status_out(payment, last["reason"] if last else "")


def _payment_key(request: Request) -> str:
    """The payment's own idempotency key: one per API key and Idempotency-Key (the domain then
    refuses the same key for a different payment too), or a new one for a POST without it."""
    sent = request.headers.get("idempotency-key")
    if sent is None:
        return "api-" + new_tx_ref()
    return "api-" + hashlib.sha256(f"{_caller(request).key_id}:{sent}".encode()).hexdigest()[:40]


PAYMENT_METHODS = ("cash", "bank", "cheque", "mpesa", "card")


@post("/payments", guards=[scope_required("payments")], status_code=201, responses=_problems(400, 401, 403, 404, 409, 422, 429, 503),
      summary="Start a payment: cash/bank/cheque recorded now, an M-Pesa prompt, or a card checkout link")
async def start_payment(request: Request, data: JSONBody[PaymentIn]) -> Response[PaymentStarted]:
    settings = get_settings()
    if data.method not in PAYMENT_METHODS:
        raise _field_errors({"method": "One of: " + ", ".join(PAYMENT_METHODS)})
    try:
        amount = Money.parse(data.amount, settings.currency)
    except MoneyParseError as e:
        raise _field_errors({"amount": str(e)[:1].upper() + str(e)[1:]}) from None
    texts = {"reference": data.reference or "", "phone": data.phone or "", "note": data.note or ""}
    if nul := {name: "Remove the NUL character" for name, value in texts.items() if "\x00" in value}:
        raise _field_errors(nul)
    if data.method in DESK_METHODS and (problems := desk_payment_problems(
            method=data.method, amount=amount, reference=texts["reference"])):
        raise _field_errors({API_FIELD.get(p.field or "", p.field or "amount"): str(p) for p in problems})
    location = _located(request, data.location_id)
    if location is not None and location == data.location_id and location not in await _location_ids():
        raise _field_errors({"location_id": "There is no such desk (an active location)"})
    key = _payment_key(request)
    if not await Member.exists().where(Member.id == data.member_id):
        raise _field_errors({"member_id": "There is no such member"})

    async def write():
        link = None
        try:
            if data.method in DESK_METHODS:
                recorded = await record_desk_payment(
                    member_id=data.member_id, method=data.method, amount=amount, reference=texts["reference"],
                    invoice_id=data.invoice_id, idempotency_key=key, staff_id=None, location_id=location,
                    note=texts["note"], confirmed=data.confirmed)
                if recorded.created:
                    await request_receipts(recorded.payment["id"])
            elif data.method == "mpesa":
                recorded = await start_stk_push(
                    member_id=data.member_id, phone=texts["phone"], amount=amount, idempotency_key=key,
                    invoice_id=data.invoice_id, staff_id=None, location_id=location, confirmed=data.confirmed)
                if recorded.created:
                    await request_stk_push(recorded.payment["id"])
            else:
                recorded, link = await start_card_checkout(
                    member_id=data.member_id, amount=amount, idempotency_key=key, invoice_id=data.invoice_id,
                    redirect_url=settings.public_base_url + CARD_RETURN_PATH, staff_id=None, location_id=location)
        except NeedsConfirmation as e:
            raise _field_errors({"confirmed": f"{e}: send confirmed: true"}) from None
        except KeyReused as e:
            raise ApiProblem(409, "Conflict", str(e)) from None
        except NotFound:  # the invoice is not this member's (the member was found above)
            raise _field_errors({"invoice_id": "There is no such invoice for this member"}) from None
        except RuleBroken as e:
            if e.field is None and isinstance(e.__cause__, Exception):
                # Flutterwave did not give a checkout link: nothing is recorded, try again later.
                raise ApiProblem(503, "Service unavailable", str(e), headers={"Retry-After": "30"}) from None
            raise _rule_problem(e, "amount") from None
        return 201, asdict(PaymentStarted(payment=await _status_now(recorded.payment["id"]), checkout_url=link))

    return await _answer_after_commit(request, asdict(data), write)


@get("/payments/{payment_id:int}/status", guards=[scope_required("read")], responses=ONE_PROBLEMS,
     summary="A payment's status, small enough to poll while a prompt or checkout is in flight")
async def payment_status(request: Request, payment_id: FromPath[int]) -> PaymentStatusOut:
    return await _status_now(payment_id, await _payment_row(request, payment_id))


@post("/payments/{payment_id:int}/verify", guards=[scope_required("payments")], status_code=200,
      responses=_problems(400, 401, 403, 404, 422, 429, 503), summary="Ask the gateway now (M-Pesa STK query, Flutterwave verify) how a payment in flight went")
async def verify_payment(request: Request, payment_id: FromPath[int]) -> Response[PaymentStatusOut]:
    payment = await _payment_row(request, payment_id)

    async def write():
        if payment["status"] in IN_FLIGHT:
            if payment["method"] == "mpesa":
                await check_stk(payment_id)
            elif payment["method"] == "card":
                try:
                    await check_card_payment(payment_id)
                except GatewayError as e:  # no answer is no news: the status stays as it was
                    raise ApiProblem(503, "Service unavailable", f"Flutterwave did not answer: {e}"[:300],
                                     headers={"Retry-After": "30"}) from None
        # Desk payments are final when recorded, and a final payment has nothing left to ask.
        return 200, asdict(await _status_now(payment_id))

    return await _answer_after_commit(request, {"payment": payment_id}, write)


@dataclass
class RefundIn:
    reason: Annotated[str, Parameter(max_length=500), Meta(max_length=500)]
    amount: Annotated[Annotated[str, Meta(max_length=30)] | None, Parameter(description="A decimal string; left out: all that is left (M-Pesa reverses whole payments only)", max_length=30)] = None
    confirmed: bool = False


@dataclass
class RefundOut:
    """A desk refund is done at once (with its credit note); a gateway's is asked for and the
    payment's status moves when the gateway confirms it."""

    rail: str
    done: bool
    credit_note: str | None
    payment: PaymentStatusOut


@post("/payments/{payment_id:int}/refund", guards=[scope_required("payments")], status_code=200,
      responses=_problems(400, 401, 403, 404, 409, 422, 429), summary="Refund all or part of a payment, with a reason")
async def refund(request: Request, payment_id: FromPath[int], data: JSONBody[RefundIn]) -> Response[RefundOut]:
    payment = await _payment_row(request, payment_id)
    errors = {}
    amount = None
    if data.amount is not None:
        try:
            amount = Money.parse(data.amount, payment["currency"])
        except MoneyParseError as e:
            errors["amount"] = str(e)[:1].upper() + str(e)[1:]
    if "\x00" in data.reason:
        errors["reason"] = "Remove the NUL character"
    else:
        try:
            refund_reason(data.reason)
        except RuleBroken as e:
            errors["reason"] = str(e)
    if errors:
        raise _field_errors(errors)

    async def write():
        try:
            started = await start_refund(payment_id, amount, data.reason, None, confirmed=data.confirmed)
        except NeedsConfirmation as e:
            raise _field_errors({"confirmed": f"{e}: send confirmed: true"}) from None
        except RuleBroken as e:
            if e.field is None:  # about the payment (not completed, nothing to reverse), not the input
                raise ApiProblem(409, "Conflict", str(e)) from None
            raise _rule_problem(e, "amount") from None
        note = started.credit_note
        return 200, asdict(RefundOut(rail=started.rail, done=note is not None,
                                     credit_note=note["number"] if note else None,
                                     payment=await _status_now(payment_id)))

    return await _answer_after_commit(request, {"payment": payment_id, **asdict(data)}, write)


@dataclass
class DocumentPending:
    """The PDF is being made: ask again after Retry-After seconds."""

    status: str
    retry_after: int


@get("/payments/{payment_id:int}/receipt", guards=[scope_required("read")], media_type="application/pdf",
     responses={**_problems(401, 403, 404, 409, 429),
                202: ResponseSpec(data_container=DocumentPending, description="Being prepared", generate_examples=False)},
     summary="A completed payment's receipt (PDF), as the payment page serves it")
async def payment_receipt(request: Request, payment_id: FromPath[int]) -> Response[bytes]:
    payment = await _payment_row(request, payment_id)
    if not payment["receipt_number"]:
        raise ApiProblem(409, "Conflict", f"This payment is {payment['status']}: it has no receipt")
    subject = f"payment:{payment_id}"
    found = await document_store.content("receipt", subject)
    if not found:
        await request_document("receipt", subject)
        return Response(asdict(DocumentPending("being prepared", 2)), status_code=202, media_type="application/json",
                        headers={"Retry-After": "2"})
    name, pdf = found
    return Response(pdf, media_type="application/pdf",
                    headers={"content-disposition": f'inline; filename="{name}"', "cache-control": "private, max-age=3600"})


# --- memberships -------------------------------------------------------------------------------

@dataclass
class MembershipOut:
    id: int
    member_id: int
    plan_id: int
    plan_name: str
    start_date: date
    end_date: date
    status: str
    price: Amount


def _membership_out(r: dict) -> MembershipOut:
    return MembershipOut(id=r["id"], member_id=r["member"], plan_id=r["plan"], plan_name=r["plan_name"],
                         start_date=r["start_date"], end_date=r["end_date"], status=r["status"],
                         price=_amount(r["price"], r["currency"]))


@get("/members/{member_id:int}/memberships", guards=[scope_required("read")], responses=ONE_PROBLEMS,
     summary="A member's memberships, latest start first")
async def member_memberships(member_id: FromPath[int]) -> list[MembershipOut]:
    await members.get_member(member_id)  # 404 for no such member, not an empty list
    return [_membership_out(r) for r in await memberships.member_memberships(member_id)]


@dataclass
class EnrolIn:
    """Put a member on a plan: the membership waits, unpaid, for the invoice raised with it."""

    plan_id: BodyId
    start_date: Annotated[date | None, Parameter(description="The first day; left out: today")] = None


@dataclass
class Enrolled:
    membership: MembershipOut
    invoice: "InvoiceOut"


async def _enrol(member_id: int, data: EnrolIn) -> Enrolled:
    """The member page's "put on a plan" (portal.members.enrol), with its refusals named."""
    try:
        membership = await enrol.put_on_plan(member_id, data.plan_id, data.start_date or today(), None)
    except RuleBroken as e:
        raise _field_errors({"plan_id" if "plan" in str(e).lower() else "start_date": str(e)}) from None
    row = next(r for r in await memberships.member_memberships(member_id) if r["id"] == membership.id)
    invoice = await Invoice.select().where((Invoice.membership == membership.id) & (Invoice.kind == "new")).first()
    return Enrolled(membership=_membership_out(row), invoice=_invoice_out(invoice))


@post("/members/{member_id:int}/memberships", guards=[scope_required("members")], status_code=201,
      responses=WRITE_PROBLEMS, summary="Put a member on a plan (the membership waits for its invoice, raised with it)")
async def put_on_plan(request: Request, member_id: FromPath[int], data: JSONBody[EnrolIn]) -> Response[Enrolled]:
    await members.get_member(member_id)

    async def write():
        return 201, asdict(await _enrol(member_id, data))

    return await _answer_after_commit(request, {"member": member_id, **asdict(data)}, write)


# --- invoices ----------------------------------------------------------------------------------

@dataclass
class InvoiceOut:
    id: int
    number: str
    member_id: int
    kind: str
    status: str
    issue_date: date
    due_date: date
    total: Amount
    paid: Amount
    balance: Amount
    plan_id: int | None
    membership_id: int | None
    void_reason: str


@dataclass
class InvoiceList:
    items: list[InvoiceOut]
    next_cursor: str | None


@dataclass
class InvoiceLineOut:
    description: str
    quantity: int
    unit_price: Amount
    vat_rate: str
    net: Amount
    vat: Amount
    total: Amount


@dataclass
class AllocationOut:
    """Money put on (or, negative, taken off) the invoice: by a payment, or by credit or a void."""

    amount: Amount
    at: datetime
    payment_id: int | None
    receipt_number: str | None
    method: str | None


@dataclass
class InvoiceDetail:
    invoice: InvoiceOut
    lines: list[InvoiceLineOut]
    allocations: list[AllocationOut]


def _invoice_out(r: dict) -> InvoiceOut:
    cur = r["currency"]
    balance = r["total"] - r["paid"] if r["status"] != "void" else Decimal("0")
    return InvoiceOut(id=r["id"], number=r["number"], member_id=r["member"], kind=r["kind"], status=r["status"],
                      issue_date=r["issue_date"], due_date=r["due_date"], total=_amount(r["total"], cur),
                      paid=_amount(r["paid"], cur), balance=_amount(balance, cur), plan_id=r["plan"],
                      membership_id=r["membership"], void_reason=r["void_reason"])


InvoiceStatus = Annotated[str | None, Parameter(description="One of: " + ", ".join(s.value for s in Invoice.Status),
                                                schema_extra={"enum": ["", *(s.value for s in Invoice.Status)]})]


@get("/invoices", guards=[scope_required("read")], responses=LIST_PROBLEMS, summary="Invoices, newest first")
async def list_invoices(member: Id = None, status: InvoiceStatus = None, cursor: Cursor = None,
                        limit: Limit = DEFAULT_LIMIT) -> InvoiceList:
    if status and status not in {s.value for s in Invoice.Status}:
        raise ApiProblem(400, "Bad request", "status: one of " + ", ".join(s.value for s in Invoice.Status),
                         [{"name": "status", "reason": "One of: " + ", ".join(s.value for s in Invoice.Status)}])
    rows, nxt = _next(await invoices_after(member, status or None, _decode(cursor, "before"), limit), limit)
    return InvoiceList(items=[_invoice_out(r) for r in rows], next_cursor=nxt)


@get("/invoices/{invoice_id:int}", guards=[scope_required("read")], responses=ONE_PROBLEMS,
     summary="One invoice: its lines and the money allocated to it")
async def invoice_detail(invoice_id: FromPath[int]) -> InvoiceDetail:
    invoice = await Invoice.select().where(Invoice.id == invoice_id).first()
    if invoice is None:
        raise NotFound("invoice")
    lines, allocations = await invoice_lines_and_allocations(invoice_id)
    cur = invoice["currency"]
    return InvoiceDetail(
        invoice=_invoice_out(invoice),
        lines=[InvoiceLineOut(description=r["description"], quantity=r["quantity"],
                              unit_price=_amount(r["unit_price"], cur), vat_rate=str(r["vat_rate"]),
                              net=_amount(r["net"], cur), vat=_amount(r["vat"], cur), total=_amount(r["total"], cur))
               for r in lines],
        allocations=[AllocationOut(amount=_amount(r["amount"], cur), at=r["at"], payment_id=r["payment_id"],
                                   receipt_number=r["receipt_number"], method=r["method"]) for r in allocations])


@dataclass
class InvoiceIn:
    """An invoice for a plan: the member is put on it (as on the member page), and the invoice
    raised with that membership is the answer; paying it in full activates the membership."""

    member_id: BodyId
    plan_id: BodyId
    start_date: Annotated[date | None, Parameter(description="The first day; left out: today")] = None


@post("/invoices", guards=[scope_required("members")], status_code=201, responses=WRITE_PROBLEMS,
      summary="Invoice a member for a plan (puts them on it, as the member page does)")
async def create_invoice(request: Request, data: JSONBody[InvoiceIn]) -> Response[Enrolled]:
    if not await Member.exists().where(Member.id == data.member_id):
        raise _field_errors({"member_id": "There is no such member"})

    async def write():
        return 201, asdict(await _enrol(data.member_id, EnrolIn(plan_id=data.plan_id, start_date=data.start_date)))

    return await _answer_after_commit(request, asdict(data), write)


@dataclass
class VoidIn:
    reason: Annotated[str, Parameter(max_length=500), Meta(max_length=500)]


@dataclass
class Voided:
    invoice: InvoiceOut
    credit_note: str


@post("/invoices/{invoice_id:int}/void", guards=[scope_required("payments")], status_code=200,
      responses=_problems(400, 401, 403, 404, 409, 422, 429), summary="Void an invoice, with a reason (a manager's action)")
async def void(request: Request, invoice_id: FromPath[int], data: JSONBody[VoidIn]) -> Response[Voided]:
    reason = data.reason.strip()
    if not reason or "\x00" in reason:
        raise _field_errors({"reason": "Give a reason for voiding" if not reason else "Remove the NUL character"})
    if not await Invoice.exists().where(Invoice.id == invoice_id):
        raise NotFound("invoice")

    async def write():
        try:
            note = await void_invoice(invoice_id, reason, None)
        except RuleBroken as e:  # already void
            raise ApiProblem(409, "Conflict", str(e)) from None
        await request_document("credit_note", f"credit_note:{note['id']}")
        invoice = await Invoice.select().where(Invoice.id == invoice_id).first()
        return 200, asdict(Voided(invoice=_invoice_out(invoice), credit_note=note["number"]))

    return await _answer_after_commit(request, {"invoice": invoice_id, "reason": reason}, write)


# --- analytics ---------------------------------------------------------------------------------

@dataclass
class SeriesPoint:
    bucket: date
    received: Amount
    refunds: Amount
    net: Amount
    by_method: dict[str, Amount]


@dataclass
class MethodFigures:
    method: str
    started: int
    completed: int
    failed: int
    pending: int
    success_rate_percent: str | None
    received: Amount


@dataclass
class StatusFigures:
    status: str
    payments: int
    amount: Amount


@dataclass
class Collected:
    name: str
    collected: Amount
    rate_percent: str | None


@dataclass
class Collection:
    due: Amount
    collected: Amount
    rate_percent: str | None
    channels: list[Collected]
    staff: list[Collected]


@dataclass
class DaysToPay:
    invoices: int
    median: str | None
    mean: str | None


@dataclass
class AgingBucket:
    bucket: str
    label: str
    invoices: int
    owed: Amount


@dataclass
class MemberFigures:
    active_start: int
    active_end: int
    mrr: Amount
    churned: int
    churn_rate_percent: str | None


@dataclass
class TopPayer:
    member_id: int
    member_number: str
    name: str
    payments: int
    paid: Amount


@dataclass
class Totals:
    received: Amount
    refunds: Amount
    net: Amount


@dataclass
class AnalyticsOut:
    """The analytics page's figures for a period (definitions: portal/reports/analytics.py)."""

    start: date
    end: date
    grain: str
    totals: Totals
    series: list[SeriesPoint]
    by_method: list[MethodFigures]
    by_status: list[StatusFigures]
    collection: Collection
    days_to_pay: DaysToPay
    aging: list[AgingBucket]
    members: MemberFigures
    top: list[TopPayer]


def _text(value) -> str | None:
    return None if value is None else str(value)


def PeriodDay(name: str, description: str):  # noqa: N802  (a type, as the other parameter types here)
    return Annotated[str | None, QueryParameter(name=name, description=description, max_length=10,
                                                schema_extra={"format": "date", "pattern": r"^(19|2[0-9])[0-9]{2}-"})]


Grain = Annotated[str | None, Parameter(description="day, week or month (left out: chosen from the period's length)",
                                        schema_extra={"enum": list(analytics.GRAINS)})]


@get("/analytics", guards=[scope_required("read")], responses=LIST_PROBLEMS,
     summary="The analytics figures for a period (from and to inclusive; left out: the last 30 days)")
async def analytics_figures(date_from: PeriodDay("from", "The first day, 2026-11-01") = None,
                            date_to: PeriodDay("to", "The last day, 2026-11-30") = None,
                            grain: Grain = None) -> AnalyticsOut:
    # Read here, not by Litestar, whose errors would name these by their Python names.
    unread = {name: "Use a date like 2026-11-30" for name, text in (("from", date_from), ("to", date_to))
              if text is not None and forms.parse_date(text) is None}
    if unread:
        raise ApiProblem(400, "Bad request", "; ".join(f"{k}: {v}" for k, v in unread.items()),
                         [{"name": k, "reason": v} for k, v in unread.items()])
    date_from, date_to = forms.parse_date(date_from or ""), forms.parse_date(date_to or "")
    if grain is not None and grain not in analytics.GRAINS:
        raise _field_errors({"grain": "One of: " + ", ".join(analytics.GRAINS)})
    params = {"grain": grain or ""}
    if date_from is not None or date_to is not None:
        params.update(start=date_from.isoformat() if date_from else "", end=date_to.isoformat() if date_to else "")
    period = analytics.Period.parse(params)
    if period.errors:
        named = {{"start": "from", "end": "to"}[k]: v for k, v in period.errors.items()}
        if date_from is None or date_to is None:
            named = {k: "Give both from and to (or neither, for the last 30 days)" for k in named}
        raise _field_errors(named)
    data = await analytics.report(period)
    cur = get_settings().currency

    def money(value) -> Amount:
        return _amount(value, cur)

    c = data["collection"]
    return AnalyticsOut(
        start=period.start, end=period.end, grain=period.grain,
        totals=Totals(**{k: money(v) for k, v in data["totals"].items()}),
        series=[SeriesPoint(bucket=s["bucket"], received=money(s["received"]), refunds=money(s["refunds"]),
                            net=money(s["net"]), by_method={m: money(s[m]) for m in data["methods"]})
                for s in data["series"]],
        by_method=[MethodFigures(method=m["method"], started=m["started"], completed=m["done"], failed=m["bad"],
                                 pending=m["pending"], success_rate_percent=_text(m["success_rate"]),
                                 received=money(m["amount_done"])) for m in data["by_method"]],
        by_status=[StatusFigures(status=s["status"], payments=s["n"], amount=money(s["amount"])) for s in data["by_status"]],
        collection=Collection(due=money(c["due"]), collected=money(c["collected"]), rate_percent=_text(c["rate"]),
                              channels=[Collected(x["name"], money(x["collected"]), _text(x["rate"])) for x in c["channels"]],
                              staff=[Collected(x["name"], money(x["collected"]), _text(x["rate"])) for x in c["staff"]]),
        days_to_pay=DaysToPay(invoices=data["days_to_pay"]["n"], median=_text(data["days_to_pay"]["median"]),
                              mean=_text(data["days_to_pay"]["mean"])),
        aging=[AgingBucket(bucket=a["key"], label=a["label"], invoices=a["n"], owed=money(a["owed"])) for a in data["aging"]],
        members=MemberFigures(active_start=data["members"]["active_start"], active_end=data["members"]["active_end"],
                              mrr=money(data["members"]["mrr"]), churned=data["members"]["churned"],
                              churn_rate_percent=_text(data["members"]["churn_rate"])),
        top=[TopPayer(member_id=t["id"], member_number=t["member_number"], name=t["name"], payments=t["n"],
                      paid=money(t["amount"])) for t in data["top"]],
    )


router = Router(
    path="/api/v1",
    route_handlers=[list_members, member_detail, create_member, update_member, member_access, list_plans,
                    list_payments, member_payments, payment_detail, list_dues, list_renewals,
                    start_payment, payment_status, verify_payment, refund, payment_receipt,
                    member_memberships, put_on_plan, list_invoices, invoice_detail, create_invoice, void,
                    analytics_figures],
    exception_handlers={
        ApiProblem: _on_problem,
        ValidationException: _on_validation,
        NotFound: _on_not_found,
        NotFoundException: _on_not_found,
        HTTPException: _on_http,
    },
    tags=["v1"],
)

