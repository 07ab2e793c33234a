"""The door: the check-in screen (a number typed or scanned, or a phone or name), the override,
the managers' visits page, and the printable member card. The rule is portal/members/checkin.py."""

from __future__ import annotations

from typing import Annotated

import segno
from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from portal.auth import manager_required, staff_required
from portal.lib import forms
from portal.lib.clock import now, today
from portal.lib.errors import NotFound, RuleBroken
from portal.members import absent as absent_members
from portal.members import checkin, members, visits
from portal.members.checkin import ACTIONS
from portal.sales.packs import packs_with_sessions
from portal.web.templating import is_htmx
from tables.visits import Visit

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
QUERY_MAX = 60


def _page(request: Request, status: int = 200, **answer) -> Template:
    """The answer alone for htmx (swapped under the field), the whole page otherwise."""
    template = "checkin/_answer.html" if is_htmx(request) else "checkin/index.html"
    return Template(template, status_code=status, context={"answer_shown": bool(answer), **answer})


def _actions(member_id: int, answer: checkin.Answer) -> list[dict]:
    return [{"key": key, "label": ACTIONS[key][0], "href": f"/members/{member_id}#{ACTIONS[key][1]}"}
            for key in answer.actions]


@get("/checkin", guards=[staff_required])
async def checkin_page(request: Request) -> Template:
    return _page(request)


async def _answer(request: Request, member: dict, standing: checkin.Standing) -> Template:
    answer = checkin.decide(standing, today(), checkin.Rules.from_settings())
    user = request.scope["user"]
    visit_id = await checkin.record_visit(member["id"], answer, staff_id=user.staff_id, location_id=user.location_id)
    return _page(request, member=member, answer=answer, visit_id=visit_id, actions=_actions(member["id"], answer),
                 session_packs=await packs_with_sessions(member["id"]))


@post("/checkin", guards=[staff_required], status_code=200)
async def checkin_post(request: Request, data: FormData) -> Template:
    """A member number (typed, or scanned from the card: the scanner types it and Enter) answers
    at once; a phone or a name searches, and answers when it finds exactly one member."""
    query = " ".join(data.get("q", "").split())[:QUERY_MAX]
    member_id = forms.whole(data.get("member", ""))
    if member_id is not None:  # chosen from a list of matches
        found = await checkin.standing(member_id)
        if found is None:
            return _page(request, 422, query=query, error="That member is not there any more. Search again.")
        return await _answer(request, *found)
    if not query:
        return _page(request, 422, query=query, error="Type or scan a member number, or type a phone or name.")
    found = await checkin.standing(number=query)
    if found is not None:
        return await _answer(request, *found)
    result = await members.search_members(query)
    if result.count == 1:
        found = await checkin.standing(result.rows[0]["id"])
        if found is not None:
            return await _answer(request, *found)
    if result.count == 0:
        return _page(request, query=query, error=f"No member found for “{query}”.")
    return _page(request, query=query, matches=result.rows, more=result.count - len(result.rows))


VISIT_SQL = """
SELECT v.id, v.member, v.colour, v.outcome, v.reason, v.override_reason,
       m.member_number, m.first_name, m.last_name, m.phone
FROM visit v JOIN member m ON m.id = v.member WHERE v.id = {}
"""


@post("/checkin/visits/{visit_id:int}/override", guards=[staff_required], status_code=200)
async def checkin_override(request: Request, visit_id: FromPath[int], data: FormData) -> Template:
    """Let a refused member in, with a reason (audited)."""
    rows = await Visit.raw(VISIT_SQL, visit_id)
    if not rows:
        raise NotFound("visit")
    visit = rows[0]
    member = {"id": visit["member"], **{k: visit[k] for k in ("member_number", "first_name", "last_name", "phone")}}
    try:
        done = await checkin.override(visit_id, data.get("reason", ""), request.scope["user"].staff_id)
    except RuleBroken as e:
        # The actions stay beside the form: the desk may take payment instead of overriding.
        found = await checkin.standing(visit["member"])
        actions = _actions(visit["member"], checkin.decide(found[1], today(), checkin.Rules.from_settings())) if found else []
        return _page(request, 422, member=member, stored=visit, visit_id=visit_id, override_error=str(e),
                     override_value=data.get("reason", "")[:checkin.OVERRIDE_REASON_MAX], actions=actions)
    visit = {**visit, "outcome": Visit.Outcome.override.value, "override_reason": done["override_reason"]}
    return _page(request, member=member, stored=visit, visit_id=visit_id)


@get("/checkin/visits", guards=[manager_required])
async def visits_page(days: FromQuery[str] = "14", reminded: FromQuery[str] = "") -> Template:
    """Visits per day and per week, and members with a running membership not seen for N days."""
    n = forms.whole(days)
    error = "" if n is not None and 1 <= n <= 365 else "Choose a number of days from 1 to 365"
    n = n if not error else 14
    ranges = visits.day_and_week_ranges()
    by_day = await visits.visits_by("day", *ranges["days"])
    by_week = await visits.visits_by("week", *ranges["weeks"])
    absent, absent_total = await visits.not_seen(n)
    lately = await absent_members.reminded_lately([m["id"] for m in absent], now() - absent_members.LOOK_BACK)
    return Template("checkin/visits.html", status_code=422 if error else 200, context={
        "by_day": by_day, "by_week": by_week, "absent": absent, "absent_total": absent_total, "days": n,
        "days_error": error, "day_max": max([r["came_in"] + r["refused"] for r in by_day] + [1]),
        "week_max": max([r["came_in"] + r["refused"] for r in by_week] + [1]),
        "reminded_lately": lately, "reminded": _reminded_summary(reminded),
    })


def _reminded_summary(text: str) -> dict | None:
    """The counts the remind button's redirect carries ("queued.already.skipped"), read back."""
    parts = [forms.whole(p) for p in text.split(".")] if text else []
    if len(parts) != 3 or any(p is None for p in parts):
        return None
    return dict(zip(("queued", "already", "skipped"), parts))


@post("/checkin/visits/remind", guards=[manager_required], status_code=303)
async def remind_absent(request: Request) -> Redirect:
    """'We miss you' to the members chosen on the not-seen list (one, or all shown)."""
    form = await request.form()
    ids = [i for i in (forms.whole(v) for v in form.getall("member", [])) if i is not None][:visits.NOT_SEEN_LIMIT]
    days = forms.whole(form.get("days", "")) or 14
    done = await absent_members.remind(ids, request.scope["user"].staff_id)
    counts = f"{len(done.queued)}.{len(done.already)}.{len(done.opted_out)}"
    return Redirect(f"/checkin/visits?days={days}&reminded={counts}#not-seen", status_code=303)


@get("/members/{member_id:int}/card", guards=[staff_required])
async def member_card(member_id: FromPath[int]) -> Template:
    """The member's card, to print: name, number, and the number as a QR the door's scanner reads."""
    member = await members.get_member(member_id)
    qr = segno.make(member["member_number"], error="m").svg_inline(border=2, omitsize=True, dark="#000", light="#fff")
    return Template("members/card.html", context={"member": member, "qr": qr})


routes = [checkin_page, checkin_post, checkin_override, visits_page, remind_absent, member_card]
