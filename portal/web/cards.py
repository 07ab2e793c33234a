"""Card payments: the desk opens Flutterwave's hosted checkout; everyone comes back here."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from portal.auth import staff_required
from portal.callbacks import dispatch
from portal.callbacks import store as callbacks
from portal.lib.errors import RuleBroken
from portal.lib.money import Money, MoneyParseError
from portal.payments.cards import checkout as cards
from portal.web.client import client_ip
from portal.web.flash import back_with
from portal.web.pages import member_page
from tables.billing import Payment
from tables.statuses import IN_FLIGHT

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
RETURN_PATH = "/pay/card/return"


@post("/members/{member_id:int}/card", guards=[staff_required], status_code=200)
async def desk_card(request: Request, member_id: FromPath[int], data: FormData) -> Template | Redirect:
    settings = request.app.state.settings
    values = {"amount": (data.get("amount") or "").strip(), "idempotency_key": (data.get("idempotency_key") or "").strip()}
    try:
        amount = Money.parse(values["amount"], settings.currency)
        user = request.scope["user"]
        recorded, link = await cards.start_card_checkout(
            member_id=member_id, amount=amount, idempotency_key=values["idempotency_key"] or cards.new_tx_ref(),
            redirect_url=settings.public_base_url + RETURN_PATH, staff_id=user.staff_id, location_id=user.location_id)
    except (MoneyParseError, RuleBroken) as e:
        return await member_page(member_id, status=422, pay_errors={"card": str(e)})
    return Redirect(link or f"/payments/{recorded.payment['id']}", status_code=303)


async def card_payment_named(tx_ref: str) -> dict | None:
    """The card payment a redirect's tx_ref names (ours are short, and never hold a NUL)."""
    if not tx_ref or len(tx_ref) > 60 or "\x00" in tx_ref:
        return None
    return await Payment.select().where((Payment.method == "card") & (Payment.gateway_request == tx_ref)).first()


async def receive_card_redirect(request: Request) -> dict | None:
    """Store Flutterwave's redirect raw, act on it (verified, never trusted as is), and return
    the card payment it names, if any. Anyone can type a redirect: one that names no card payment
    of ours is neither stored nor acted on (it could only fill the table and the Alerts page)."""
    params = dict(request.query_params)
    tx_ref = params.get("tx_ref", "")
    if await card_payment_named(tx_ref) is None:
        return None
    raw = urlencode(params).encode()
    ident = params.get("transaction_id") or tx_ref
    stored = await callbacks.store("flutterwave", "redirect", raw, headers=dict(request.headers),
                                   source_ip=client_ip(request),
                                   external_id=f"{ident}:{params.get('status', '')}"[:110])
    await dispatch.process(stored.id, dispatch.read_redirect(raw.decode()))
    return await card_payment_named(tx_ref)  # as the redirect left it


@get(RETURN_PATH)
async def card_return(request: Request) -> Template | Redirect:
    """Flutterwave sends the browser back here from a desk checkout."""
    payment = await receive_card_redirect(request)
    if payment and request.scope.get("user"):
        return Redirect(f"/payments/{payment['id']}", status_code=303)
    return Template("payments/card_return.html", context={"payment": payment})


@post("/payments/{payment_id:int}/card-check", guards=[staff_required], status_code=200)
async def card_check(request: Request, payment_id: FromPath[int]) -> Redirect:
    """Staff ask Flutterwave now what became of a card payment in flight."""
    await cards.check_card_payment(payment_id, staff_id=request.scope["user"].staff_id)
    still = await Payment.select(Payment.status).where(Payment.id == payment_id).first()
    waiting = still is not None and still["status"] in IN_FLIGHT
    return back_with(f"/payments/{payment_id}", "card_waiting" if waiting else "card_settled")


@post("/payments/{payment_id:int}/card-cancel", guards=[staff_required], status_code=200)
async def card_cancel(request: Request, payment_id: FromPath[int]) -> Redirect:
    try:
        await cards.cancel_card_payment(payment_id, request.scope["user"].staff_id)
    except RuleBroken:
        return back_with(f"/payments/{payment_id}", "card_not_in_flight")
    return back_with(f"/payments/{payment_id}", "card_cancelled")


routes = [desk_card, card_return, card_check, card_cancel]
