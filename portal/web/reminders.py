"""Staff control of reminders: send one now, pause (with a reason) and resume, per member or invoice."""

from __future__ import annotations

from html import escape
from typing import Annotated

from litestar import Request, Response, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect

from portal.auth import staff_required
from portal.lib.errors import RuleBroken
from portal.messages import reminders
from portal.web.flash import NOTICES, back_with
from portal.web.templating import is_htmx

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


@post("/invoices/{invoice_id:int}/remind", guards=[staff_required], status_code=200)
async def remind_now(request: Request, invoice_id: FromPath[int], data: FormData) -> Redirect | Response:
    try:
        created = await reminders.remind_now(invoice_id, request.scope["user"].staff_id)
        code = "reminder_sent" if created else "reminder_already"
    except RuleBroken as e:
        code, refused = "reminder_refused", str(e)
    if is_htmx(request):  # the dues page: the button's cell says what happened
        text = refused if code == "reminder_refused" else NOTICES[code][1]
        return Response(f'<span class="muted" data-testid="remind-result">{escape(text)}</span>',
                        media_type="text/html", status_code=422 if code == "reminder_refused" else 200)
    return back_with(data.get("back") or f"/invoices/{invoice_id}", code)


@post("/invoices/{invoice_id:int}/reminders", guards=[staff_required], status_code=200)
async def invoice_reminders(request: Request, invoice_id: FromPath[int], data: FormData) -> Redirect:
    return await _pause_or_resume(request, data, f"/invoices/{invoice_id}", reminders.pause_invoice,
                                  reminders.resume_invoice, invoice_id)


@post("/members/{member_id:int}/reminders", guards=[staff_required], status_code=200)
async def member_reminders(request: Request, member_id: FromPath[int], data: FormData) -> Redirect:
    return await _pause_or_resume(request, data, f"/members/{member_id}", reminders.pause_member,
                                  reminders.resume_member, member_id)


async def _pause_or_resume(request: Request, data: dict, back: str, pause, resume, row_id: int) -> Redirect:
    staff_id = request.scope["user"].staff_id
    if data.get("action") == "resume":
        await resume(row_id, staff_id)
        return back_with(back, "reminders_resumed")
    try:
        await pause(row_id, data.get("reason", ""), staff_id)
    except RuleBroken:
        return back_with(back, "reason_needed")
    return back_with(back, "reminders_paused")


routes = [remind_now, invoice_reminders, member_reminders]
