"""Quiet STK prompts: no callback came and STK Query cannot settle them, so Transaction Status does.

    check_stk finds a prompt past its time, STK Query still "being processed" (or failing)
        -> ask_status(): a GatewayRequest(kind "status") once per prompt, Daraja's Transaction
           Status by the push's MerchantRequestID; the prompt stays in flight meanwhile
    Result callback (stored raw first, like every callback; portal.callbacks.dispatch routes
    Results of status requests here, reversals' to portal.payments.mpesa.reversal)
        -> Completed: apply_stk_result with the receipt and amount M-Pesa reports: credited once
           (a late STK callback, a repeated Result, the Paybill copy then find it done)
        -> a prompt outcome (1032 cancelled, 1037 no answer, ...): the prompt ends as the STK
           callback would have ended it
        -> R000002 (M-Pesa has no such transaction): the prompt expires, nothing was paid
        -> anything else (the query itself refused: initiator, operator...): staff are alerted,
           the prompt expires at the next sweep as it did before Transaction Status
    QueueTimeOut -> timed_out: Daraja gave up waiting, its Result is still taken
    No Result within STATUS_WAIT -> the prompt expires as before (a late success still credits).

Every money movement goes through apply_stk_result (member lock, payment lock, state machine), so a
Result and a late STK callback at the same moment credit once.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from portal.callbacks.store import alert, waiting
from portal.gateways.callback_urls import result_url, timeout_url
from portal.gateways.daraja import DarajaClient, DarajaFieldError, transaction_status_of_prompt
from portal.gateways.http import GatewayError
from portal.lib import db
from portal.lib.clock import now
from portal.payments import state
from portal.payments.mpesa import reversal, stk
from portal.settings import get_settings
from tables.billing import Payment
from tables.gateway import GatewayCallback, GatewayRequest

log = logging.getLogger(__name__)

KIND = "status"
# How long a prompt waits for its Transaction Status Result before it expires as before.
STATUS_WAIT = timedelta(minutes=10)
AWAITING = ("requested", "sending", "sent", "timed_out")
NOT_FOUND = "R000002"
# Results that say how the prompt itself ended (the STK callback's own codes).
PROMPT_OUTCOMES = frozenset(stk.RESULTS) - {"2001"}  # 2001 here: the initiator is invalid, not a PIN


async def status_request(payment_id: int) -> dict | None:
    return await GatewayRequest.select().where(
        (GatewayRequest.payment == payment_id) & (GatewayRequest.kind == KIND)).order_by(
        GatewayRequest.id, ascending=False).first()


async def ask_status(payment: dict, client=None) -> bool:
    """check_stk's `on_unsettled`: a prompt past its time that STK Query could not settle. True:
    Transaction Status was asked (now or before, and its Result is awaited): keep the prompt in
    flight. False: nothing to wait for (not configured, refused, or no Result in time): expire it."""
    if payment["method"] != "mpesa" or not payment["gateway_ref"] or not payment["gateway_request"]:
        return False
    settings = get_settings()
    if not settings.daraja_initiator or not settings.daraja_security_credential:
        return False
    async with db.transaction():
        await Payment.raw("SELECT pg_advisory_xact_lock(hashtext({}))", f"stk-status:{payment['id']}")
        existing = await status_request(payment["id"])
        if existing is not None:
            return existing["status"] in AWAITING and existing["created_at"] > now() - STATUS_WAIT
        row = (await GatewayRequest.insert(GatewayRequest(
            gateway="daraja", kind=KIND, payment=payment["id"], amount=str(payment["amount"]), status="sending",
            reason=f"Quiet prompt {payment['gateway_ref']}: no callback, STK Query not final",
            created_at=now())).returning(GatewayRequest.id))[0]
    own = client is None
    client = client or DarajaClient(settings)
    try:
        accepted = await transaction_status_of_prompt(client, payment["gateway_request"], result_url(settings),
                                                       timeout_url(settings), "Quiet prompt", occasion(row["id"]))
    except GatewayError as e:
        if e.maybe_delivered:
            # No answer in time (or a broken one): Daraja may have taken the query all the same,
            # and its Result would then come, naming this request by the occasion we sent. The
            # prompt waits for it (STATUS_WAIT) rather than expiring now and calling that Result a
            # duplicate: a prompt M-Pesa says was paid would have been left expired.
            log.warning("Transaction Status of payment %s: no clear answer (%s); waiting for its Result", payment["id"], e)
            return True
        log.warning("Transaction Status of payment %s not asked: %s", payment["id"], e)
        await _finish(row["id"], "failed", "", f"not asked: {e}")
        return False
    except DarajaFieldError as e:
        log.warning("Transaction Status of payment %s not asked: %s", payment["id"], e)
        await _finish(row["id"], "failed", "", f"not asked: {e}")
        return False
    finally:
        if own:
            await client.aclose()
    await GatewayRequest.update({
        GatewayRequest.status: "sent", GatewayRequest.originator_conversation_id: accepted.originator_conversation_id,
        GatewayRequest.conversation_id: accepted.conversation_id}).where(
        (GatewayRequest.id == row["id"]) & (GatewayRequest.status == "sending"))
    return True


OCCASION_PREFIX = "portal-status-"


def occasion(request_id: int) -> str:
    """What the status query carries as its Occasion, and its Result brings back."""
    return f"{OCCASION_PREFIX}{request_id}"


def _occasion_of(data) -> str:
    try:
        items = data["Result"]["ReferenceData"]["ReferenceItem"]
    except (KeyError, TypeError):
        return ""
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, dict) and item.get("Key") == "Occasion" and isinstance(item.get("Value"), str):
            return item["Value"]
    return ""


async def callbacks_waiting(payment_id: int) -> list[int]:
    """Results that beat our record of the status request's ids (the job processes them next)."""
    req = await status_request(payment_id)
    if not req or not req["originator_conversation_id"]:
        return []
    return await waiting("daraja", ["result", "timeout"], external_id_prefix=f"{req['originator_conversation_id']}:")


