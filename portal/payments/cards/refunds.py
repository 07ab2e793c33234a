"""Refunding a card payment through Flutterwave's refund API (full or part, manager, with a reason).

    request_card_refund -> GatewayRequest(requested), audit                   (web, manager)
    send_card_refund    -> claimed (`sending`), POST /transactions/{id}/refund; request `sent`
                           with Flutterwave's refund id, then, in one transaction, the refund is posted (ledger,
                           credit note, payment refunded / partially_refunded) and the request
                           `succeeded`                                          (worker)

Flutterwave takes a refund from the available balance when it accepts it, so an accepted refund
is posted at once (its own status, e.g. `completed` or `pending`, is kept on the request). The
refund API has no idempotency key: a request is sent at most once (claimed first), and a request
whose answer never came (a time-out, or a worker that died while `sending`) is not retried
blindly but failed with an alert to check the Flutterwave dashboard.
"""

from __future__ import annotations

from decimal import Decimal

from portal import audit
from portal.callbacks.store import alert
from portal.gateways.flutterwave import FlutterwaveClient
from portal.gateways.http import GatewayError
from portal.lib import db, queue
from portal.lib.clock import now
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from portal.lib.money import Money
from portal.payments import state
from portal.payments.service import refund_payment, refundable_problem
from portal.settings import get_settings
from tables.billing import Payment
from tables.gateway import GatewayRequest

OPEN = ("requested", "sending", "sent")
NO_ANSWER = "Flutterwave did not answer: check its dashboard before refunding again"


async def pending_refunds(payment_id: int) -> Decimal:
    rows = await GatewayRequest.select(GatewayRequest.amount).where(
        (GatewayRequest.payment == payment_id) & (GatewayRequest.kind == "refund") & GatewayRequest.status.is_in(OPEN))
    return sum((Decimal(r["amount"]) for r in rows), Decimal("0"))


async def refunds_of(payment_id: int) -> list[dict]:
    return await GatewayRequest.select().where(
        (GatewayRequest.payment == payment_id) & (GatewayRequest.kind == "refund")).order_by(GatewayRequest.id)


async def request_card_refund(payment_id: int, amount: Money, reason: str, staff_id: int) -> dict:
    """Ask for a card refund (payments.refunds.start_refund has checked the reason)."""
    async with db.transaction():
        payment = await state.lock(payment_id)
        if payment is None or payment["method"] != "card":
            raise NotFound("card payment")
        if payment["status"] not in (state.COMPLETED, state.PARTIALLY_REFUNDED):
            raise RuleBroken(S_("Only a completed card payment can be refunded"))
        if not (payment["gateway_ref"] or "").isdigit():
            raise RuleBroken(S_("This payment has no Flutterwave transaction id; refund it from the Flutterwave dashboard"))
        refundable = Money(payment["amount"] - payment["refunded"] - await pending_refunds(payment_id),
                           payment["currency"])
        if problem := refundable_problem(amount, refundable):
            raise RuleBroken(f"{problem} (refunds already asked for count)", field="amount")
        row = (await GatewayRequest.insert(GatewayRequest(
            gateway="flutterwave", kind="refund", payment=payment_id, amount=str(amount.amount), reason=reason,
            staff=staff_id)).returning(*GatewayRequest.all_columns()))[0]
        await audit.record("payment.card_refund_requested", "payment", payment_id, staff_id=staff_id, reason=reason,
                           details={"request": row["id"], "amount": str(amount.amount),
                                    "flutterwave_transaction": payment["gateway_ref"]})
    return row


async def send_card_refund(request_id: int, client=None) -> str:
    req = await GatewayRequest.select().where(GatewayRequest.id == request_id).first()
    if not req or req["kind"] != "refund" or req["status"] not in OPEN:
        return "nothing to do"
    payment = await Payment.select().where(Payment.id == req["payment"]).first()
    amount = Money(Decimal(req["amount"]), payment["currency"])
    if req["status"] == "requested":
        # Claimed by one sender only: two jobs (or a job and a sweep) never both send it.
        claimed = await GatewayRequest.update({GatewayRequest.status: "sending"}).where(
            (GatewayRequest.id == request_id) & (GatewayRequest.status == "requested")).returning(GatewayRequest.id)
        if not claimed:
            return "nothing to do"
        own = client is None
        client = client or FlutterwaveClient(get_settings())
        try:
            result = await client.refund(payment["gateway_ref"], amount, comments=req["reason"][:200])
        except GatewayError as e:
            if e.retryable and not e.maybe_delivered:
                await GatewayRequest.update({GatewayRequest.status: "requested"}).where(GatewayRequest.id == request_id)
                raise  # it never reached Flutterwave: the job is retried
            refused = e.status is not None and 400 <= e.status < 500  # an answer, not a lost call
            await give_up(request_id, f"Flutterwave refused the refund: {e}" if refused else NO_ANSWER)
            return "failed"
        finally:
            if own:
                await client.aclose()
        # Recorded before the books move, so a crash from here on never sends the refund twice.
        await GatewayRequest.update({
            GatewayRequest.status: "sent", GatewayRequest.conversation_id: str(result.id),
            GatewayRequest.result_code: result.status[:20]}).where(GatewayRequest.id == request_id)
    return await post_sent_refund(request_id)


async def give_up(request_id: int, why: str) -> None:
    """Fail an open refund request and alert staff, in one transaction: whoever sees the request
    failed (the refunds page, a test) sees its alert too, and a sender and the sweeper giving up on
    the same request alert once."""
    async with db.transaction():
        failed = await GatewayRequest.update({
            GatewayRequest.status: "failed", GatewayRequest.result_code: "", GatewayRequest.result_desc: why[:2000],
            GatewayRequest.finished_at: now()}).where(
            (GatewayRequest.id == request_id) & GatewayRequest.status.is_in(OPEN)).returning(GatewayRequest.payment)
        if not failed:
            return
        payment_id = failed[0]["payment"]
        receipt = (await Payment.select(Payment.receipt_number).where(Payment.id == payment_id).first())["receipt_number"]
        await alert("refund_failed", f"Card refund of {receipt}: {why}", payment_id=payment_id)


async def post_sent_refund(request_id: int) -> str:
    """Post a refund Flutterwave has accepted, once (the request row is the lock)."""
    async with db.transaction():
        req = await GatewayRequest.select().where(GatewayRequest.id == request_id).lock_rows().first()
        if req["status"] != "sent":
            return req["status"]
        payment = await Payment.select(Payment.currency).where(Payment.id == req["payment"]).first()
        note = await refund_payment(req["payment"], Money(Decimal(req["amount"]), payment["currency"]),
                                    f"Card refund: {req['reason']}", req["staff"])
        await _finish(request_id, "succeeded", req["result_code"],
                      f"Flutterwave refund {req['conversation_id']} ({req['result_code']}); credit note {note['number']}")
    return "succeeded"


async def _finish(request_id: int, status: str, code: str, desc: str) -> None:
    await GatewayRequest.update({GatewayRequest.status: status, GatewayRequest.result_code: code[:20],
                                 GatewayRequest.result_desc: desc[:2000], GatewayRequest.finished_at: now()}).where(
        GatewayRequest.id == request_id)


async def request_card_refund_job(request_id: int) -> None:
    await queue.enqueue("send_card_refund", key=f"card-refund:{request_id}", timeout=60, retries=4,
                        request_id=request_id)
