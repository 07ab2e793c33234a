"""Refunding an M-Pesa payment: a Daraja reversal, whose result arrives later as a callback.

    request_reversal  -> GatewayRequest(requested), audit       (manager, with a reason)
    send_reversal     -> Daraja accepts it; request sent, with its conversation ids (worker)
    Result callback   -> succeeded: the refund is posted (ledger, credit note, status refunded)
                         failed: staff are alerted, the payment stays completed
    QueueTimeOut      -> failed (Daraja gave up); staff are alerted

Daraja reverses the whole transaction, so an M-Pesa refund is always of the full amount.
"""

from __future__ import annotations

import logging

from portal import audit
from portal.callbacks.store import alert, waiting
from portal.gateways.callback_urls import result_url, timeout_url
from portal.gateways.daraja import DarajaClient, DarajaFieldError
from portal.gateways.http import GatewayError
from portal.lib import db, queue
from portal.lib.clock import now
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.money import Money
from portal.payments import state
from portal.payments.service import refund_payment
from portal.settings import get_settings
from tables.billing import Payment
from tables.gateway import GatewayRequest

log = logging.getLogger(__name__)


async def open_reversal(payment_id: int) -> dict | None:
    return await GatewayRequest.select().where(
        (GatewayRequest.payment == payment_id) & (GatewayRequest.kind == "reversal")
        & GatewayRequest.status.is_in(["requested", "sent", "succeeded"])).first()


async def request_reversal(payment_id: int, reason: str, staff_id: int) -> dict:
    """Ask Daraja to reverse a payment (payments.refunds.start_refund has checked the reason)."""
    async with db.transaction():
        payment = await state.lock(payment_id)
        if payment["method"] != "mpesa":
            raise NotFound("M-Pesa payment")
        if payment["status"] != state.COMPLETED or payment["refunded"] > 0:
            raise RuleBroken("Only a completed, unrefunded M-Pesa payment can be reversed")
        if not payment["reference"]:
            raise RuleBroken("This payment has no M-Pesa code to reverse; refund it by hand")
        existing = await open_reversal(payment_id)
        if existing:
            return existing
        row = (await GatewayRequest.insert(GatewayRequest(
            gateway="daraja", kind="reversal", payment=payment_id, amount=str(payment["amount"]), reason=reason,
            staff=staff_id)).returning(*GatewayRequest.all_columns()))[0]
        await audit.record("payment.reversal_requested", "payment", payment_id, staff_id=staff_id, reason=reason,
                           details={"request": row["id"], "mpesa_code": payment["reference"]})
    return row


async def send_reversal(request_id: int, client=None) -> str:
    req = await GatewayRequest.select().where(GatewayRequest.id == request_id).first()
    if not req or req["status"] != "requested":
        return "nothing to do"
    payment = await Payment.select().where(Payment.id == req["payment"]).first()
    settings = get_settings()
    own = client is None
    client = client or DarajaClient(settings)
    try:
        accepted = await client.reversal(payment["reference"], Money(payment["amount"], payment["currency"]),
                                         result_url(settings), timeout_url(settings), f"Refund {payment['receipt_number']}")
    except (DarajaFieldError, GatewayError) as e:
        if isinstance(e, GatewayError) and e.retryable and not e.maybe_delivered:
            raise  # nothing reached Daraja: the job is retried
        await _finish(request_id, "failed", "", f"Daraja refused the reversal: {e}")
        await alert("reversal_failed", f"Reversal of {payment['reference']} refused: {e}", payment_id=payment["id"])
        return "failed"
    finally:
        if own:
            await client.aclose()
    await GatewayRequest.update({
        GatewayRequest.status: "sent", GatewayRequest.originator_conversation_id: accepted.originator_conversation_id,
        GatewayRequest.conversation_id: accepted.conversation_id}).where(GatewayRequest.id == request_id)
    return "sent"


async def callbacks_waiting(request_id: int) -> list[int]:
    """Daraja Results that beat our record of the reversal's conversation id: the send job has them
    processed as soon as the id is written, not a sweep later."""
    req = await GatewayRequest.select(GatewayRequest.originator_conversation_id).where(
        GatewayRequest.id == request_id).first()
    if not req or not req["originator_conversation_id"]:
        return []
    return await waiting("daraja", ["result", "timeout"], external_id_prefix=f"{req['originator_conversation_id']}:")


async def _finish(request_id: int, status: str, code: str, desc: str) -> None:
    await GatewayRequest.update({GatewayRequest.status: status, GatewayRequest.result_code: code,
                                 GatewayRequest.result_desc: desc[:2000], GatewayRequest.finished_at: now()}).where(
        GatewayRequest.id == request_id)


def parse_result(data) -> tuple[str, str, str]:
    """(OriginatorConversationID, ResultCode as text, ResultDesc) of an async Result callback."""
    try:
        result = data["Result"]
        originator = result["OriginatorConversationID"]
        code = result["ResultCode"]
    except (KeyError, TypeError):
        raise ValueError("not a Daraja Result (Result.OriginatorConversationID/ResultCode missing)") from None
    if not isinstance(originator, str) or not originator:
        raise ValueError("OriginatorConversationID is not a string")
    return originator, str(code).strip(), str(result.get("ResultDesc", ""))


async def _request_for(originator: str) -> dict | None:
    return await GatewayRequest.select().where(GatewayRequest.originator_conversation_id == originator).lock_rows().first()


async def _open_request(row: dict, data) -> tuple[dict | None, str, str, tuple[str, str] | None]:
    """(request, code, description, or the outcome to return at once) for a Result/time-out."""
    try:
        originator, code, desc = parse_result(data)
    except ValueError as e:
        return None, "", "", ("malformed", str(e))
    req = await _request_for(originator)
    if req is None:
        if (now() - row["received_at"]).total_seconds() < 600:
            return None, code, desc, ("stored", f"no request {originator} yet")  # it beat our own record
        return None, code, desc, ("unmatched", f"no request with OriginatorConversationID {originator}")
    if req["status"] in ("succeeded", "failed"):
        return req, code, desc, ("duplicate", f"request {req['id']} already {req['status']}")
    return req, code, desc, None


async def process_result(row: dict, data) -> tuple[str, str]:
    req, code, desc, done = await _open_request(row, data)
    if done:
        return done
    originator = req["originator_conversation_id"]
    if code in ("0", "00000000"):
        payment = await Payment.select(Payment.amount, Payment.currency).where(Payment.id == req["payment"]).first()
        await refund_payment(req["payment"], Money(payment["amount"], payment["currency"]),
                             f"M-Pesa reversal: {req['reason']}", req["staff"])
        await _finish(req["id"], "succeeded", code, desc)
        return "applied", f"reversal {originator} succeeded"
    await _finish(req["id"], "failed", code, desc)
    await alert("reversal_failed", f"M-Pesa reversal refused ({code}): {desc}", payment_id=req["payment"])
    return "applied", f"reversal {originator} failed: {code} {desc}"


async def process_timeout(row: dict, data) -> tuple[str, str]:
    req, code, desc, done = await _open_request(row, data)
    if done:
        return done
    await _finish(req["id"], "failed", code, desc or "Daraja timed out the request")
    await alert("reversal_failed", f"M-Pesa reversal timed out at Daraja: {desc}", payment_id=req["payment"])
    return "applied", "timed out"


async def request_reversal_job(request_id: int) -> None:
    await queue.enqueue("send_reversal", key=f"reversal:{request_id}", timeout=60, retries=4, request_id=request_id)