async def _finish(request_id: int, status: str, code: str, desc: str) -> None:
    await GatewayRequest.update({GatewayRequest.status: status, GatewayRequest.result_code: code,
                                 GatewayRequest.result_desc: desc[:2000], GatewayRequest.finished_at: now()}).where(
        GatewayRequest.id == request_id)


def result_parameters(data) -> dict:
    """ResultParameters.ResultParameter as {Key: Value} (items without a Value left out)."""
    try:
        items = data["Result"]["ResultParameters"]["ResultParameter"]
    except (KeyError, TypeError):
        return {}
    if isinstance(items, dict):
        items = [items]
    return {i["Key"]: i["Value"] for i in items or [] if isinstance(i, dict) and "Key" in i and "Value" in i}


async def _status_request_for(data) -> dict | None:
    """The request a Result answers: by the OriginatorConversationID Daraja gave us, or, when its
    answer never reached us (a time-out on our side), by the occasion we sent, whose request then
    learns the id (a repeat of the Result matches it the usual way)."""
    try:
        originator, _, _ = reversal.parse_result(data)
    except ValueError:
        return None
    found = await GatewayRequest.select(GatewayRequest.id, GatewayRequest.kind).where(
        GatewayRequest.originator_conversation_id == originator).first()
    if found is not None:
        return found
    given = _occasion_of(data)
    named = given.removeprefix(OCCASION_PREFIX)
    if not given.startswith(OCCASION_PREFIX) or not named.isdigit():
        return None
    ours = await GatewayRequest.update({GatewayRequest.originator_conversation_id: originator}).where(
        (GatewayRequest.id == int(named)) & (GatewayRequest.kind == KIND)
        & GatewayRequest.originator_conversation_id.is_null()).returning(GatewayRequest.id, GatewayRequest.kind)
    return ours[0] if ours else None


