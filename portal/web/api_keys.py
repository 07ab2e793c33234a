"""API keys (admins): make a key (shown once), see when each was last used, revoke."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from portal.api import keys
from portal.auth import admin_required
from portal.lib.forms import whole
from portal.lib.i18n import S_
from tables.locations import Location

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


async def _page(values: dict, errors: dict, status: int = 200, new_key: str | None = None) -> Template:
    locations = await Location.select(Location.id, Location.name).where(Location.active == True).order_by(Location.name)  # noqa: E712
    return Template("settings/api_keys.html", status_code=status,
                    context={"keys": await keys.list_keys(), "scopes": keys.SCOPES, "locations": locations,
                             "values": values, "errors": errors, "new_key": new_key})


@get("/settings/api-keys", guards=[admin_required])
async def api_keys_page() -> Template:
    return await _page({"scope_read": True}, {})


@post("/settings/api-keys", guards=[admin_required], status_code=200)
async def api_key_create(request: Request, data: FormData) -> Template:
    name = (data.get("name") or "").strip()
    scopes = [s for s in keys.SCOPES if data.get(f"scope_{s}") in ("on", "1", "true")]
    location = (data.get("location") or "").strip()
    values = {"name": name, "location": location, **{f"scope_{s}": True for s in scopes}}
    errors = {}
    if not name:
        errors["name"] = S_("Name the key after the system that will use it")
    elif len(name) > 80:
        errors["name"] = S_("80 characters at most")
    if problem := keys.scope_problem(scopes):
        errors["scopes"] = problem
    location_id = whole(location) if location else None
    if location and (location_id is None or not await Location.exists().where(Location.id == location_id)):
        errors["location"] = S_("Choose a location from the list")
    if errors:
        return await _page(values, errors, status=422)
    _, key = await keys.create_key(name, scopes, location_id, request.scope["user"].staff_id)
    # The key is on this page only: it is not stored, so it cannot be shown again.
    return await _page({"scope_read": True}, {}, new_key=key)


@post("/settings/api-keys/{key_id:int}/revoke", guards=[admin_required])
async def api_key_revoke(request: Request, key_id: FromPath[int]) -> Redirect:
    await keys.revoke_key(key_id, request.scope["user"].staff_id)
    return Redirect("/settings/api-keys", status_code=303)


routes = [api_keys_page, api_key_create, api_key_revoke]
