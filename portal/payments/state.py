"""The one payment state machine.

    pending -> processing -> completed | failed | cancelled | expired
    completed -> partially_refunded -> refunded

This module is the only writer of payments and their events. A payment is born `pending` by
`open_payment` (once per idempotency key, with its first event); every change after that goes
through `transition`, which locks the payment row, checks the move against TRANSITIONS, writes the
new status and records a PaymentEvent (old, new, reason, who or which gateway event). What a
completed payment settled is recorded once by `record_settlement`, as an event of its own kind
(one exception to both: complete_payment's last statement, the one that takes the receipt number,
writes the payment's number and its settlement event with it, so that the number's lock is held
for that statement only: see portal/payments/service.py). Asking for the status a payment already has is a no-op, so applying the same
gateway event twice changes nothing. A success that arrives after `failed`/`expired`/`cancelled`
is still money received: it is allowed, and the caller alerts staff.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from portal import webhooks
from portal.lib import db
from portal.lib.clock import now
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.money import Money
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


STATUS, SETTLEMENT = "status", "settlement"  # PaymentEvent.kind

# The outbound webhook each new status sends (portal/webhooks.py); cancelled and expired
# prompts are attempts that ended with nothing asked of the payer's money: `payment.failed` too.
WEBHOOK_EVENTS = {COMPLETED: "payment.completed", FAILED: "payment.failed", CANCELLED: "payment.failed",
                  EXPIRED: "payment.failed", REFUNDED: "payment.refunded", PARTIALLY_REFUNDED: "payment.refunded"}

# What a new payment may be opened with (column names go into SQL: only these, never input).
OPENING_COLUMNS = frozenset({"member", "invoice", "method", "amount", "currency", "reference", "idempotency_key",
                             "staff", "location", "note", "phone", "expires_at", "gateway_ref", "gateway_request"})


# What a payment is: the same idempotency key with any of these different is another payment, not
# a repeat (a form sent again after Back and changed). Gateways' keys are their own transaction
# ids, whose matching may legitimately differ between deliveries: they do not ask for this check.
WHAT_WAS_ASKED = ("member", "invoice", "method", "amount", "currency", "reference", "phone")


class KeyReused(RuleBroken):
    """The idempotency key already recorded a different payment: nothing new was recorded."""

    def __init__(self, earlier: dict):
        amount = Money(earlier["amount"], earlier["currency"]).format()
        what = earlier["receipt_number"] or f"payment #{earlier['id']}"
        super().__init__(f"This form had already been sent: it recorded {amount} ({what}). Nothing new was "
                         "recorded. Check the details below and send them again to record another payment.")
        self.earlier = earlier


class InvalidTransition(ValueError):
    """The payment cannot move from its current status to the one asked for."""


@dataclass(frozen=True)
class Change:
    payment: dict
    old: str
    new: str
    changed: bool
    event: int | None = None  # the outbound webhook event the change wrote, if any endpoint wanted it

    @property
    def late_success(self) -> bool:
        return self.changed and self.new == COMPLETED and self.old in LATE_SUCCESS_FROM


async def lock(payment_id: int) -> dict:
    row = await Payment.select().where(Payment.id == payment_id).lock_rows().first()
    if row is None:  # NotFound is a LookupError: a page asking for it answers 404
        raise NotFound(f"payment {payment_id}")
    return row


# The new status, its event, and the outbound webhook it sends (webhooks.EMIT_CTES, when the
# status sends one) in one statement; the row comes back as it now is.
TRANSITION_SQL = """
WITH changed AS (
    UPDATE payment SET {sets} WHERE id = {{}} RETURNING *
), event AS (
    INSERT INTO payment_event (payment, at, old_status, new_status, reason, staff, gateway_event, details, kind)
    SELECT id, {{}}::timestamptz, {{}}::text, {{}}::text, {{}}::text, {{}}::int, {{}}::text, {{}}::jsonb, '{kind}'
    FROM changed
){hook}
SELECT changed.*, {hook_id} AS webhook_event FROM changed
"""


async def transition(payment_id: int, new: str, *, reason: str, staff_id: int | None = None,
                     gateway_event: str | None = None, details: dict | None = None,
                     values: dict | None = None, locked: dict | None = None) -> Change:
    """Move a payment to `new`. Must run inside a transaction (the lock lasts until commit).
    `locked`: the row as the caller locked it in this transaction (not locked again)."""
    payment = locked if locked is not None else await lock(payment_id)
    old = payment["status"]
    if old == new and (old, new) not in REPEATABLE:
        return Change(payment, old, new, changed=False)
    if new not in TRANSITIONS[old]:
        raise InvalidTransition(f"payment {payment_id}: {old} -> {new} is not allowed")
    update = {Payment.status: new, **(values or {})}
    if new == COMPLETED:
        update[Payment.completed_at] = now()
    names = {column._meta.db_column_name: value for column, value in update.items()}
    args = [*names.values(), payment_id, now(), old, new, reason, staff_id, gateway_event, json.dumps(details or {})]
    # The outbound webhook: here, in the statement of the change, every way a payment completes,
    # fails or is refunded passes through this function, and the event commits (or not) with it.
    # Its data is the row as this statement leaves it (the locked row with these values).
    event_type = WEBHOOK_EVENTS.get(new)
    if event_type:
        args += webhooks.emit_args(event_type, "payment", payment_id, webhooks.payment_data({**payment, **names}))
    sql = TRANSITION_SQL.format(sets=", ".join(f"{name} = {{}}" for name in names), kind=STATUS,
                                hook=f", {webhooks.EMIT_CTES}" if event_type else "",
                                hook_id="(SELECT id FROM hook_event)" if event_type else "NULL::bigint")
    payment = dict((await Payment.raw(sql, *args))[0])
    event = payment.pop("webhook_event")
    if event is not None:
        await db.after_commit(webhooks.nudge_due)
    return Change(payment, old, new, changed=True, event=event)


async def open_payment(columns: dict, *, reason: str, staff_id: int | None = None, gateway_event: str | None = None,
                       details: dict | None = None, same_request: bool = True) -> tuple[int, bool]:
    """Record a new payment, born `pending`, once per idempotency key, with its first event.

    Returns (payment id, created); created is False when the key had been used for the same
    payment: the id is then the earlier payment's, and nothing is written. With `same_request`, a
    used key that asked for something else (WHAT_WAS_ASKED) raises KeyReused. Must run inside a
    transaction."""
    unknown = set(columns) - OPENING_COLUMNS
    if unknown:
        raise ValueError(f"not a column a payment is opened with: {sorted(unknown)}")
    names = list(columns)
    rows = await Payment.raw(
        f"INSERT INTO payment ({', '.join(names)}, refunded, status, created_at) "
        f"VALUES ({', '.join('{}' for _ in names)}, 0, '{PENDING}', {{}}) "
        "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id", *columns.values(), now())
    if not rows:
        existing = await Payment.select().where(Payment.idempotency_key == columns["idempotency_key"]).first()
        if same_request and any(_differs(existing[k], columns[k]) for k in WHAT_WAS_ASKED if k in columns):
            raise KeyReused(existing)
        return existing["id"], False
    payment_id = rows[0]["id"]
    await PaymentEvent.insert(PaymentEvent(
        payment=payment_id, old_status="", new_status=PENDING, reason=reason, staff=staff_id,
        gateway_event=gateway_event, details=details or {}, kind=STATUS, at=now()))
    return payment_id, True


def _differs(stored, asked) -> bool:
    if isinstance(asked, str) and isinstance(stored, str):
        return stored.strip() != asked.strip()
    return stored != asked


async def record_fact(payment: dict, reason: str, *, gateway_event: str | None = None,
                      details: dict | None = None, staff_id: int | None = None) -> None:
    """Something learnt about a payment that does not change its status (its M-Pesa code arrived,
    a result was tied to it by phone and amount): an event beside the status changes, so every
    change to a payment stays traceable to who or which gateway event made it."""
    await PaymentEvent.insert(PaymentEvent(
        payment=payment["id"], old_status=payment["status"], new_status=payment["status"], reason=reason,
        staff=staff_id, gateway_event=gateway_event, details=details or {}, kind=STATUS, at=now()))


async def record_settlement(payment_id: int, facts: dict, *, staff_id: int | None = None,
                            gateway_event: str | None = None) -> None:
    """What a payment that just completed settled (invoices and amounts, credit added, balances
    right after): written once, beside the event that completed it, and read back by receipts."""
    await PaymentEvent.insert(PaymentEvent(
        payment=payment_id, old_status=COMPLETED, new_status=COMPLETED, reason="settled",
        staff=staff_id, gateway_event=gateway_event, details=facts, kind=SETTLEMENT, at=now()))


async def settlement_of(payment_id: int) -> dict:
    """The facts `record_settlement` wrote for this payment ({} before it completed), as stored
    (amounts as text: settlement_facts types them)."""
    event = await PaymentEvent.select(PaymentEvent.details).where(
        (PaymentEvent.payment == payment_id) & (PaymentEvent.kind == SETTLEMENT)).output(load_json=True).first()
    return (event or {}).get("details") or {}


def settlement_facts(details: dict) -> dict:
    """A settlement event's details with its amounts as Decimal (they are stored as text)."""
    if not details:
        return {}
    facts = {**details, **{key: Decimal(details.get(key, "0"))
                           for key in ("credit_added", "balance_owed", "credit_balance")}}
    facts["settled"] = [{**item, "amount": Decimal(item["amount"])} for item in details.get("settled", [])]
    return facts
