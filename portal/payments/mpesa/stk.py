"""M-Pesa STK Push: ask a phone for money and follow the request until it is final.

    start_stk_push  -> Payment(pending) + job send_stk_push        (request, idempotent by key)
    send_stk_push   -> Daraja; payment processing with its CheckoutRequestID
    STK callback    -> stored raw, then apply_stk_result()         (portal.web.hooks)
    check_stk       -> STK query with back-off until final or expired (a lost callback costs a
                       little time, never the payment)

Every outcome goes through the one state machine; money goes through complete_payment. Amounts
are whole shillings. The money actually received (callback metadata) is what is credited; if it
differs from what was asked, the payment is flagged for staff.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from portal.billing.invoices import lock_member
from portal.callbacks.store import alert, waiting
from portal.documents.requests import forget_receipts, request_receipts
from portal.gateways.callback_urls import stk_callback_url
from portal.gateways.daraja import DarajaClient, DarajaFieldError
from portal.gateways.http import GatewayError
from portal.lib import db, queue
from portal.lib.clock import now
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from portal.lib.money import CENT, LARGEST, Money
from portal.lib.phones import PhoneError, display_phone, safaricom_phone
from portal.payments import state
from portal.payments.limits import check_confirmed, check_limit
from portal.payments.service import Recorded, complete_payment
from portal.settings import get_settings
from tables.billing import Invoice, Payment
from tables.gateway import GatewayCallback
from tables.members import Member
from tables.statuses import IN_FLIGHT_SQL, OPEN_INVOICE

log = logging.getLogger(__name__)

# ResultCode -> (final status, words for the front desk). Anything else: failed + Daraja's text.
RESULTS = {
    "1032": (state.CANCELLED, "Cancelled by the member on the phone"),
    "1037": (state.FAILED, "No answer on the phone in time"),
    "1036": (state.FAILED, "No answer on the phone in time"),
    "2001": (state.FAILED, "Wrong M-Pesa PIN entered"),
    "1": (state.FAILED, "Not enough money in the member's M-Pesa"),
    "1019": (state.EXPIRED, "The M-Pesa request expired"),
    "1001": (state.FAILED, "The phone is busy with another M-Pesa request; try again in a minute"),
    "1025": (state.FAILED, "M-Pesa could not show the prompt; try again"),
    "17": (state.FAILED, "Same amount requested from this phone moments ago; wait 2 minutes"),
}
# A request whose time ran out before its prompt went out (M-Pesa did not take it, or the job
# came too late): the same words whoever finds it first, the send job or the sweeper.
NEVER_SENT = "Not sent: the request expired before the prompt could go out. Nothing reached the phone; retry to ask again"
# Back-off for STK queries while a prompt is in flight (seconds after the push).
CHECK_DELAYS = [15, 25, 40, 60, 90, 120, 180, 300]


@dataclass(frozen=True)
class StkOutcome:
    code: str
    description: str
    amount: Decimal | None = None
    receipt: str = ""
    phone: str = ""


def parse_stk_callback(data) -> tuple[str, StkOutcome]:
    """(CheckoutRequestID, outcome) from a callback body; ValueError for anything else."""
    try:
        cb = data["Body"]["stkCallback"]
        checkout = cb["CheckoutRequestID"]
        code = cb["ResultCode"]
    except (KeyError, TypeError):
        raise ValueError("not an STK callback (Body.stkCallback.CheckoutRequestID/ResultCode missing)") from None
    if not isinstance(checkout, str) or not checkout:
        raise ValueError("CheckoutRequestID is not a string")
    if isinstance(code, bool) or not isinstance(code, (int, str, Decimal)):
        raise ValueError(f"ResultCode has an unexpected type: {type(code).__name__}")
    code = str(int(code)) if isinstance(code, (int, Decimal)) else code.strip()
    desc = str(cb.get("ResultDesc", ""))
    items = {}
    metadata = cb.get("CallbackMetadata") or {}
    for item in (metadata.get("Item") or []) if isinstance(metadata, dict) else []:
        if isinstance(item, dict) and "Name" in item and "Value" in item:
            items[item["Name"]] = item["Value"]
    amount = None
    if code == "0":
        raw_amount = items.get("Amount")
        if isinstance(raw_amount, bool) or not isinstance(raw_amount, (int, Decimal, str)):
            raise ValueError("successful callback without a usable Amount")
        try:
            amount = Decimal(str(raw_amount))
        except ArithmeticError:
            raise ValueError(f"Amount {raw_amount!r} is not a number") from None
        if not amount.is_finite() or amount <= 0:
            raise ValueError(f"Amount {raw_amount!r} is not a positive amount")
        if amount >= LARGEST or amount != amount.quantize(CENT):  # no payment could hold it
            raise ValueError(f"Amount {str(raw_amount)[:30]!r} is not an amount a payment can hold")
    return checkout, StkOutcome(code=code, description=desc, amount=amount,
                                receipt=str(items.get("MpesaReceiptNumber", ""))[:30],
                                phone=str(items.get("PhoneNumber", ""))[:15])


# --- starting a push ----------------------------------------------------------------------------

async def start_stk_push(*, member_id: int, phone: str, amount: Money, idempotency_key: str,
                         invoice_id: int | None = None, staff_id: int | None = None,
                         location_id: int | None = None, confirmed: bool = False) -> Recorded:
    """Record the request; the worker sends it (after commit, so a callback always finds it).
    The amount is checked before the phone: the desk form has always shown an amount problem alone.
    A large amount waits for confirmed=True (NeedsConfirmation until then)."""
    if amount.amount < 1 or not amount.is_whole:
        raise RuleBroken(S_("M-Pesa takes whole shillings (at least 1)"), field="amount")
    check_limit("mpesa", amount)  # Safaricom's cap: a prompt above it can only fail
    try:
        msisdn = safaricom_phone(phone)  # the rule Daraja's client applies again before sending
    except PhoneError as e:
        raise RuleBroken(str(e)[:1].upper() + str(e)[1:], field="phone") from None
    check_confirmed(amount, confirmed)  # after the phone: a form asks for it once all else is right
    settings = get_settings()
    async with db.transaction():
        await lock_member(member_id)
        if invoice_id is not None:
            inv = await Invoice.select(Invoice.member, Invoice.status).where(Invoice.id == invoice_id).first()
            if not inv or inv["member"] != member_id:
                raise RuleBroken(S_("That invoice is not open"), field="invoice")
        payment_id, created = await state.open_payment(
            {"member": member_id, "invoice": invoice_id, "method": "mpesa", "amount": amount.amount,
             "currency": amount.currency, "idempotency_key": idempotency_key, "staff": staff_id,
             "location": location_id, "phone": msisdn,
             "expires_at": now() + timedelta(seconds=settings.stk_timeout_seconds)},
            reason=f"M-Pesa prompt requested for {display_phone(msisdn)}", staff_id=staff_id)
        # After the key (raising rolls the new payment back): the form sent again once its
        # prompt paid the invoice gets that payment back, not "not open".
        if created and invoice_id is not None and inv["status"] not in OPEN_INVOICE:
            raise RuleBroken(S_("That invoice is not open"), field="invoice")
    return Recorded(await Payment.select().where(Payment.id == payment_id).first(), created)


async def send_stk_push(payment_id: int, client=None) -> str:
    """Worker: send the prompt. Called again after a crash, it does nothing twice."""
    payment = await Payment.select().where(Payment.id == payment_id).first()
    if not payment or payment["status"] != state.PENDING or payment["gateway_ref"]:
        return "nothing to do"
    if payment["expires_at"] and payment["expires_at"] <= now():
        # A prompt after its time is one the desk has stopped waiting for: never send it.
        await _expire(payment_id, NEVER_SENT)
        return "expired"
    member = await Member.select(Member.member_number).where(Member.id == payment["member"]).first()
    settings = get_settings()
    own_client = client is None
    client = client or DarajaClient(settings)
    try:
        accepted = await client.stk_push(payment["phone"], Money(payment["amount"], payment["currency"]),
                                         member["member_number"][:12], "Gym payment", stk_callback_url(settings))
    except DarajaFieldError as e:
        await _fail(payment_id, f"M-Pesa refused the request: {e}")
        return "refused"
    except GatewayError as e:
        if e.code and e.status:
            # Daraja answered with its own error: nothing went to the phone. Staff read its words.
            await _fail(payment_id, refusal_words(e))
            return "refused"
        if e.retryable and not e.maybe_delivered:
            raise  # nothing reached the phone: SAQ retries the job
        reason = ("No answer from M-Pesa; the prompt may still reach the phone. Check with the member before retrying"
                  if e.retryable else f"M-Pesa refused the request: {e}")
        await _fail(payment_id, reason)
        return "failed"
    finally:
        if own_client:
            await client.aclose()
    await record_push(payment, accepted.checkout_request_id, accepted.merchant_request_id)
    return "sent"


async def record_push(payment: dict, checkout: str, merchant_request: str) -> None:
    """Daraja accepted the push: the payment is processing under its CheckoutRequestID."""
    async with db.transaction():
        await lock_checkout(checkout)
        await state.transition(payment["id"], state.PROCESSING, reason=f"Prompt sent to {display_phone(payment['phone'])}",
                               gateway_event=f"daraja:{checkout}", values={
                                   Payment.gateway_ref: checkout, Payment.gateway_request: merchant_request,
                                   Payment.next_check_at: now() + timedelta(seconds=CHECK_DELAYS[0])})


def refusal_words(error: GatewayError) -> str:
    """What M-Pesa said when it refused a push, with what the desk can do about it."""
    said = re.split(r"(?:refused|not accepted): ", error.message, maxsplit=1)[-1]
    words = f"M-Pesa refused the request: {said} ({error.code}). Nothing was sent to the phone"
    if "unable to lock" in said.lower():
        words += "; the phone has another M-Pesa request open: wait a minute, then retry"
    return words


async def callbacks_waiting(payment_id: int) -> list[int]:
    """Callbacks for this push that beat our record of its CheckoutRequestID ("callback before
    the push response"): the send job has them processed as soon as the push is recorded."""
    payment = await Payment.select(Payment.gateway_ref).where(Payment.id == payment_id).first()
    if not payment or not payment["gateway_ref"]:
        return []
    return await waiting("daraja", ["stk"], external_id=payment["gateway_ref"])


async def results_without_a_push() -> list[int]:
    """STK results stored and waiting because no payment has their CheckoutRequestID."""
    return await waiting("daraja", ["stk"])


async def _fail(payment_id: int, reason: str) -> None:
    async with db.transaction():
        payment = await state.lock(payment_id)
        if payment["status"] in (state.PENDING, state.PROCESSING):
            await state.transition(payment_id, state.FAILED, reason=reason, locked=payment)


# --- results: callbacks and queries -------------------------------------------------------------

async def lock_checkout(checkout: str) -> None:
    """Serialises recording a push's CheckoutRequestID with acting on a result for it. Without it a
    callback that beats the push's answer can look for the payment before the id is committed and
    for an unanswered attempt after it is, find neither, and list credited money as unmatched.
    Caller holds the transaction."""
    await Payment.raw("SELECT pg_advisory_xact_lock(hashtext({}))", f"stk-checkout:{checkout}")


async def _receipt_already_recorded(receipt: str, payment_id: int) -> dict | None:
    """Daraja sends an STK payment to a Paybill twice: as the STK callback and as a C2B
    confirmation with the same receipt. Whichever comes second finds the first here."""
    if not receipt:
        return None
    await Payment.raw("SELECT pg_advisory_xact_lock(hashtext({}))", f"mpesa-receipt:{receipt}")
    return await Payment.select(Payment.id).where(
        (Payment.method == "mpesa") & (Payment.reference == receipt) & (Payment.id != payment_id)
        & Payment.status.is_in([state.COMPLETED, state.PARTIALLY_REFUNDED, state.REFUNDED])).first()


async def fill_in_code(payment: dict, receipt: str, source: str) -> bool:
    """A payment M-Pesa confirmed without its code (an STK query carries none) gets it from the
    first source that knows it (a later callback, the Paybill copy); its receipts are made again
    with it. Caller holds the transaction and has the payment locked."""
    if not receipt or payment["reference"]:
        return False
    await Payment.update({Payment.reference: receipt}).where(Payment.id == payment["id"])
    await state.record_fact(payment, f"M-Pesa code {receipt} received", gateway_event=source,
                            details={"mpesa_code": receipt})
    await forget_receipts(payment["id"])
    return True


async def apply_stk_result(payment: dict, outcome: StkOutcome, *, source: str, locked: bool = False) -> tuple[str, str]:
    """Apply a final STK result to a payment (caller holds the transaction). Idempotent: a repeat
    finds the payment already in that state and changes nothing; a success is never undone.
    `locked`: the caller locked the member, then the payment, in this transaction and `payment`
    is the row as locked (lock_by_checkout)."""
    payment_id = payment["id"]
    if outcome.code == "0":
        if locked:
            current = payment
        else:
            await lock_member(payment["member"])
            current = await state.lock(payment_id)
        if current["status"] in (state.COMPLETED, state.PARTIALLY_REFUNDED, state.REFUNDED):
            if await fill_in_code(current, outcome.receipt, source):
                return "applied", f"payment already completed; its M-Pesa code {outcome.receipt} filled in"
            return "duplicate", "payment already completed"
        other = await _receipt_already_recorded(outcome.receipt, payment_id)
        if other:
            # The money is already in, through the Paybill notification. Close the request if it
            # is still open; a request already given up on stays as it is (the money is counted).
            if current["status"] in (state.PENDING, state.PROCESSING):
                await state.transition(payment_id, state.CANCELLED, gateway_event=source, locked=current,
                                       reason=f"Paid: already recorded from the Paybill notification {outcome.receipt}")
            return "duplicate", f"receipt {outcome.receipt} already recorded as payment {other['id']}"
        asked = Money(current["amount"], current["currency"])
        received = Money(outcome.amount, current["currency"]) if outcome.amount is not None else asked
        late = current["status"] in state.LATE_SUCCESS_FROM
        flags = (["amount_mismatch"] if received != asked else []) + (["late_success"] if late else [])
        # The flags and the end of the checks are written with the completion (one write).
        await complete_payment(payment_id, reason="M-Pesa payment confirmed", gateway_event=source, amount=received,
                               reference=outcome.receipt or None, locked=current,
                               values={Payment.flag: ",".join(flags), Payment.next_check_at: None})
        if received != asked:
            await alert("amount_mismatch", f"M-Pesa {outcome.receipt}: asked {asked}, received {received}; "
                        f"{received} credited", payment_id=payment_id)
        if late:
            await alert("late_success", f"M-Pesa {outcome.receipt}: {received} arrived after the request was "
                        f"marked {current['status']}; it has been credited", payment_id=payment_id)
        return "applied", f"completed {received}" + (f" ({', '.join(flags)})" if flags else "")
    new, words = RESULTS.get(outcome.code, (state.FAILED, outcome.description or f"M-Pesa result {outcome.code}"))
    current = payment if locked else await state.lock(payment_id)
    if current["status"] not in (state.PENDING, state.PROCESSING):
        return "duplicate", f"payment already {current['status']}; result {outcome.code} changes nothing"
    await state.transition(payment_id, new, reason=words, gateway_event=source,
                           details={"result_code": outcome.code, "result_desc": outcome.description},
                           values={Payment.next_check_at: None}, locked=current)
    return "applied", f"{new}: {words}"


# The member's lock, then the payment's, in one statement: the member is read from the payment
# (unlocked) and locked in the CTE, which is materialised, so it runs before the outer row is
# locked, whatever the plan; the payment row is locked last and, if it changed while this waited,
# read again as committed (as FOR UPDATE always does). The lock order is apply_stk_result's.
LOCK_BY_CHECKOUT = """
WITH member AS MATERIALIZED (
    SELECT m.id FROM member m
    WHERE m.id = (SELECT member FROM payment WHERE method = 'mpesa' AND gateway_ref = {} LIMIT 1)
    FOR UPDATE
)
SELECT p.* FROM payment p JOIN member ON member.id = p.member
WHERE p.method = 'mpesa' AND p.gateway_ref = {}
FOR UPDATE OF p
"""


async def lock_by_checkout(checkout: str) -> dict | None:
    """The payment with this CheckoutRequestID, its member and it locked (in that order); None
    when there is none (or it has no member). Caller holds the transaction and lock_checkout."""
    rows = await Payment.raw(LOCK_BY_CHECKOUT, checkout, checkout)
    return rows[0] if rows else None


async def process_stk_callback(row: dict, data) -> tuple:
    try:
        checkout, outcome = parse_stk_callback(data)
    except ValueError as e:
        return "malformed", str(e)
    await lock_checkout(checkout)
    payment = await lock_by_checkout(checkout)
    locked = payment is not None
    if payment is None:
        payment = await Payment.select().where((Payment.method == "mpesa") & (Payment.gateway_ref == checkout)).first()
    if payment is None:
        placed = await _place_unknown_result(row, checkout, outcome)
        if isinstance(placed, tuple):
            return placed
        payment = placed
    result = await apply_stk_result(payment, outcome, source=f"callback:{row['id']}", locked=locked)
    # Linked after the money moved (written with the outcome by dispatch.process): the foreign key
    # takes a share lock on the payment row, which before the member lock would invert
    # apply_stk_result's lock order (deadlock).
    return (*result, {"payment": payment["id"], "amount": str(outcome.amount or "")})


# A prompt's money can come in this long after the request was made, though Daraja's answer to
# the push itself never reached us (it came after our time-out): the prompt lives ~1 minute on
# the phone, plus Daraja's own delays.
UNANSWERED_PUSH_WINDOW = timedelta(minutes=15)
# How long a result may wait for our record of its push before it is placed without it.
OWN_RECORD_WAIT_SECONDS = 600


async def _place_unknown_result(row: dict, checkout: str, outcome: StkOutcome) -> dict | tuple[str, str]:
    """A result for a CheckoutRequestID the portal never recorded: Daraja answered the push after
    our time-out (the prompt still reached the phone), or the answer is still on its way. Money is
    tied to the attempt it most likely came from (the one request for that phone and amount whose
    push went unanswered), else put in the Unmatched queue at once, with everything known.
    Returns the payment to apply the result to, or (outcome, note)."""
    age = (now() - row["received_at"]).total_seconds()
    if outcome.code != "0" or not outcome.phone:
        # No money moved (or nothing to place it by): wait for our record of the push, then let go.
        if age < OWN_RECORD_WAIT_SECONDS:
            return "stored", f"no payment with CheckoutRequestID {checkout} yet"
        return "unmatched", f"no payment with CheckoutRequestID {checkout} (result {outcome.code}, no money)"
    attempts = await Payment.select(Payment.id, Payment.member, Payment.status).where(
        (Payment.method == "mpesa") & Payment.gateway_ref.is_null() & (Payment.phone == outcome.phone)
        & (Payment.amount == outcome.amount)
        & Payment.status.is_in([state.PENDING, state.FAILED, state.EXPIRED])
        & (Payment.created_at > row["received_at"] - UNANSWERED_PUSH_WINDOW)).order_by(Payment.id)
    if any(a["status"] == state.PENDING for a in attempts) and age < OWN_RECORD_WAIT_SECONDS:
        # Its push is still being sent: send_stk_push records the id (or gives up) and comes back.
        return "stored", f"no payment with CheckoutRequestID {checkout} yet; its push is still being sent"
    given_up = [a for a in attempts if a["status"] != state.PENDING]
    if len(given_up) == 1:
        await lock_member(given_up[0]["member"])
        current = await state.lock(given_up[0]["id"])
        if current["gateway_ref"] is None:
            await Payment.update({Payment.gateway_ref: checkout}).where(Payment.id == current["id"])
            await state.record_fact(
                current, f"M-Pesa's answer to this prompt came after the portal stopped waiting; its result "
                         f"(CheckoutRequestID {checkout}) was matched by phone and amount",
                gateway_event=f"callback:{row['id']}", details={"matched_by": "phone and amount"})
            return await Payment.select().where(Payment.id == current["id"]).first()
    other = await _receipt_already_recorded(outcome.receipt, 0)
    if other:
        await GatewayCallback.update({GatewayCallback.payment: other["id"]}).where(GatewayCallback.id == row["id"])
        return "duplicate", f"receipt {outcome.receipt} already recorded as payment {other['id']}"
    members = await Member.select(Member.id, Member.member_number, Member.first_name, Member.last_name).where(
        Member.phone == outcome.phone).limit(3)
    await GatewayCallback.update({GatewayCallback.amount: str(outcome.amount),
                                  GatewayCallback.member: members[0]["id"] if len(members) == 1 else None}).where(
        GatewayCallback.id == row["id"])
    whose = ("; the phone is " + ", ".join(f"{m['member_number']} ({m['first_name']} {m['last_name']})" for m in members)
             if members else "; the phone is no member's")
    why = (f"{len(given_up)} unanswered prompts for that phone and amount" if len(given_up) > 1
           else "no prompt of ours for that phone and amount")
    return "unmatched", (f"M-Pesa {outcome.receipt or '(no code)'}: {Money(outcome.amount, get_settings().currency)} "
                         f"paid from {display_phone(outcome.phone)} to a prompt the portal has no record of "
                         f"(CheckoutRequestID {checkout}; {why}){whose}. Nothing credited: match it on Unmatched M-Pesa")


async def check_stk(payment_id: int, client=None, on_unsettled=None) -> str:
    """Worker: ask Daraja how an in-flight prompt went; expire it when its time is up.
    `on_unsettled(payment)`: for a prompt past its time that STK Query could not settle; True
    keeps it in flight ("status": Transaction Status was asked, portal.reconcile.stk_status)."""
    payment = await Payment.select().where(Payment.id == payment_id).first()
    if not payment or payment["status"] not in (state.PENDING, state.PROCESSING):
        return "final"
    if payment["status"] == state.PENDING:
        if payment["expires_at"] and payment["expires_at"] <= now():
            await _expire(payment_id, NEVER_SENT)
            return "expired"
        return "pending"
    own = client is None
    client = client or DarajaClient(get_settings())
    try:
        result = await client.stk_query(payment["gateway_ref"])
    except Exception as e:  # a failed query is just no news; the next check tries again
        log.warning("STK query for payment %s failed: %s", payment_id, e)
        result = None
    finally:
        if own:
            await client.aclose()
    if result is not None and result.status == "final":
        async with db.transaction():
            fresh = await Payment.select().where(Payment.id == payment_id).first()
            outcome, _ = await apply_stk_result(
                fresh, StkOutcome(code=result.result_code or "", description=result.result_desc or ""),
                source=f"stk_query:{payment['gateway_ref']}")
        if outcome == "applied" and result.result_code == "0":
            await request_receipts(payment_id)
        return "final"
    if payment["expires_at"] and payment["expires_at"] <= now():
        if on_unsettled is not None and await on_unsettled(payment):
            return "status"
        await _expire(payment_id, "No answer from the phone in time")
        return "expired"
    checks = payment["checks"] + 1
    delay = CHECK_DELAYS[min(checks, len(CHECK_DELAYS) - 1)]
    await Payment.update({Payment.checks: checks, Payment.next_check_at: now() + timedelta(seconds=delay)}).where(
        Payment.id == payment_id)
    return "pending"


async def _expire(payment_id: int, reason: str) -> None:
    async with db.transaction():
        payment = await state.lock(payment_id)
        if payment["status"] in (state.PENDING, state.PROCESSING):
            await state.transition(payment_id, state.EXPIRED, reason=reason, values={Payment.next_check_at: None},
                                   locked=payment)


async def due_checks(limit: int = 200) -> list[int]:
    rows = await Payment.raw(
        f"SELECT id FROM payment WHERE status IN {IN_FLIGHT_SQL} AND method = 'mpesa' "
        "AND (next_check_at <= now() OR expires_at <= now()) ORDER BY id LIMIT {}", limit)
    return [r["id"] for r in rows]


async def unsent_pushes(limit: int = 100) -> list[int]:
    """Requests still pending without a CheckoutRequestID a while after they were made (their
    send job was lost)."""
    rows = await Payment.raw(
        "SELECT id FROM payment WHERE method = 'mpesa' AND status = 'pending' AND gateway_ref IS NULL "
        "AND created_at < now() - interval '30 seconds' AND expires_at > now() ORDER BY id LIMIT {}", limit)
    return [r["id"] for r in rows]


def retry_key(payment_id: int) -> str:
    """The retry of a failed request has a key derived from it: pressing Retry twice asks once."""
    return "retry-of-" + hashlib.sha256(f"payment:{payment_id}".encode()).hexdigest()[:24]


async def retry_stk_push(payment_id: int, staff_id: int | None) -> Recorded:
    payment = await Payment.select().where(Payment.id == payment_id).first()
    if not payment or payment["method"] != "mpesa":
        raise NotFound("payment")
    if payment["status"] not in (state.FAILED, state.CANCELLED, state.EXPIRED):
        raise RuleBroken(S_("Only a failed, cancelled or expired request can be retried"))
    return await start_stk_push(member_id=payment["member"], phone=payment["phone"],
                                amount=Money(payment["amount"], payment["currency"]), idempotency_key=retry_key(payment_id),
                                invoice_id=payment["invoice"], staff_id=staff_id, location_id=payment["location"],
                                confirmed=True)  # the amount was asked for (and confirmed) before


async def request_stk_push(payment_id: int) -> None:
    await queue.enqueue("send_stk_push", key=f"stk:{payment_id}", timeout=60, retries=4, payment_id=payment_id)


async def schedule_check(payment_id: int, delay: float, attempt: int) -> None:
    await queue.get_queue().enqueue("check_stk", key=f"stk-check:{payment_id}:{attempt}", timeout=60, retries=1,
                                    scheduled=time.time() + delay, payment_id=payment_id, attempt=attempt)
