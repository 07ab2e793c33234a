"""Member pages: live search, register, edit, detail, put on a plan."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from portal.auth import staff_required
from portal.lib import forms
from portal.lib.errors import RuleBroken
from portal.lib.i18n import S_
from portal.lib.paging import page_number
from portal.members import enrol, members
from portal.web.pages import member_page
from portal.web.templating import is_htmx
from tables.locations import Location

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


async def _locations() -> list[dict]:
    return await Location.select(Location.id, Location.name).where(Location.active == True).order_by(Location.name)  # noqa: E712


@get("/", guards=[staff_required])
async def home() -> Redirect:
    return Redirect("/members", status_code=303)


@get("/members/go", guards=[staff_required])
async def member_go(q: FromQuery[str] = "") -> Redirect:
    """Enter in the member search: straight to the member's payment form when one member matches
    (the desk's queue: name, Enter, the amount owed, Enter), else the list of matches."""
    result = await members.search_members(q, 1, size=2)
    if result.count == 1:
        return Redirect(f"/members/{result.rows[0]['id']}#pay", status_code=303)
    return Redirect("/members" + (f"?{urlencode({'q': q})}" if q.strip() else ""), status_code=303)


@get("/members", guards=[staff_required])
async def member_list(request: Request, q: FromQuery[str] = "") -> Template:
    # The one reading of `page` every list shares: absurd numbers are page 1, not an enormous OFFSET.
    result = await members.search_members(q, page_number(request.query_params))
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
    values["language"] = member["language"]
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
        errors["start_date"] = S_("Enter a start date")
    plan_id = forms.whole(values["plan"])
    if plan_id is None:
        errors["plan"] = S_("Choose a plan")
    if not errors:
        try:
            await enrol.put_on_plan(member_id, plan_id, start, request.scope["user"].staff_id)
            return Redirect(f"/members/{member_id}", status_code=303)
        except RuleBroken as e:
            errors["plan"] = str(e)
    return await member_page(member_id, status=422, plan_values=values, plan_errors=errors)


routes = [home, member_go, member_list, member_new, member_create, member_detail, member_edit, member_update,
          member_put_on_plan]
