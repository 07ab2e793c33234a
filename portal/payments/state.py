"""The one payment state machine.

    pending -> processing -> completed | failed | cancelled | expired
    completed -> partially_refunded -> refunded

Every change goes through `transition`, which locks the payment row, checks the move against
TRANSITIONS, writes the new status and records a PaymentEvent (old, new, reason, who or which
gateway event). Asking for the status a payment already has is a no-op, so applying the same
gateway event twice changes nothing. A success that arrives after `failed`/`expired`/`cancelled`
is still money received: it is allowed, and the caller alerts staff.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.lib.clock import now
from tables.billing import Payment, PaymentEvent

PENDING, PROCESSING, COMPLETED = "pending", "processing", "completed"
FAILED, CANCELLED, EXPIRED = "failed", "cancelled", "expired"
REFUNDED, PARTIALLY_REFUNDED = "refunded", "partially_refunded"

TRANSITIONS: dict[str, set[str]] = {
    PENDING: {PROCESSING, COMPLETED, FAILED, CANCELLED, EXPIRED},
    PROCESSING: {COMPLETED, FAILED, CANCELLED, EXPIRED},
    # Late success: the gateway says the money arrived after we had given up on it.
    FAILED: {COMPLETED},
    CANCELLED: {COMPLETED},
    EXPIRED: {COMPLETED},
    COMPLETED: {PARTIALLY_REFUNDED, REFUNDED},
    PARTIALLY_REFUNDED: {PARTIALLY_REFUNDED, REFUNDED},
    REFUNDED: set(),
}
FINAL = {COMPLETED, FAILED, CANCELLED, EXPIRED, REFUNDED, PARTIALLY_REFUNDED}
LATE_SUCCESS_FROM = {FAILED, CANCELLED, EXPIRED}
# Moves that may repeat with new effect (each partial refund is its own event).
REPEATABLE = {(PARTIALLY_REFUNDED, PARTIALLY_REFUNDED)}


class InvalidTransition(ValueError):
    """The payment cannot move from its current status to the one asked for."""


@dataclass(frozen=True)
class Change:
    payment: dict
    old: str
    new: str
    changed: bool

    @property
    def late_success(self) -> bool:
        return self.changed and self.new == COMPLETED and self.old in LATE_SUCCESS_FROM


async def lock(payment_id: int) -> dict:
    row = await Payment.select().where(Payment.id == payment_id).lock_rows().first()
    if row is None:
        raise LookupError(f"payment {payment_id}")
    return row


async def transition(payment_id: int, new: str, *, reason: str, staff_id: int | None = None,
                     gateway_event: str | None = None, details: dict | None = None,
                     values: dict | None = None) -> Change:
    """Move a payment to `new`. Must run inside a transaction (the lock lasts until commit)."""
    payment = await lock(payment_id)
    old = payment["status"]
    if old == new and (old, new) not in REPEATABLE:
        return Change(payment, old, new, changed=False)
    if new not in TRANSITIONS[old]:
        raise InvalidTransition(f"payment {payment_id}: {old} -> {new} is not allowed")
    update = {Payment.status: new, **(values or {})}
    if new == COMPLETED:
        update[Payment.completed_at] = now()
    await Payment.update(update).where(Payment.id == payment_id)
    await PaymentEvent.insert(PaymentEvent(
        payment=payment_id, old_status=old, new_status=new, reason=reason, staff=staff_id,
        gateway_event=gateway_event, details=details or {},
    ))
    payment = await Payment.select().where(Payment.id == payment_id).first()
    return Change(payment, old, new, changed=True)
