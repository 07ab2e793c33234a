"""Staff accounts: admins add people, set roles, locations and email addresses, opt managers and
admins in to the daily digest, deactivate and reset passwords."""

from __future__ import annotations

import re
from typing import Annotated

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
from piccolo.apps.user.tables import BaseUser

from portal import audit, auth
from portal.auth import ROLE_LABEL, admin_required, real_email
from portal.lib.errors import NotFound
from portal.lib.forms import EMAIL_RE, whole
from portal.lib.i18n import S_
from portal.reports.digest import opt_in_problem
from tables.locations import Location
from tables.staff import Staff

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
USERNAME_RE = re.compile(r"^[a-z0-9._-]{3,40}$")

STAFF_SQL = """
SELECT s.id, s.role, s.location, s.daily_digest, s.weekly_money_edits, l.name AS location_name, u.id AS user_id, u.username,
       u.first_name, u.last_name, u.email, u.active, u.last_login
FROM staff s JOIN piccolo_user u ON u.id = s.user LEFT JOIN location l ON l.id = s.location
{where} ORDER BY u.active DESC, lower(u.username)
"""


async def _context(values: dict, errors: dict, **extra) -> dict:
    locations = await Location.select(Location.id, Location.name).order_by(Location.name)
    return {"values": values, "errors": errors, "locations": locations, "roles": ROLE_LABEL, **extra}


def _validate(data: dict, new: bool) -> tuple[dict, dict]:
    values = {k: (data.get(k) or "").strip() for k in ("username", "first_name", "last_name", "role", "location", "password",
                                                       "email")}
    values["email"] = values["email"].lower()
    values["active"] = data.get("active") in ("on", "1", "true") or (new and "active" not in data)
    values["daily_digest"] = data.get("daily_digest") in ("on", "1", "true")
    values["weekly_money_edits"] = data.get("weekly_money_edits") in ("on", "1", "true")
    errors = {}
    if new and not USERNAME_RE.match(values["username"]):
        errors["username"] = S_("3 to 40 lower-case letters, digits, dots, dashes or underscores")
    if values["role"] not in ROLE_LABEL:
        errors["role"] = S_("Choose a role")
    if values["location"] and whole(values["location"]) is None:
        errors["location"] = S_("Choose a location")
    elif values["role"] == "front_desk" and not values["location"]:
        # Cash always belongs to a desk: the close of that location counts what this login takes.
        errors["location"] = S_("A front-desk login takes money at a desk: choose its location")
    if (new or values["password"]) and len(values["password"]) < 10:
        errors["password"] = S_("At least 10 characters")
    if not values["first_name"]:
        errors["first_name"] = S_("First name is required")
    if values["email"] and (len(values["email"]) > 255 or not EMAIL_RE.match(values["email"])
                            or not real_email(values["email"])):
        errors["email"] = S_("That does not look like an email address")
    if values["daily_digest"] and "email" not in errors and (problem := opt_in_problem(values["role"], values["email"])):
        errors["daily_digest"] = problem
    if values["weekly_money_edits"] and "email" not in errors and (problem := opt_in_problem(values["role"], values["email"])):
        errors["weekly_money_edits"] = problem.replace("The daily digest is", "The weekly money edits email is")
    return values, errors


async def _email_taken(email: str, user_id: int | None = None) -> bool:
    if not email:
        return False
    query = BaseUser.exists().where(BaseUser.email == email)
    if user_id is not None:
        query = query.where(BaseUser.id != user_id)
    return await query


@get("/staff", guards=[admin_required])
async def staff_list() -> Template:
    rows = await Staff.raw(STAFF_SQL.format(where=""))
    return Template("staff/index.html", context={"staff": rows, "roles": ROLE_LABEL})


@get("/staff/new", guards=[admin_required])
async def staff_new() -> Template:
    return Template("staff/form.html", context=await _context({"role": "front_desk", "active": True}, {}))


