"""Member pages: live search, register, edit, detail, put on a plan."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, Parameter
from litestar.response import Redirect, Template

from portal import forms, members
from portal.auth import staff_required
from portal.clock import today
from portal.errors import RuleBroken
from portal.messages.queries import member_messages
from portal.web.templating import is_htmx
from tables.locations import Location
from tables.billing import Invoice, Payment
from tables.members import Plan

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


async def _locations() -> list[dict]:
    return await Location.select(Location.id, Location.name).where(Location.active == True).order_by(Location.name)  # noqa: E712


@get("/", guards=[staff_required])
async def home() -> Redirect:
    return Redirect("/members", status_code=303)


@get("/members", guards=[staff_required])
async def member_list(request: Request, q: FromQuery[str] = "", page: Annotated[int, Parameter(ge=1)] = 1) -> Template:
    result = await members.search_members(q, page)
    template = "members/_results.html" if is_htmx(request) else "members/index.html"
    return Template(template, context={"result": result})


async def _form_page(template: str, values: dict, errors: dict, status: int = 200, **extra) -> Template:
    return Template(template, status_code=status,
                    context={"values": values, "errors": errors, "locations": await _locations(), **extra})


@get("/members/new", guards=[staff_required])
async def member_new(request: Request) -> Template:
    user = request.scope["user"]
    return await _form_page("members/form.html", {"home_location": str(user.location_id or "")}, {})


@post("/members/new", guards=[staff_required], status_code=200)
async def member_create(request: Request, data: FormData) -> Template | Redirect:
    locations = await _locations()
    values, errors = forms.member_form(data, {loc["id"] for loc in locations})
    if errors:
        return await _form_page("members/form.html", values, errors, status=422)
    member = await members.create_member(values["clean"], request.scope["user"].staff_id)
    return Redirect(f"/members/{member.id}?created=1", status_code=303)


async def member_page(member_id: int, *, status: int = 200, created: bool = False, pay_values: dict | None = None,
                      pay_errors: dict | None = None, plan_values: dict | None = None,
                      plan_errors: dict | None = None, mpesa_values: dict | None = None,
                      mpesa_errors: dict | None = None) -> Template:
    """The member page: who, memberships, what they owe, invoices, payments, recent messages,
    and the two forms (record a payment, put on a plan). A fixed number of queries."""
    from portal import ledger
    from portal.web.billing import new_idempotency_key

    member = await members.member_with_hold(member_id)
    owed, credit = await ledger.member_balances(member_id)
    invoices = await Invoice.select().where(Invoice.member == member_id).order_by(Invoice.id, ascending=False).limit(50)
    payments = await Payment.select().where(Payment.member == member_id).order_by(Payment.id, ascending=False).limit(50)
    plans = await Plan.select().where(Plan.active == True).order_by(Plan.price)  # noqa: E712
    recent_messages, message_failures = await member_messages(member_id)
    open_invoices = [inv for inv in invoices if inv["status"] in ("open", "partially_paid")]
    if pay_values is None:
        pay_values = {"method": "cash", "amount": f"{owed.amount:.2f}" if owed.amount > 0 else "",
                      "idempotency_key": new_idempotency_key()}
    if mpesa_values is None:
        whole = owed.amount.to_integral_value(rounding="ROUND_CEILING") if owed.amount > 0 else ""
        mpesa_values = {"phone": "0" + member["phone"][3:], "amount": str(whole), "idempotency_key": new_idempotency_key()}
    return Template("members/detail.html", status_code=status, context={
        "mpesa_values": mpesa_values, "mpesa_errors": mpesa_errors or {},
        "member": member, "memberships": await members.member_memberships(member_id), "plans": plans,
        "created": created, "owed": owed, "credit": credit, "invoices": invoices, "open_invoices": open_invoices,
        "payments": payments, "member_messages": recent_messages, "member_failures": message_failures,
        "pay_values": pay_values, "pay_errors": pay_errors or {},
        "plan_values": plan_values or {"start_date": today().isoformat()}, "plan_errors": plan_errors or {},
    })


@get("/members/{member_id:int}", guards=[staff_required])
async def member_detail(member_id: FromPath[int], created: FromQuery[bool] = False) -> Template:
    return await member_page(member_id, created=created)


@get("/members/{member_id:int}/edit", guards=[staff_required])
async def member_edit(member_id: FromPath[int]) -> Template:
    member = await members.get_member(member_id)
    values = {k: (member[k] or "") for k in ("first_name", "last_name", "phone", "email", "notes")}
    values["phone"] = "0" + member["phone"][3:]
    values["home_location"] = str(member["home_location"] or "")
    values["reminder_opt_out"] = member["reminder_opt_out"]
    values["message_channel"] = member["message_channel"]
    return await _form_page("members/form.html", values, {}, member=member)


@post("/members/{member_id:int}/edit", guards=[staff_required], status_code=200)
async def member_update(request: Request, member_id: FromPath[int], data: FormData) -> Template | Redirect:
    member = await members.get_member(member_id)
    locations = await _locations()
    values, errors = forms.member_form(data, {loc["id"] for loc in locations})
    if errors:
        return await _form_page("members/form.html", values, errors, status=422, member=member)
    await members.update_member(member_id, values["clean"], request.scope["user"].staff_id)
    return Redirect(f"/members/{member_id}", status_code=303)


@post("/members/{member_id:int}/memberships", guards=[staff_required], status_code=200)
async def member_put_on_plan(request: Request, member_id: FromPath[int], data: FormData) -> Template | Redirect:
    values = {"plan": data.get("plan", ""), "start_date": data.get("start_date", "")}
    errors: dict[str, str] = {}
    start = forms.parse_date(values["start_date"])
    if start is None:
        errors["start_date"] = "Enter a start date"
    if not values["plan"].isdigit():
        errors["plan"] = "Choose a plan"
    if not errors:
        try:
            await members.put_on_plan(member_id, int(values["plan"]), start, request.scope["user"].staff_id)
            return Redirect(f"/members/{member_id}", status_code=303)
        except RuleBroken as e:
            errors["plan"] = str(e)
    return await member_page(member_id, status=422, plan_values=values, plan_errors=errors)


routes = [home, member_list, member_new, member_create, member_detail, member_edit, member_update,
          member_put_on_plan]
