"""Membership changes at the desk: freeze (and end a freeze early), renew, change plan.
The rules are portal/members/changes.py; these handlers parse forms and show pages."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from portal.auth import staff_required
from portal.lib import forms
from portal.lib.clock import today
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from portal.lib.money import Money, MoneyParseError
from portal.members import changes
from portal.settings import get_settings
from portal.web.flash import back_with
from tables.freezes import MembershipFreeze
from tables.members import Membership, Plan

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


async def _membership(membership_id: int) -> dict:
    """The membership with its plan and member, for the pages' headings. One query."""
    row = await Membership.select(
        Membership.all_columns(), Membership.plan.name.as_alias("plan_name"),
        Membership.member.first_name.as_alias("first_name"), Membership.member.last_name.as_alias("last_name"),
        Membership.member.member_number.as_alias("member_number"),
    ).where(Membership.id == membership_id).first()
    if not row:
        raise NotFound("membership")
    return row


# --- freeze --------------------------------------------------------------------------------------

async def _freeze_page(membership_id: int, values: dict, errors: dict, status: int = 200,
                       end_values: dict | None = None, end_errors: dict | None = None) -> Template:
    s = get_settings()
    return Template("memberships/freeze.html", status_code=status, context={
        "ms": await _membership(membership_id), "freezes": await changes.freezes_of(membership_id),
        "values": values, "errors": errors, "end_values": end_values or {}, "end_errors": end_errors or {},
        "rules": {"min": s.freeze_min_days, "max": s.freeze_max_days, "notice": s.freeze_notice_days},
        "today": today(),
    })


@get("/memberships/{membership_id:int}/freeze", guards=[staff_required])
async def freeze_form(membership_id: FromPath[int]) -> Template:
    return await _freeze_page(membership_id, {"start_date": today().isoformat(), "fee": ""}, {})


@post("/memberships/{membership_id:int}/freeze", guards=[staff_required], status_code=200)
async def freeze_create(request: Request, membership_id: FromPath[int], data: FormData) -> Template | Redirect:
    values = {k: (data.get(k) or "") for k in ("start_date", "end_date", "reason", "fee")}
    errors: dict[str, str] = {}
    start, end = forms.parse_date(values["start_date"]), forms.parse_date(values["end_date"])
    if start is None:
        errors["start_date"] = S_("Enter the first frozen day")
    if end is None:
        errors["end_date"] = S_("Enter the last frozen day")
    fee = None
    if values["fee"].strip():
        try:
            fee = Money.parse(values["fee"], get_settings().currency)
        except MoneyParseError:
            errors["fee"] = S_("Enter the fee as an amount, e.g. 500, or leave it empty")
    if not errors:
        try:
            await changes.freeze(membership_id, start, end, values["reason"], fee, request.scope["user"].staff_id)
            ms = await _membership(membership_id)
            return back_with(f"/members/{ms['member']}", "membership_frozen")
        except RuleBroken as e:
            errors[e.field or "reason"] = str(e)
    return await _freeze_page(membership_id, values, errors, status=422)


@post("/freezes/{freeze_id:int}/end", guards=[staff_required], status_code=200)
async def freeze_end(request: Request, freeze_id: FromPath[int], data: FormData) -> Template | Redirect:
    found = await MembershipFreeze.select(MembershipFreeze.membership, MembershipFreeze.member).where(
        MembershipFreeze.id == freeze_id).first()
    if not found:
        raise NotFound("freeze")
    values = {"reason": data.get("reason") or "", "freeze": freeze_id}
    try:
        await changes.end_freeze(freeze_id, values["reason"], request.scope["user"].staff_id)
        return back_with(f"/members/{found['member']}", "freeze_ended")
    except RuleBroken as e:
        return await _freeze_page(found["membership"], {"start_date": today().isoformat()}, {}, status=422,
                                  end_values=values, end_errors={"reason": str(e)})


# --- renew ---------------------------------------------------------------------------------------

@get("/memberships/{membership_id:int}/renew", guards=[staff_required])
async def renew_confirm(membership_id: FromPath[int]) -> Template:
    ms = await _membership(membership_id)
    plan = await Plan.select().where(Plan.id == ms["plan"]).first()
    return Template("memberships/renew.html", context={"ms": ms, "plan": plan, "error": ""})


@post("/memberships/{membership_id:int}/renew", guards=[staff_required], status_code=200)
async def renew(request: Request, membership_id: FromPath[int]) -> Template | Redirect:
    try:
        invoice, raised = await changes.renew(membership_id, request.scope["user"].staff_id)
    except RuleBroken as e:
        ms = await _membership(membership_id)
        plan = await Plan.select().where(Plan.id == ms["plan"]).first()
        return Template("memberships/renew.html", status_code=422, context={"ms": ms, "plan": plan, "error": str(e)})
    return back_with(f"/invoices/{invoice['id']}", "renewal_raised" if raised else "renewal_exists")


# --- change plan ---------------------------------------------------------------------------------

async def _change_page(membership_id: int, values: dict, errors: dict, status: int = 200) -> Template:
    ms = await _membership(membership_id)
    plans = await Plan.select().where((Plan.active == True) & (Plan.id != ms["plan"])).order_by(Plan.price)  # noqa: E712
    quote = None
    plan_id = forms.whole(values.get("plan", ""))
    if plan_id is not None and "plan" not in errors:
        try:
            quote = await changes.switch_quote(membership_id, plan_id)
        except RuleBroken as e:
            errors = {**errors, e.field or "plan": str(e)}
    if errors and status == 200:
        status = 422
    return Template("memberships/change.html", status_code=status, context={
        "ms": ms, "plans": plans, "values": values, "errors": errors, "quote": quote, "today": today()})


@get("/memberships/{membership_id:int}/change", guards=[staff_required])
async def change_form(membership_id: FromPath[int], plan: FromQuery[str] = "") -> Template:
    return await _change_page(membership_id, {"plan": plan}, {})


@post("/memberships/{membership_id:int}/change", guards=[staff_required], status_code=200)
async def change_plan(request: Request, membership_id: FromPath[int], data: FormData) -> Template | Redirect:
    values = {"plan": data.get("plan") or ""}
    plan_id = forms.whole(values["plan"])
    if plan_id is None:
        return await _change_page(membership_id, values, {"plan": "Choose the new plan"}, status=422)
    try:
        done = await changes.switch(membership_id, plan_id, request.scope["user"].staff_id)
    except RuleBroken as e:
        return await _change_page(membership_id, values, {e.field or "plan": str(e)}, status=422)
    return back_with(f"/invoices/{done['invoice']['id']}", "plan_changed")


routes = [freeze_form, freeze_create, freeze_end, renew_confirm, renew, change_form, change_plan]
