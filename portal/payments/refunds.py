"""Giving money back: the one way in for a refund, whatever rail the money came by.

    start_refund -> desk (cash, bank, cheque): posted now, credit note issued   (service.refund_payment)
                 -> mpesa: Daraja reverses the whole payment; posted when its result arrives (mpesa.reversal)
                 -> card:  Flutterwave refunds all or part; posted once it accepts       (cards.refunds)

The rules every refund shares (a reason, a manager) are checked here once; each rail checks only
what is its own (M-Pesa reverses whole payments only, a card needs Flutterwave's transaction id).
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.documents.requests import request_document
from portal.lib import db
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from portal.lib.money import Money
from portal.payments.cards.refunds import request_card_refund, request_card_refund_job
from portal.payments.limits import check_confirmed
from portal.payments.mpesa import reversal
from portal.payments.service import refund_payment, refundable_problem
from tables.billing import Payment


@dataclass(frozen=True)
class RefundStarted:
    rail: str                      # "desk", "mpesa" or "card"
    credit_note: dict | None       # desk: issued now; gateways: issued when the money has gone back
    request: dict | None           # gateways: the request whose result arrives later


def refund_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise RuleBroken(S_("Give a reason for the refund"), field="reason")
    return reason


async def start_refund(payment_id: int, amount: Money | None, reason: str, staff_id: int, *,
                       confirmed: bool = False) -> RefundStarted:
    """Refund `amount` of a payment (None: all that is left) by the rail it came in on. A large
    refund goes ahead only once confirmed (NeedsConfirmation until then)."""
    reason = refund_reason(reason)
    payment = await Payment.select(Payment.method, Payment.amount, Payment.refunded, Payment.currency).where(
        Payment.id == payment_id).first()
    if payment is None:
        raise NotFound("payment")
    left = Money(payment["amount"] - payment["refunded"], payment["currency"])
    if payment["method"] == "mpesa":
        whole = Money(payment["amount"], payment["currency"])
        if amount is not None and amount != whole:
            raise RuleBroken(S_("M-Pesa reverses the whole payment: use Reverse"), field="amount")
        standing = await reversal.open_reversal(payment_id)
        if standing is not None:  # asked again, under way or done: the same reversal, not an error
            return RefundStarted("mpesa", None, standing)
        amount = whole
    amount = left if amount is None else amount
    problem = refundable_problem(amount, left)
    if problem:
        raise problem
    # Asked once the amount is known to be refundable: nobody confirms a refund that cannot be.
    check_confirmed(amount, confirmed)
    if payment["method"] == "mpesa":
        req = await reversal.request_reversal(payment_id, reason, staff_id)
        if req["status"] == "requested":
            # After commit: a caller's transaction (the reconciliation page's) must hold the row first.
            await db.after_commit(lambda: reversal.request_reversal_job(req["id"]))
        return RefundStarted("mpesa", None, req)
    if payment["method"] == "card":
        req = await request_card_refund(payment_id, amount, reason, staff_id)
        await db.after_commit(lambda: request_card_refund_job(req["id"]))
        return RefundStarted("card", None, req)
    note = await refund_payment(payment_id, amount, reason, staff_id)
    await db.after_commit(lambda: request_document("credit_note", f"credit_note:{note['id']}"))
    return RefundStarted("desk", note, None)
