"""Webhook endpoints (admins): register one (its secret shown once), the delivery log, resend,
a test event, switch off and on. The rules are portal/webhooks.py's; these handlers only read
forms and show pages."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from portal import webhooks
from portal.auth import admin_required
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from tables.webhooks import WebhookDelivery, WebhookEndpoint

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


async def _page(values: dict, errors: dict, status: int = 200, new_secret: str | None = None) -> Template:
    return Template("settings/webhooks.html", status_code=status,
                    context={"endpoints": await webhooks.list_endpoints(), "events": webhooks.EVENTS,
                             "values": values, "errors": errors, "new_secret": new_secret})


@get("/settings/webhooks", guards=[admin_required])
async def webhooks_page() -> Template:
    return await _page({}, {})


@post("/settings/webhooks", guards=[admin_required], status_code=200)
async def webhook_create(request: Request, data: FormData) -> Template:
    url = (data.get("url") or "").strip()
    description = (data.get("description") or "").strip()
    chosen = [e for e in webhooks.EVENTS if data.get(f"event_{e}") in ("on", "1", "true")]
    values = {"url": url, "description": description, **{f"event_{e}": True for e in chosen}}
    errors = {}
    if not url:
        errors["url"] = S_("Give the address the other system receives webhooks at")
    if not chosen:
        errors["events"] = S_("Choose at least one event")
    if len(description) > 200:
        errors["description"] = S_("200 characters at most")
    if not errors:
        try:
            _, secret = await webhooks.create_endpoint(url, chosen, description, request.scope["user"].staff_id)
        except RuleBroken as e:
            errors["url"] = str(e)
        else:
            # The secret is on this page only (the other system needs it to check signatures).
            return await _page({}, {}, new_secret=secret)
    return await _page(values, errors, status=422)


@get("/settings/webhooks/{endpoint_id:int}", guards=[admin_required])
async def webhook_log(endpoint_id: FromPath[int]) -> Template:
    endpoint = await WebhookEndpoint.select(
        *[c for c in WebhookEndpoint.all_columns() if c._meta.name != "secret"]).where(
        WebhookEndpoint.id == endpoint_id).first()
    if not endpoint:
        raise NotFound("webhook endpoint")
    return Template("settings/webhook_log.html",
                    context={"endpoint": endpoint, "deliveries": await webhooks.delivery_log(endpoint_id)})


@post("/settings/webhooks/{endpoint_id:int}/test", guards=[admin_required])
async def webhook_test(request: Request, endpoint_id: FromPath[int]) -> Redirect:
    await webhooks.send_test(endpoint_id, request.scope["user"].staff_id)
    return Redirect(f"/settings/webhooks/{endpoint_id}", status_code=303)


@post("/settings/webhooks/{endpoint_id:int}/enable", guards=[admin_required])
async def webhook_enable(request: Request, endpoint_id: FromPath[int]) -> Redirect:
    await webhooks.set_enabled(endpoint_id, True, request.scope["user"].staff_id)
    return Redirect(f"/settings/webhooks/{endpoint_id}", status_code=303)


@post("/settings/webhooks/{endpoint_id:int}/disable", guards=[admin_required])
async def webhook_disable(request: Request, endpoint_id: FromPath[int]) -> Redirect:
    await webhooks.set_enabled(endpoint_id, False, request.scope["user"].staff_id)
    return Redirect(f"/settings/webhooks/{endpoint_id}", status_code=303)


@post("/settings/webhooks/deliveries/{delivery_id:int}/resend", guards=[admin_required])
async def webhook_resend(request: Request, delivery_id: FromPath[int]) -> Redirect:
    row = await WebhookDelivery.select(WebhookDelivery.endpoint).where(WebhookDelivery.id == delivery_id).first()
    if not row:
        raise NotFound("webhook delivery")
    await webhooks.resend(delivery_id, request.scope["user"].staff_id)
    return Redirect(f"/settings/webhooks/{row['endpoint']}", status_code=303)


routes = [webhooks_page, webhook_create, webhook_log, webhook_test, webhook_enable, webhook_disable, webhook_resend]
