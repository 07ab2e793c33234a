"""Refunding an M-Pesa payment: a Daraja reversal, whose result arrives later as a callback.

    request_reversal  -> GatewayRequest(requested), audit       (manager, with a reason)
    send_reversal     -> Daraja accepts it; request sent, with its conversation ids (worker)
    QueueTimeOut      -> timed_out: Daraja stopped waiting, which is no answer (M-Pesa may still
                         reverse it); staff are told it is unconfirmed, its Result is still taken
    Result callback   -> succeeded (or "already reversed"): the refund is posted (ledger, credit
                         note, status refunded); failed: staff are alerted, the payment stays completed

Daraja reverses the whole transaction, so an M-Pesa refund is always of the full amount. A new
reversal may be asked while one is timed out (M-Pesa answers "already reversed" if the first went
through); however many of them say the money went back, the refund is posted once.
"""

from __future__ import annotations

import logging

from portal import audit
from portal.billing.invoices import lock_member
from portal.callbacks.store import alert, waiting
from portal.gateways.callback_urls import result_url, timeout_url
from portal.gateways.daraja import DarajaClient, DarajaFieldError
from portal.gateways.http import GatewayError
from portal.lib import db, queue
from portal.lib.clock import now
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from portal.lib.money import Money
from portal.payments import state
from portal.payments.service import refund_payment
from portal.settings import get_settings
from tables.billing import Payment
from tables.gateway import GatewayRequest

log = logging.getLogger(__name__)


# A reversal in one of these stands in the way of another: asked, under way, or done.
STANDING = ["requested", "sent", "succeeded"]
# Still waiting for Daraja's Result: sent, or timed out by Daraja (which is no answer yet).
AWAITING_RESULT = ("sent", "timed_out")
SUCCESS_CODES = ("0", "00000000")
# "Already reversed": the money went back before, by an earlier request whose Result is late or
# lost (or outside the portal). The refund is what the books are missing, so it is posted too.
ALREADY_REVERSED = "R000001"


async def _reversals(payment_id: int, statuses: list[str]) -> list[dict]:
    return await GatewayRequest.select().where(
        (GatewayRequest.payment == payment_id) & (GatewayRequest.kind == "reversal")
        & GatewayRequest.status.is_in(statuses)).order_by(GatewayRequest.id, ascending=False)


async def open_reversal(payment_id: int) -> dict | None:
    """The payment's standing reversal (a succeeded one first: the money went back)."""
    rows = await _reversals(payment_id, STANDING)
    return min(rows, key=lambda r: r["status"] != "succeeded", default=None)


async def reversal_state(payment_id: int) -> dict:
    """What the payment page shows: the standing reversal, and those Daraja timed out while the
    money is not known to be back (M-Pesa may still do them; their Result is still taken)."""
    standing = await open_reversal(payment_id)
    done = standing is not None and standing["status"] == "succeeded"
    return {"reversal": standing, "unconfirmed_reversals": [] if done else await _reversals(payment_id, ["timed_out"])}


async def request_reversal(payment_id: int, reason: str, staff_id: int) -> dict:
    """Ask Daraja to reverse a payment (payments.refunds.start_refund has checked the reason)."""
    async with db.transaction():
        payment = await state.lock(payment_id)
        if payment["method"] != "mpesa":
            raise NotFound("M-Pesa payment")
        # Asked again (the button pressed twice, the form sent again) while it is under way or once
        # it has succeeded: the same reversal, never a second one and never an error for the repeat.
        existing = await open_reversal(payment_id)
        if existing:
            return existing
        if payment["status"] != state.COMPLETED or payment["refunded"] > 0:
            raise RuleBroken(S_("Only a completed, unrefunded M-Pesa payment can be reversed"))
        if not payment["reference"]:
            raise RuleBroken(S_("This payment has no M-Pesa code to reverse; refund it by hand"))
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
        async with db.transaction():  # whoever sees the reversal failed sees its alert too
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
    if req["status"] not in AWAITING_RESULT:
        return req, code, desc, ("duplicate", f"request {req['id']} already {req['status']}")
    return req, code, desc, None


async def process_result(row: dict, data) -> tuple[str, str]:
    req, code, desc, done = await _open_request(row, data)
    if done:
        return done
    originator = req["originator_conversation_id"]
    if code in SUCCESS_CODES or code == ALREADY_REVERSED:
        return await _reversed(req, code, desc)
    await _finish(req["id"], "failed", code, desc)
    await alert("reversal_failed", f"M-Pesa reversal refused ({code}): {desc}", payment_id=req["payment"])
    return "applied", f"reversal {originator} failed: {code} {desc}"


async def _reversed(req: dict, code: str, desc: str) -> tuple[str, str]:
    """M-Pesa returned the money: the refund is posted, unless another reversal of the payment
    already posted it (the payment locked first, so two Results at once cannot both post it)."""
    originator = req["originator_conversation_id"]
    member = (await Payment.select(Payment.member).where(Payment.id == req["payment"]).first())["member"]
    await lock_member(member)
    payment = await state.lock(req["payment"])
    await _finish(req["id"], "succeeded", code, desc)
    if payment["refunded"] > 0:
        if code in SUCCESS_CODES and await _reversed_before(req):
            await alert("reversal_twice", f"M-Pesa says reversal {originator} of {payment['reference']} succeeded, "
                        "but another reversal of this payment had succeeded already: the member may have been paid "
                        "back twice. Check the M-Pesa statement.", payment_id=req["payment"])
        return "duplicate", f"reversal {originator}: {code}; payment {req['payment']} was already refunded"
    await refund_payment(req["payment"], Money(payment["amount"], payment["currency"]),
                         f"M-Pesa reversal: {req['reason']}", req["staff"])
    return "applied", f"reversal {originator} succeeded"


async def _reversed_before(req: dict) -> bool:
    """Another reversal of the same payment that M-Pesa carried out (not one it found done)."""
    return await GatewayRequest.exists().where(
        (GatewayRequest.payment == req["payment"]) & (GatewayRequest.kind == "reversal")
        & (GatewayRequest.id != req["id"]) & (GatewayRequest.status == "succeeded")
        & GatewayRequest.result_code.is_in(list(SUCCESS_CODES)))


async def process_timeout(row: dict, data) -> tuple[str, str]:
    """Daraja stopped waiting for M-Pesa: not an answer. The request stays open for its Result."""
    req, code, desc, done = await _open_request(row, data)
    if done:
        return done
    if req["status"] == "timed_out":
        return "duplicate", f"request {req['id']} already timed out"
    await GatewayRequest.update({GatewayRequest.status: "timed_out", GatewayRequest.result_code: code,
                                 GatewayRequest.result_desc: (desc or "Daraja timed out the request")[:2000]}).where(
        GatewayRequest.id == req["id"])
    reference = (await Payment.select(Payment.reference).where(Payment.id == req["payment"]).first())["reference"]
    await alert("reversal_unconfirmed", f"M-Pesa did not confirm the reversal of {reference} in time ({desc}). It may "
                "still go through: if M-Pesa's result comes, the refund is posted by itself. Reversing it again is "
                "safe: if M-Pesa did reverse it, it answers \"already reversed\" and the refund is posted once.",
                payment_id=req["payment"])
    return "applied", "timed out at Daraja: waiting for the Result"


async def request_reversal_job(request_id: int) -> None:
    await queue.enqueue("send_reversal", key=f"reversal:{request_id}", timeout=60, retries=4, request_id=request_id)
