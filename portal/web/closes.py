"""The end-of-day close page: a manager counts the cash, the portal compares it with the ledger,
and closing locks the day; an admin can reopen it with a reason."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from portal.auth import admin_required, manager_required
from portal.billing import closes
from portal.documents import store as document_store
from portal.documents.requests import request_document
from portal.lib.clock import today
from portal.lib.errors import RuleBroken
from portal.lib.forms import parse_date, whole
from tables.closes import DayClose
from tables.locations import Location

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _subject(close: dict) -> str:
    return f"day_close:{close['id']}:v{close['version']}"


async def _page(request: Request, location_id: int | None, day: date, *, status: int = 200, values: dict | None = None,
                errors: dict | None = None) -> Template:
    locations = await Location.select(Location.id, Location.name).where(Location.active == True).order_by(  # noqa: E712
        Location.name)
    if location_id is None:
        user_location = request.scope["user"].location_id
        location_id = user_location or (locations[0]["id"] if locations else None)
    close = await closes.close_for(location_id, day) if location_id else None
    expected = await closes.expected(location_id, day) if location_id else None
    document = None
    if close and close["status"] == "closed":
        subject = _subject(close)
        document = {"kind": "day_close", "subject": subject, "label": "Close report (PDF)",
                    "ready": await document_store.find("day_close", subject)}
    history = await closes.close_history(location_id) if location_id else None
    return Template("close/index.html", status_code=status, context={
        "locations": locations, "location_id": location_id, "day": day, "today": today(), "close": close, "history": history,
        "expected": expected, "document": document, "denominations": closes.DENOMINATIONS,
        "values": values or {}, "errors": errors or {}})


@get("/close", guards=[manager_required])
async def close_page(request: Request) -> Template:
    typed = request.query_params.get("date", "")
    day = parse_date(typed)
    errors = {"date": f"“{typed[:40]}” is not a day this page can show; showing today"} if typed and day is None else {}
    return await _page(request, whole(request.query_params.get("location")), day or today(),
                       status=422 if errors else 200, errors=errors)


@post("/close", guards=[manager_required], status_code=200)
async def close_submit(request: Request, data: FormData) -> Template | Redirect:
    location_id = whole(data.get("location"))
    day = parse_date(data.get("date", ""))
    if day is None:  # never close some other day than the one asked for
        return await _page(request, location_id, today(), status=422,
                           errors={"form": "The day to close could not be read: pick the day again"})
    if location_id is None or not await Location.exists().where(Location.id == location_id):
        return await _page(request, None, day, status=422, errors={"form": "Pick a location"})
    existing = await closes.close_for(location_id, day)
    if existing and existing["status"] == "closed":
        return await _page(request, location_id, day, status=422, errors={"form": "This day is already closed"})
    expected = await closes.expected(location_id, day)
    counts, errors = closes.parse_counts(data, expected["cash_by_staff"], request.app.state.settings.currency)
    if not errors:
        try:
            close = await closes.close_day(location_id, day, counts, data.get("note", ""), request.scope["user"].staff_id)
            await request_document("day_close", _subject(close))
            return Redirect(f"/close?location={location_id}&date={day.isoformat()}", status_code=303)
        except RuleBroken as e:
            errors["form"] = str(e)
    return await _page(request, location_id, day, status=422, values=data, errors=errors)


@post("/close/{close_id:int}/reopen", guards=[admin_required], status_code=200)
async def close_reopen(request: Request, close_id: FromPath[int], data: FormData) -> Template | Redirect:
    try:
        row = await closes.reopen_day(close_id, data.get("reason", ""), request.scope["user"].staff_id)
    except RuleBroken as e:
        row = await DayClose.select().where(DayClose.id == close_id).first()
        return await _page(request, row["location"], row["business_date"], status=422,
                           values={"reason": data.get("reason", "")}, errors={"reason": str(e)})
    return Redirect(f"/close?location={row['location']}&date={row['business_date'].isoformat()}", status_code=303)


routes = [close_page, close_submit, close_reopen]
