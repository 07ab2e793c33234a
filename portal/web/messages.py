"""Messages pages: every email and SMS sent (or not), one message as the member got it (the dev
mailbox when no SMTP server is configured), and Resend for the failed ones."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from portal.auth import staff_required
from portal.lib.errors import RuleBroken
from portal.messages import outbox
from portal.messages.queries import (
    CHANNELS,
    KIND_LABELS,
    STATUSES,
    MessageFilters,
    message_detail,
    message_page,
)
from portal.web.templating import is_htmx

# The email's own HTML, shown in a sandboxed frame of the detail page: no scripts, no forms, no
# requests anywhere (images in emails are remote or absent), inline styles allowed because that
# is how emails are styled. Framable by our own pages only.
EMAIL_CSP = ("sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; style-src 'unsafe-inline'; "
             "img-src data:; frame-ancestors 'self'")


@get("/messages", guards=[staff_required])
async def message_list(request: Request) -> Template:
    filters = MessageFilters.parse(request.query_params)
    page = await message_page(filters)
    context = {"page": page, "f": filters, "statuses": STATUSES, "channels": CHANNELS, "kinds": KIND_LABELS}
    template = "messages/_table.html" if is_htmx(request) else "messages/index.html"
    return Template(template, context=context, status_code=422 if filters.errors else 200)


@get("/messages/{message_id:int}", guards=[staff_required])
async def message_show(request: Request, message_id: FromPath[int]) -> Template:
    message = await message_detail(message_id)
    return Template("messages/detail.html", context={
        "m": message, "kinds": KIND_LABELS, "dev_mailbox": not request.app.state.settings.smtp_url,
        "resendable": message["status"] in outbox.RESENDABLE})


@get("/messages/{message_id:int}/html", guards=[staff_required])
async def message_html(message_id: FromPath[int]) -> Response:
    message = await message_detail(message_id)
    body = message["body_html"] or "<p style='font-family:sans-serif;color:#666'>No HTML part (yet).</p>"
    return Response(body, media_type="text/html; charset=utf-8",
                    headers={"content-security-policy": EMAIL_CSP, "cache-control": "private, no-store"})


@post("/messages/{message_id:int}/resend", guards=[staff_required], status_code=200)
async def message_resend(request: Request, message_id: FromPath[int]) -> Template | Redirect:
    try:
        await outbox.resend(message_id, request.scope["user"].staff_id)
    except RuleBroken as e:
        message = await message_detail(message_id)
        return Template("messages/detail.html", status_code=409, context={
            "m": message, "kinds": KIND_LABELS, "dev_mailbox": not request.app.state.settings.smtp_url,
            "resendable": message["status"] in outbox.RESENDABLE, "error": str(e)})
    return Redirect(f"/messages/{message_id}?resent=1", status_code=303)


@post("/invoices/{invoice_id:int}/paylink/send", guards=[staff_required], status_code=200)
async def pay_link_send(request: Request, invoice_id: FromPath[int]) -> Template | Redirect:
    try:
        created = await outbox.send_pay_link(invoice_id, request.scope["user"].staff_id)
    except outbox.SentTooOften as e:
        return Template("errors/error.html", status_code=429, context={"status": 429, "message": str(e),
                                                                        "back": f"/invoices/{invoice_id}"})
    except RuleBroken as e:
        return Template("errors/error.html", status_code=409, context={"status": 409, "message": str(e)})
    return Redirect(f"/messages/{created[0]}", status_code=303)


routes = [message_list, message_show, message_html, message_resend, pay_link_send]
