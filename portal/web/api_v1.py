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
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from litestar import Request, Response, Router, get, patch, post
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter

from portal import audit
from portal.api import idempotency, keys
from portal.lib import forms, ratelimit
from portal.lib.errors import NotFound
from portal.lib.forms import INT_MAX
from portal.lib.money import Money
from portal.members import members
from portal.payments.queries import PaymentFilters, payments_after
from portal.payments.service import payment_history
from portal.reports import dues
from portal.settings import get_settings
from tables.billing import Payment
from tables.locations import Location
from tables.members import Membership, Plan

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
          409: "Conflict", 422: "Unprocessable content", 429: "Too many requests"}


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


def _on_validation(request: Request, exc: ValidationException) -> Response:
    # Litestar's own checks of parameters and bodies (a missing field, a word for a number).
    errors = [{"name": e.get("key") or e.get("source") or "body", "reason": e.get("message", "invalid")}
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
                     on_hold=r.get("hold", on_hold))


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
    for name in ("first_name", "last_name", "phone", "email", "notes", "message_channel"):
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
    reason = None
    if row["status"] != "active":
        reason = f"The member's account is {row['status']}"
    elif current is None:
        reason = "No active membership"
    elif on_hold:
        reason = (f"On hold: invoice {row['hold_invoice']} is {row['hold_days']} days overdue"
                  + (f" ({row['hold_invoices']} invoices past the grace period)" if row["hold_invoices"] > 1 else ""))
    return AccessStatus(member_id=row["id"], member_number=row["member_number"], allowed=reason is None,
                        member_status=row["status"], membership_active=current is not None,
                        membership_ends=current["end_date"] if current else None, on_hold=on_hold, reason=reason,
                        hold_invoice=row["hold_invoice"], hold_days_overdue=row["hold_days"])


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



router = Router(
    path="/api/v1",
    route_handlers=[list_members, member_detail, create_member, update_member, member_access, list_plans,
                    list_payments, member_payments, payment_detail, list_dues, list_renewals],
    exception_handlers={
        ApiProblem: _on_problem,
        ValidationException: _on_validation,
        NotFound: _on_not_found,
        NotFoundException: _on_not_found,
        HTTPException: _on_http,
    },
    tags=["v1"],
)

