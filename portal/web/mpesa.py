"""Front desk M-Pesa: send a prompt to a phone and watch it complete."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from portal.auth import staff_required
from portal.lib.errors import RuleBroken
from portal.lib.forms import stk_form
from portal.payments.limits import NeedsConfirmation
from portal.payments.mpesa import stk as mpesa
from portal.payments.mpesa.stk import request_stk_push
from portal.payments.state import KeyReused
from portal.web.flash import back_with
from portal.web.pages import ask_to_confirm, member_page, new_idempotency_key, stk_context
from portal.web.templating import is_htmx

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


@post("/members/{member_id:int}/mpesa", guards=[staff_required], status_code=200)
async def request_mpesa(request: Request, member_id: FromPath[int], data: FormData) -> Template | Redirect:
    values, errors = stk_form(data, request.app.state.settings.currency)
    values["idempotency_key"] = values["idempotency_key"] or new_idempotency_key()
    if not errors:
        clean, user = values.pop("clean"), request.scope["user"]
        try:
            recorded = await mpesa.start_stk_push(
                member_id=member_id, phone=clean["phone"], amount=clean["amount"],
                idempotency_key=values["idempotency_key"], invoice_id=clean["invoice_id"],
                staff_id=user.staff_id, location_id=user.location_id, confirmed=clean["confirmed"])
        except NeedsConfirmation as e:
            errors["amount"] = str(e)
            values.update(ask_to_confirm(clean["amount"]))
        except KeyReused as e:
            values["idempotency_key"] = new_idempotency_key()
            return await member_page(member_id, status=409, mpesa_values=values,
                                     mpesa_errors={"mpesa_form": str(e)}, reused=e.earlier)
        except RuleBroken as e:
            # The form has no place of its own for the invoice: its problems show under the amount.
            errors["phone" if e.field == "phone" else "amount"] = str(e)
        else:
            if recorded.created:
                await request_stk_push(recorded.payment["id"])
            return Redirect(f"/payments/{recorded.payment['id']}", status_code=303)
    # This form shares its page with the desk payment form, so its errors carry a prefix there.
    return await member_page(member_id, status=422, mpesa_values=values,
                             mpesa_errors={f"mpesa_{field}": message for field, message in errors.items()})


@get("/payments/{payment_id:int}/status", guards=[staff_required])
async def payment_status(request: Request, payment_id: FromPath[int]) -> Template:
    """The live status partial: polls itself while the prompt is in flight. When it becomes
    final, the whole payment page is refreshed (receipt number, history, receipts)."""
    ctx = await stk_context(payment_id)
    headers = {}
    if not ctx["in_flight"] and is_htmx(request) and request.query_params.get("live") == "1":
        headers["HX-Refresh"] = "true"
    return Template("payments/_stk_status.html", context=ctx, headers=headers)


@post("/payments/{payment_id:int}/retry", guards=[staff_required], status_code=200)
async def retry_mpesa(request: Request, payment_id: FromPath[int]) -> Redirect:
    try:
        recorded = await mpesa.retry_stk_push(payment_id, request.scope["user"].staff_id)
    except RuleBroken:
        # Retried after it completed (a second tab), or above a limit lowered since: say so, no 500.
        return back_with(f"/payments/{payment_id}", "retry_refused")
    if recorded.created:
        await request_stk_push(recorded.payment["id"])
    return Redirect(f"/payments/{recorded.payment['id']}", status_code=303)


routes = [request_mpesa, payment_status, retry_mpesa]
