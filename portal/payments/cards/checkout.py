"""Card payments through Flutterwave's hosted checkout. No card data ever reaches us.

    start_card_checkout -> Payment(pending, tx_ref) -> Flutterwave link -> processing
    the browser comes back (redirect)  \\  each stored raw, then: verify with Flutterwave by id
    Flutterwave posts a webhook         /  (status, tx_ref, currency, amount) and only then credit

Neither the redirect nor the webhook is trusted by itself: what verify confirms is what is
credited. Whichever arrives first credits; the other finds the payment completed and changes
nothing. Less money than asked is credited as received and flagged; another currency, or a
failed verify, credits nothing.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from portal.billing import ledger
from portal.billing.invoices import lock_member
from portal.billing.ledger import credit, debit
from portal.callbacks.store import alert
from portal.gateways.flutterwave import FlutterwaveClient, check_verified
from portal.lib import db
from portal.lib.clock import now
from portal.lib.errors import RuleBroken
from portal.lib.i18n import S_
from portal.lib.money import Money
from portal.payments import state
from portal.payments.limits import check_limit
from portal.payments.service import Recorded, complete_payment
from portal.settings import get_settings
from tables.billing import Invoice, Payment
from tables.gateway import GatewayCallback
from tables.members import Member
from tables.statuses import OPEN_INVOICE

log = logging.getLogger(__name__)

def new_tx_ref() -> str:
    return "PTF-" + secrets.token_hex(8).upper()


async def start_card_checkout(*, member_id: int, amount: Money, idempotency_key: str, redirect_url: str,
                              invoice_id: int | None = None, staff_id: int | None = None,
                              location_id: int | None = None, client=None) -> tuple[Recorded, str | None]:
    """Record the payment, then ask Flutterwave for a hosted checkout link (the browser goes there)."""
    if amount.amount <= 0:
        raise RuleBroken(S_("The amount must be more than zero"))
    check_limit("card", amount)
    async with db.transaction():
        await lock_member(member_id)
        if invoice_id is not None:  # as the other rails: only this member's open invoice
            inv = await Invoice.select(Invoice.member, Invoice.status).where(Invoice.id == invoice_id).first()
            if not inv or inv["member"] != member_id or inv["status"] not in OPEN_INVOICE:
                raise RuleBroken(S_("That invoice is not open"), field="invoice")
        payment_id, created = await state.open_payment(
            {"member": member_id, "invoice": invoice_id, "method": "card", "amount": amount.amount,
             "currency": amount.currency, "idempotency_key": idempotency_key, "staff": staff_id,
             "location": location_id, "gateway_request": new_tx_ref(),
             "expires_at": now() + timedelta(minutes=get_settings().card_checkout_minutes)},
            reason="Card checkout requested", staff_id=staff_id)
        if not created:
            return Recorded(await Payment.select().where(Payment.id == payment_id).first(), False), None
    payment = await Payment.select().where(Payment.id == payment_id).first()
    member = await Member.select().where(Member.id == member_id).first()
    settings = get_settings()
    own = client is None
    client = client or FlutterwaveClient(settings)
    try:
        link = await client.create_payment(
            payment["gateway_request"], amount, redirect_url,
            {"email": member["email"] or f"{member['member_number'].lower()}@members.invalid",
             "phonenumber": member["phone"], "name": f"{member['first_name']} {member['last_name']}"},
            settings.gym_name, f"Membership payment {member['member_number']}", meta={"payment": payment_id})
    except Exception as e:
        async with db.transaction():
            await state.transition(payment_id, state.FAILED, reason=f"Card checkout could not start: {e}"[:300])
        raise RuleBroken(S_("The card payment page could not be opened; try again in a moment")) from e
    finally:
        if own:
            await client.aclose()
    async with db.transaction():
        await state.transition(payment_id, state.PROCESSING, reason="Sent to Flutterwave's card page")
    return Recorded(await Payment.select().where(Payment.id == payment_id).first(), True), link


async def apply_verified(payment: dict, verified, *, source: str) -> tuple[str, str]:
    """Credit what Flutterwave confirms (caller holds the transaction). Idempotent."""
    await lock_member(payment["member"])
    current = await state.lock(payment["id"])
    if current["status"] in (state.COMPLETED, state.PARTIALLY_REFUNDED, state.REFUNDED):
        return "duplicate", "payment already completed"
    if verified.tx_ref != current["gateway_request"]:
        # Another payment's transaction (a hand-made return URL names someone else's): it says
        # nothing about this payment, which is left as it was.
        return "rejected", f"Flutterwave transaction {verified.id} is {verified.tx_ref!r}, not this payment's"
    if verified.status not in ("successful", "failed", "cancelled"):
        # Pending (or anything not final) is not failed: the row stays unprocessed, so the
        # sweeper and any repeat of this callback verify it again.
        return "stored", f"Flutterwave says {verified.status!r}: verified again later"
    asked = Money(current["amount"], current["currency"])
    verdict = check_verified(verified, current["gateway_request"], asked)
    if not verified.successful:
        new = state.CANCELLED if verified.status == "cancelled" else state.FAILED
        if current["status"] in (state.PENDING, state.PROCESSING):
            await state.transition(current["id"], new, reason=f"Card payment {verified.status}", gateway_event=source)
            return "applied", f"card payment {verified.status}"
        return "duplicate", f"payment already {current['status']}"
    if not verdict.ok:
        await alert("card_not_credited", f"Card payment {current['gateway_request']} not credited: "
                    f"{'; '.join(verdict.problems)}", payment_id=current["id"])
        if current["status"] in (state.PENDING, state.PROCESSING):
            await state.transition(current["id"], state.FAILED, gateway_event=source,
                                   reason="Flutterwave's confirmation does not match this payment: " + "; ".join(verdict.problems))
        return "applied", "not credited: " + "; ".join(verdict.problems)
    received = verified.amount if verified.amount.currency == asked.currency else asked
    await complete_payment(current["id"], reason="Card payment confirmed by Flutterwave", gateway_event=source,
                           amount=received, reference=f"FLW {verified.id}")
    fee = verified.app_fee
    if fee.amount > 0 and fee.currency == received.currency:
        # Flutterwave keeps its fee: card money held is what it settles to us (the close shows it net).
        await ledger.post("gateway_fee", [debit("gateway_fees", fee), credit("card", fee, location=current["location"])],
                          memo=f"Flutterwave fee on {current['gateway_request']}", payment_id=current["id"],
                          gateway_event=source)
    # More or less than asked is credited as received (more is kept as the member's credit), and
    # flagged for staff either way, as M-Pesa's are.
    flag = "" if verdict.full and not verdict.excess else "amount_mismatch"
    if flag:
        await alert("amount_mismatch", f"Card {current['gateway_request']}: asked {asked}, Flutterwave confirms "
                    f"{received}; {received} credited", payment_id=current["id"])
    await Payment.update({Payment.gateway_ref: str(verified.id), Payment.reference: f"FLW {verified.id}",
                          Payment.card_brand: (verified.card_brand or "")[:20], Payment.card_last4: (verified.card_last4 or "")[-4:],
                          Payment.flag: flag}).where(Payment.id == current["id"])
    return "applied", f"completed {received}" + (f" ({'more' if verdict.excess else 'less'} than asked)" if flag else "")


async def _verify_and_apply(row: dict, transaction_id, tx_ref: str | None) -> tuple[str, str]:
    payment = None
    if tx_ref:
        payment = await Payment.select().where((Payment.method == "card") & (Payment.gateway_request == tx_ref)).first()
    if payment is None:
        return "unmatched", f"no card payment with tx_ref {tx_ref}"

    if payment["status"] in (state.COMPLETED, state.PARTIALLY_REFUNDED, state.REFUNDED):
        outcome = ("duplicate", "payment already completed")
    else:
        async with FlutterwaveClient(get_settings()) as client:
            verified = await client.verify(transaction_id) if transaction_id else await client.verify_by_reference(tx_ref)
        if verified is None:
            if row["kind"] == "redirect":  # the member came back without paying: the card check decides
                return "duplicate", "Flutterwave has no transaction for it: left to the card check"
            return "stored", "Flutterwave has no transaction for it yet"
        outcome = await apply_verified(payment, verified, source=f"callback:{row['id']}")
    # Linked last: the foreign key would take a share lock on the payment row before the member
    # lock, the opposite order to apply_verified's, and two callbacks could deadlock.
    await GatewayCallback.update({GatewayCallback.payment: payment["id"]}).where(GatewayCallback.id == row["id"])
    return outcome


async def process_redirect(row: dict, params: dict[str, str]) -> tuple[str, str]:
    tx_ref, transaction_id = params.get("tx_ref"), params.get("transaction_id")
    if not tx_ref:
        return "malformed", "redirect without tx_ref"
    # The redirect's words (status=cancelled, successful…) are anyone's to type: only what
    # Flutterwave's verify answers moves a payment; with no transaction id, verify by reference.
    if transaction_id and not transaction_id.isdigit():
        return "malformed", "transaction_id is not a number"
    return await _verify_and_apply(row, int(transaction_id) if transaction_id else None, tx_ref)


async def process_webhook(row: dict, claim) -> tuple[str, str]:
    if claim.shape == "refund":
        return "duplicate", "refund notification (refunds are recorded when we ask for them)"
    return await _verify_and_apply(row, claim.transaction_id, claim.tx_ref)


# --- the card check: a checkout nobody came back from ---------------------------------------------

async def check_card_payment(payment_id: int, *, staff_id: int | None = None) -> str:
    """Ask Flutterwave (by reference) what became of a card payment still in flight, and settle
    it: credited, failed or cancelled as verify says; expired once past its checkout time with no
    transaction at Flutterwave; left as it is while Flutterwave says pending. Run by the card
    sweep on a schedule and by staff from the payment page; repeating it changes nothing."""
    payment = await Payment.select().where((Payment.id == payment_id) & (Payment.method == "card")).first()
    if payment is None or payment["status"] not in (state.PENDING, state.PROCESSING):
        return "nothing to do"
    async with FlutterwaveClient(get_settings()) as client:
        verified = await client.verify_by_reference(payment["gateway_request"])
    source = "card check" + (" by staff" if staff_id else "")
    async with db.transaction():
        if verified is not None:
            outcome, note = await apply_verified(payment, verified, source=source)
            if outcome != "stored":
                return note
        current = await state.lock(payment_id)
        if current["status"] not in (state.PENDING, state.PROCESSING):
            return "nothing to do"
        if current["expires_at"] and current["expires_at"] <= now():
            # Nothing stays in flight past its checkout time, not even a charge Flutterwave still
            # calls pending: its settled webhook (or the nightly card pass) credits it as a late success.
            reason = ("Flutterwave still says pending at the end of the checkout time" if verified is not None
                      else "No card payment at Flutterwave by the end of the checkout time")
            await state.transition(payment_id, state.EXPIRED, staff_id=staff_id, gateway_event=source, reason=reason)
            return "expired"
    return "pending at Flutterwave" if verified is not None else "no transaction at Flutterwave yet"


async def card_payments_to_check(limit: int = 100) -> list[int]:
    """Card payments in flight for more than five minutes (the member had time to pay), the
    longest unchecked first; each check moves the payment's next_check_at on, never past its
    expiry (so the sweep after it settles or expires the payment)."""
    rows = await Payment.raw(
        "UPDATE payment SET next_check_at = least(now() + interval '5 minutes', expires_at) WHERE id IN ("
        " SELECT id FROM payment WHERE method = 'card' AND status IN ('pending', 'processing')"
        " AND created_at < now() - interval '5 minutes' AND (next_check_at IS NULL OR next_check_at <= now())"
        " ORDER BY next_check_at NULLS FIRST, id LIMIT {} FOR UPDATE SKIP LOCKED) RETURNING id", limit)
    return [r["id"] for r in rows]


async def cancel_card_payment(payment_id: int, staff_id: int) -> None:
    """Staff give up on a card payment still in flight (the member left the desk). Money that
    Flutterwave confirms later is still credited, as a late success."""
    async with db.transaction():
        current = await state.lock(payment_id)
        if current is None or current["method"] != "card":
            raise RuleBroken(S_("Not a card payment"))
        if current["status"] not in (state.PENDING, state.PROCESSING):
            raise RuleBroken(f"This payment is already {current['status']}")
        await state.transition(payment_id, state.CANCELLED, staff_id=staff_id, reason="Cancelled by staff")
