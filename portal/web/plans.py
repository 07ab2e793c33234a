"""Membership plans: managers set names, prices and durations."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from portal import audit
from portal.auth import manager_required
from portal.lib import forms
from portal.lib.errors import NotFound
from portal.lib.i18n import S_
from tables.members import Plan

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


@get("/plans", guards=[manager_required])
async def plan_list() -> Template:
    plans = await Plan.select().order_by(Plan.active, ascending=False).order_by(Plan.price)
    return Template("plans/index.html", context={"plans": plans})


@get("/plans/new", guards=[manager_required])
async def plan_new() -> Template:
    return Template("plans/form.html", context={"values": {"duration_months": "1", "duration_days": "0", "active": True}, "errors": {}})


async def _save(request: Request, data: dict, plan_id: int | None) -> Template | Redirect:
    settings = request.app.state.settings
    values, errors = forms.plan_form(data, settings.currency)
    if not errors:
        clean = values["clean"]
        name_taken = await Plan.exists().where((Plan.name.ilike(clean["name"])) & (Plan.id != (plan_id or 0)))
        if name_taken:
            errors["name"] = S_("Another plan already has this name")
    if errors:
        return Template("plans/form.html", status_code=422, context={"values": values, "errors": errors, "plan_id": plan_id})
    row = {"name": clean["name"], "price": clean["price"].amount, "currency": clean["price"].currency,
           "duration_months": clean["duration_months"], "duration_days": clean["duration_days"], "active": clean["active"]}
    staff_id = request.scope["user"].staff_id
    if plan_id is None:
        plan = Plan(**row)
        await plan.save()
        plan_id = plan.id
    else:
        await Plan.update(row).where(Plan.id == plan_id)
    await audit.record("plan.saved", "plan", plan_id, staff_id=staff_id, details={**row, "price": str(row["price"])})
    return Redirect("/plans", status_code=303)


@post("/plans/new", guards=[manager_required], status_code=200)
async def plan_create(request: Request, data: FormData) -> Template | Redirect:
    return await _save(request, data, None)


@get("/plans/{plan_id:int}/edit", guards=[manager_required])
async def plan_edit(plan_id: FromPath[int]) -> Template:
    plan = await Plan.select().where(Plan.id == plan_id).first()
    if not plan:
        raise NotFound("plan")
    values = {"name": plan["name"], "price": f"{plan['price']:.2f}", "duration_months": str(plan["duration_months"]),
              "duration_days": str(plan["duration_days"]), "active": plan["active"]}
    return Template("plans/form.html", context={"values": values, "errors": {}, "plan_id": plan_id})


@post("/plans/{plan_id:int}/edit", guards=[manager_required], status_code=200)
async def plan_update(request: Request, plan_id: FromPath[int], data: FormData) -> Template | Redirect:
    if not await Plan.exists().where(Plan.id == plan_id):
        raise NotFound("plan")
    return await _save(request, data, plan_id)


routes = [plan_list, plan_new, plan_create, plan_edit, plan_update]