async def process_result(row: dict, data) -> tuple[str, str]:
    """Daraja's Result callback: a status request's here, anything else the reversal's."""
    found = await _status_request_for(data)
    if found is None or found["kind"] != KIND:
        return await reversal.process_result(row, data)
    originator, code, desc = reversal.parse_result(data)
    req = await GatewayRequest.select().where(GatewayRequest.id == found["id"]).lock_rows().first()
    if req["status"] not in AWAITING:
        return "duplicate", f"status request {req['id']} already answered ({req['status']} {req['result_code']})"
    payment = await Payment.select().where(Payment.id == req["payment"]).first()
    await stk.lock_checkout(payment["gateway_ref"])
    source = f"transaction_status:{originator}"
    if code in reversal.SUCCESS_CODES:
        params = result_parameters(data)
        status = str(params.get("TransactionStatus", "")).strip()
        try:
            amount = Decimal(str(params.get("Amount")))
        except (InvalidOperation, ValueError):
            amount = None
        receipt = str(params.get("ReceiptNo") or "").strip()[:30]
        if status != "Completed" or amount is None or not amount.is_finite() or amount <= 0 or not receipt:
            await _finish(req["id"], "failed", code, f"unreadable: TransactionStatus {status!r}, Amount {amount}")
            await alert("stk_status_unclear", f"M-Pesa's Transaction Status for prompt {payment['gateway_ref']} said "
                        f"{status or 'nothing'} (amount {amount}, receipt {receipt or 'none'}): check the statement",
                        payment_id=payment["id"], callback_id=row["id"])
            return "applied", f"status unclear ({status}); staff alerted"
        await _finish(req["id"], "succeeded", code, desc)
        outcome, note = await stk.apply_stk_result(
            payment, stk.StkOutcome(code="0", description=desc, amount=amount, receipt=receipt), source=source)
        await GatewayCallback.update({GatewayCallback.payment: payment["id"],
                                      GatewayCallback.amount: str(amount)}).where(GatewayCallback.id == row["id"])
        return outcome, f"Transaction Status: {note}"
    if code == NOT_FOUND:
        await _finish(req["id"], "succeeded", code, desc)
        current = await state.lock(payment["id"])
        if current["status"] not in (state.PENDING, state.PROCESSING):
            return "duplicate", f"payment already {current['status']}; M-Pesa has no payment for it"
        await state.transition(payment["id"], state.EXPIRED, gateway_event=source,
                               reason="No payment: M-Pesa has no transaction for this prompt (Transaction Status)",
                               details={"result_code": code, "result_desc": desc}, values={Payment.next_check_at: None})
        return "applied", "expired: M-Pesa has no transaction for this prompt"
    if code in PROMPT_OUTCOMES:
        await _finish(req["id"], "succeeded", code, desc)
        outcome, note = await stk.apply_stk_result(payment, stk.StkOutcome(code=code, description=desc), source=source)
        return outcome, f"Transaction Status: {note}"
    await _finish(req["id"], "failed", code, desc)
    await alert("stk_status_failed", f"Transaction Status for prompt {payment['gateway_ref']} was refused ({code}): "
                f"{desc}. The prompt expires as unanswered; check the M-Pesa statement",
                payment_id=payment["id"], callback_id=row["id"])
    return "applied", f"Transaction Status refused ({code}): {desc}"


async def process_timeout(row: dict, data) -> tuple[str, str]:
    """Daraja's QueueTimeOut: for a status request, no answer yet (its Result is still taken)."""
    found = await _status_request_for(data)
    if found is None or found["kind"] != KIND:
        return await reversal.process_timeout(row, data)
    req = await GatewayRequest.select().where(GatewayRequest.id == found["id"]).lock_rows().first()
    if req["status"] != "sent":
        return "duplicate", f"status request {req['id']} already {req['status']}"
    await GatewayRequest.update({GatewayRequest.status: "timed_out"}).where(GatewayRequest.id == req["id"])
    return "applied", "timed out at Daraja: waiting for the Result"