@post("/staff/new", guards=[admin_required], status_code=200)
async def staff_create(request: Request, data: FormData) -> Template | Redirect:
    values, errors = _validate(data, new=True)
    if not errors and await auth.username_taken(values["username"]):
        errors["username"] = S_("That user name is taken")
    if not errors and await _email_taken(values["email"]):
        errors["email"] = S_("Another staff member has this address")
    if errors:
        values.pop("password", None)
        return Template("staff/form.html", status_code=422, context=await _context(values, errors))
    staff_id = await auth.create_staff(
        values["username"], values["password"], values["role"], first_name=values["first_name"],
        last_name=values["last_name"], email=values["email"] or None,
        location_id=whole(values["location"]), daily_digest=values["daily_digest"])
    await Staff.update({Staff.weekly_money_edits: values["weekly_money_edits"]}).where(Staff.id == staff_id)
    await audit.record("staff.created", "staff", staff_id, staff_id=request.scope["user"].staff_id,
                       details={"username": values["username"], "role": values["role"],
                                "daily_digest": values["daily_digest"],
                                "weekly_money_edits": values["weekly_money_edits"]})
    return Redirect("/staff", status_code=303)


async def _load(staff_id: FromPath[int]) -> dict:
    rows = await Staff.raw(STAFF_SQL.format(where="WHERE s.id = {}"), staff_id)
    if not rows:
        raise NotFound("staff")
    return rows[0]


@get("/staff/{staff_id:int}/edit", guards=[admin_required])
async def staff_edit(staff_id: FromPath[int]) -> Template:
    row = await _load(staff_id)
    values = {**row, "location": str(row["location"] or ""), "email": real_email(row["email"])}
    return Template("staff/form.html", context=await _context(values, {}, staff=row))


@post("/staff/{staff_id:int}/edit", guards=[admin_required], status_code=200)
async def staff_update(request: Request, staff_id: FromPath[int], data: FormData) -> Template | Redirect:
    row = await _load(staff_id)
    me = request.scope["user"]
    # A post without the email field (a script, an old page) keeps the address rather than erasing it.
    data = {"email": real_email(row["email"]), **data, "username": row["username"]}
    values, errors = _validate(data, new=False)
    if staff_id == me.staff_id and (values["role"] != "admin" or not values["active"]):
        errors["role"] = S_("You cannot remove your own admin access")
    if not errors and await _email_taken(values["email"], row["user_id"]):
        errors["email"] = S_("Another staff member has this address")
    if errors:
        values.pop("password", None)
        return Template("staff/form.html", status_code=422, context=await _context({**values, "username": row["username"]}, errors, staff=row))
    role = values["role"]
    await Staff.update({Staff.role: role, Staff.location: whole(values["location"]),
                        Staff.daily_digest: values["daily_digest"],
                        Staff.weekly_money_edits: values["weekly_money_edits"]}).where(Staff.id == staff_id)
    await BaseUser.update({BaseUser.first_name: values["first_name"], BaseUser.last_name: values["last_name"],
                           BaseUser.email: values["email"] or auth.placeholder_email(row["username"]),
                           BaseUser.active: values["active"], BaseUser.admin: role == "admin",
                           BaseUser.superuser: role == "admin"}).where(BaseUser.id == row["user_id"])
    if values["password"]:
        own = row["user_id"] == me.user_id
        await auth.set_password(row["user_id"], values["password"],
                                keep_session=request.cookies.get(auth.SESSION_COOKIE) if own else None)
    await audit.record("staff.updated", "staff", staff_id, staff_id=me.staff_id,
                       details={"role": role, "active": values["active"], "password_reset": bool(values["password"]),
                                "daily_digest": values["daily_digest"],
                                "weekly_money_edits": values["weekly_money_edits"],
                                "email_changed": values["email"] != real_email(row["email"])})
    return Redirect("/staff", status_code=303)


routes = [staff_list, staff_new, staff_create, staff_edit, staff_update]
