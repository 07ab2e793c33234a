"""Payments at the desk (cash, bank transfer, cheque), completing any payment, and refunds.

`complete_payment` is the one place money received turns into ledger entries, allocations,
credit and a receipt number, whichever rail it came by (the M-Pesa and card callbacks will call
it too). Initiation is idempotent: a form carries a key, and a key seen before returns the
payment it made instead of making another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from portal import audit
from portal.billing import ledger
from portal.billing.invoices import allocate, apply_credit, create_credit_note, lock_member, settle
from portal.billing.ledger import credit, debit
from portal.lib import db
from portal.lib.clock import now, today
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from portal.lib.money import Money
from portal.members.holds import announce_holds
from portal.members.memberships import after_paying
from portal.payments import state
from portal.payments.limits import METHOD_LABELS, check_confirmed, over_limit
from tables.billing import Allocation, Invoice, Payment, PaymentEvent
from tables.locations import Location
from tables.statuses import OPEN_INVOICE, OPEN_INVOICE_SQL

DESK_METHODS = {method: METHOD_LABELS[method] for method in ("cash", "bank", "cheque")}
# Which ledger account holds money received by each method.
ACCOUNT_FOR = {"cash": "cash", "bank": "bank", "cheque": "cheque", "mpesa": "mpesa", "card": "card"}


@dataclass(frozen=True)
class Recorded:
    payment: dict
    created: bool  # False: the idempotency key had been used; this is the earlier payment


def desk_payment_problems(*, method: str, amount: Money | None, reference: str) -> list[RuleBroken]:
    """Every rule a desk payment breaks before it reaches the database, each naming its field: a
    form shows them all at once, record_desk_payment raises the first. `amount` is None when it
    could not be read (that is the form's to say)."""
    problems = []
    if method not in DESK_METHODS:
        problems.append(RuleBroken(S_("Choose cash, bank transfer or cheque"), field="method"))
    if amount is not None and amount.amount <= 0:
        problems.append(RuleBroken(S_("Enter an amount above zero"), field="amount"))
    elif amount is not None and method in DESK_METHODS and (too_much := over_limit(method, amount)):
        problems.append(too_much)
    if method in ("bank", "cheque") and not reference.strip():
        problems.append(RuleBroken("Enter the cheque number" if method == "cheque" else "Enter the bank reference",
                                   field="reference"))
    return problems


async def desk_of(location_id: int | None) -> int | None:
    """Cash always belongs to a desk, whose close counts it: the one given (the login's own, or
    the one chosen on the form), else the gym's only location. A gym with several must be told
    which; one that has set up none has no close to count it in (None)."""
    if location_id is not None:
        return location_id
    desks = await Location.select(Location.id).where(Location.active == True).limit(2)  # noqa: E712
    if len(desks) > 1:
        raise RuleBroken(S_("Choose the desk that takes this money"), field="location")
    return desks[0]["id"] if desks else None


async def record_desk_payment(*, member_id: int, method: str, amount: Money, reference: str = "",
                              invoice_id: int | None = None, idempotency_key: str, staff_id: int,
                              location_id: int | None, note: str = "", confirmed: bool = False) -> Recorded:
    """Cash, bank transfer or cheque taken at the desk: recorded and completed in one go. A large
    amount is recorded only once staff have confirmed it (NeedsConfirmation until then)."""
    problems = desk_payment_problems(method=method, amount=amount, reference=reference)
    if problems:
        raise problems[0]
    check_confirmed(amount, confirmed)
    location_id = await desk_of(location_id)
    async with db.transaction():
        await lock_member(member_id)
        if invoice_id is not None:
            inv = await Invoice.select(Invoice.member, Invoice.status).where(Invoice.id == invoice_id).first()
            if not inv or inv["member"] != member_id:
                raise NotFound("invoice")
        payment_id, created = await state.open_payment(
            {"member": member_id, "invoice": invoice_id, "method": method, "amount": amount.amount,
             "currency": amount.currency, "reference": reference.strip(), "idempotency_key": idempotency_key,
             "staff": staff_id, "location": location_id, "note": note},
            reason=f"{DESK_METHODS[method]} recorded at the desk", staff_id=staff_id)
        if not created:
            return Recorded(await Payment.select().where(Payment.id == payment_id).first(), created=False)
        # Only for a new payment (raising rolls it back): the form sent again after its payment
        # paid the invoice gets that payment back, not "not open".
        if invoice_id is not None and inv["status"] not in OPEN_INVOICE:
            raise RuleBroken(S_("That invoice is not open"), field="invoice")
        payment = await complete_payment(payment_id, reason=f"{DESK_METHODS[method]} received", staff_id=staff_id)
    return Recorded(payment, created=True)


# The receipt number is taken last, by the statement that writes everything that carries it (the
# payment's number, the ledger entries whose memos name it, what the payment settled, the outbound
# webhook's copy of the payment, the audit entry). The counter row it bumps stays locked until
# COMMIT, which is what keeps the numbers unique and without gaps (portal/billing/numbering.py):
# taken first, every completion in the gym queued on that one row for the whole of another's
# work; taken last, for one statement and the COMMIT. Entries referenced before it (allocations
# name the payment's entry) have their id reserved (BEFORE_SQL); the others get theirs here.
RECEIPT_LAST_SQL = """
WITH number AS (
    INSERT INTO document_counter (kind, year, last) VALUES ('RCP', {}, 1)
    ON CONFLICT (kind, year) DO UPDATE SET last = document_counter.last + 1
    RETURNING 'RCP-' || year || '-' || lpad(last::text, greatest(6, length(last::text)), '0') AS receipt
), numbered AS (
    UPDATE payment SET receipt_number = number.receipt FROM number WHERE payment.id = {} RETURNING payment.*
), entries AS (
    SELECT e.n, coalesce(e.id, nextval(pg_get_serial_sequence('ledger_entry', 'id'))) AS id, e.kind, e.memo,
           e.business_date, e.gateway_event
    FROM unnest({}::bigint[], {}::text[], {}::text[], {}::date[], {}::text[])
         WITH ORDINALITY AS e (id, kind, memo, business_date, gateway_event, n)
), entry AS (
    INSERT INTO ledger_entry (id, at, business_date, kind, memo, staff, payment, gateway_event)
    SELECT entries.id, {}, entries.business_date, entries.kind, replace(entries.memo, '<receipt>', number.receipt),
           {}, {}, entries.gateway_event
    FROM entries, number
), legs AS (
    INSERT INTO ledger_leg (entry, account, member, location, amount, currency)
    SELECT entries.id, leg.account, leg.member, leg.location, leg.amount, leg.currency
    FROM unnest({}::bigint[], {}::text[], {}::bigint[], {}::bigint[], {}::numeric[], {}::text[])
         AS leg (n, account, member, location, amount, currency)
    JOIN entries ON entries.n = leg.n
), settlement AS (
    INSERT INTO payment_event (payment, at, old_status, new_status, reason, staff, gateway_event, details, kind)
    VALUES ({}, {}, 'completed', 'completed', 'settled', {}, {}, {}::jsonb, 'settlement')
), told AS (
    UPDATE webhook_event SET data = data || jsonb_build_object('receipt_number', number.receipt)
    FROM number WHERE webhook_event.id = {}
), audited AS (
    INSERT INTO audit_log (at, staff, action, entity, entity_id, reason, details)
    SELECT {}, {}, 'payment.completed', 'payment', {}, '', {}::jsonb || jsonb_build_object('receipt', number.receipt)
    FROM number
)
SELECT numbered.* FROM numbered
"""
RECEIPT = "<receipt>"  # in a memo: the receipt number, filled in by RECEIPT_LAST_SQL

# What a completion reads before it writes, in one statement: the member's balances (as
# ledger.member_balances), the id of the payment's ledger entry (reserved: the allocations written
# before it name it), and the member's open invoices, locked in open_invoices' order. Each CTE is
# materialised so it runs once, however the join is planned.
BEFORE_SQL = f"""
WITH balances AS MATERIALIZED (
    SELECT coalesce(sum(amount) FILTER (WHERE account = 'receivable'), 0) AS receivable,
           coalesce(-sum(amount) FILTER (WHERE account = 'member_credit'), 0) AS credit,
           nextval(pg_get_serial_sequence('ledger_entry', 'id')) AS entry
    FROM ledger_leg WHERE member = {{}} AND account IN ('receivable', 'member_credit')
), open AS MATERIALIZED (
    SELECT * FROM invoice WHERE member = {{}} AND status IN {OPEN_INVOICE_SQL} ORDER BY due_date, id FOR UPDATE
)
SELECT balances.receivable AS balances_receivable, balances.credit AS balances_credit,
       balances.entry AS balances_entry, open.*
FROM balances LEFT JOIN open ON true ORDER BY open.due_date, open.id
"""


async def _before_numbering(member_id: int, currency: str) -> tuple[Money, Money, int, list[dict]]:
    """(owed, credit held, the payment's entry id, open invoices locked): see BEFORE_SQL."""
    rows = await Payment.raw(BEFORE_SQL, member_id, member_id)
    first = rows[0]
    invoices = [{k: v for k, v in row.items() if not k.startswith("balances_")} for row in rows if row["id"] is not None]
    return (Money(first["balances_receivable"], currency), Money(first["balances_credit"], currency),
            first["balances_entry"], invoices)


async def complete_payment(payment_id: int, *, reason: str, staff_id: int | None = None,
                           gateway_event: str | None = None, amount: Money | None = None,
                           reference: str | None = None, locked: dict | None = None,
                           values: dict | None = None) -> dict:
    """Money has arrived: post it, settle invoices (chosen one first, then oldest), keep any
    excess as credit, number the receipt. Applying it twice is a no-op. Runs in the caller's
    transaction, after the member lock. `reference` (the gateway's code for the money) is
    written with the completion, so everything told of it (a webhook) has it. `locked`: the
    payment as the caller locked it in this transaction; `values`: more columns to write with
    the completion (a gateway's flags)."""
    payment = locked if locked is not None else await state.lock(payment_id)
    if payment["status"] in (state.COMPLETED, state.PARTIALLY_REFUNDED, state.REFUNDED):
        return payment
    received = amount or Money(payment["amount"], payment["currency"])
    member_id = payment["member"]
    change = await state.transition(payment_id, state.COMPLETED, reason=reason, staff_id=staff_id,
                                    gateway_event=gateway_event, locked=payment,
                                    values={Payment.amount: received.amount, **(values or {}),
                                            **({Payment.reference: reference} if reference else {})})
    owed, held, entry_id, invoices = await _before_numbering(member_id, received.currency)
    entries = [await ledger.prepare("payment_received", [
        debit(ACCOUNT_FOR[payment["method"]], received, location=payment["location"]),
        credit("receivable", received, member=member_id),
    ], memo=f"Receipt {RECEIPT}", staff_id=staff_id, payment_id=payment_id, gateway_event=gateway_event)]
    settled, left = await settle(member_id, received, payment_id=payment_id, entry_id=entry_id,
                                 invoice_id=payment["invoice"], staff_id=staff_id, invoices=invoices)
    if left:
        # Overpayment: what no invoice needs moves from receivable to the member's credit.
        entries.append(await ledger.prepare("credit_held", [
            debit("receivable", left, member=member_id),
            credit("member_credit", left, member=member_id),
        ], memo=f"Credit from {RECEIPT}", staff_id=staff_id, payment_id=payment_id))
    if settled:  # paying an overdue invoice may lift the member's hold
        await announce_holds([member_id])
    # The balances right after: those before, moved by the legs written below.
    owed, held = owed - received + left, held + left
    facts = {
        "settled": [{"invoice": inv["id"], "number": inv["number"], "amount": str(part.amount)} for inv, part in settled],
        "credit_added": str(left.amount), "balance_owed": str(owed.amount), "credit_balance": str(held.amount),
        **await after_paying(member_id, [inv["id"] for inv, _ in settled], today()),
    }
    legs = [(n, leg) for n, entry in enumerate(entries, start=1) for leg in entry.legs]
    at = now()
    rows = await Payment.raw(
        RECEIPT_LAST_SQL, today().year, payment_id,
        [entry_id] + [None] * (len(entries) - 1), [e.kind for e in entries], [e.memo for e in entries],
        [e.business_date for e in entries], [e.gateway_event for e in entries],
        at, staff_id, payment_id,
        [n for n, _ in legs], *ledger.leg_arrays([leg for _, leg in legs]),
        payment_id, at, staff_id, gateway_event, json.dumps(facts),
        change.event,
        at, staff_id, str(payment_id), json.dumps(audit.with_caller(
            {"amount": str(received.amount), "method": payment["method"], "late": change.late_success})))
    return rows[0]


def refundable_problem(amount: Money, left: Money) -> RuleBroken | None:
    """A refund is more than zero and never more than what the payment has left (each rail asks
    again under its lock, where refunds made meanwhile count too)."""
    if left.amount <= 0:
        return RuleBroken(S_("Nothing is left to refund on this payment"), field="amount")
    if amount.currency != left.currency or amount.amount <= 0 or amount > left:
        return RuleBroken(f"Refund between {Money(Decimal(1), left.currency).format()} and {left.format()}",
                          field="amount")
    return None


async def refund_payment(payment_id: int, amount: Money, reason: str, staff_id: int) -> dict:
    """Give money back (cash at the desk here; gateways refund through their own APIs first).
    It comes out of the credit this payment left first, then off the invoices it settled
    (newest first), which reopen. Returns the credit note. The reason was checked by
    payments.refunds.start_refund (or written by the gateway rail that calls this)."""
    payment = await Payment.select().where(Payment.id == payment_id).first()
    if not payment:
        raise NotFound("payment")
    if payment["member"] is None:  # a payer's payment (portal/payers/payments.py): its money reached several members
        raise RuleBroken(S_("This payment was made by a payer for several members: refunding it is not supported yet"))
    async with db.transaction():
        member_id = payment["member"]
        await lock_member(member_id)
        payment = await state.lock(payment_id)
        refundable = Money(payment["amount"] - payment["refunded"], payment["currency"])
        if payment["status"] not in (state.COMPLETED, state.PARTIALLY_REFUNDED):
            raise RuleBroken(S_("Only completed payments can be refunded"))
        if problem := refundable_problem(amount, refundable):
            raise problem
        owed, held = await ledger.member_balances(member_id, amount.currency)
        from_credit = min(held, amount) if held.amount > 0 else Money.zero(amount.currency)
        from_invoices = amount - from_credit
        entry = await ledger.post("refund", [
            debit("member_credit", from_credit, member=member_id),
            debit("receivable", from_invoices, member=member_id),
            credit(ACCOUNT_FOR[payment["method"]], amount, location=payment["location"]),
        ], memo=f"Refund of {payment['receipt_number']}: {reason}", staff_id=staff_id, payment_id=payment_id)
        if from_invoices:
            await _take_back_allocations(payment_id, member_id, from_invoices, entry)
        refunded = payment["refunded"] + amount.amount
        new = state.REFUNDED if refunded >= payment["amount"] else state.PARTIALLY_REFUNDED
        await state.transition(payment_id, new, reason=reason, staff_id=staff_id,
                               details={"amount": str(amount.amount)}, values={Payment.refunded: refunded})
        note = await create_credit_note("refund", member_id, amount, reason, staff_id, payment_id=payment_id)
        await audit.record("payment.refunded", "payment", payment_id, staff_id=staff_id, reason=reason,
                           details={"amount": str(amount.amount), "credit_note": note["number"]})
        await apply_credit(member_id, staff_id=staff_id)
        await announce_holds([member_id])  # a reopened overdue invoice puts the hold back
    return note


async def _take_back_allocations(payment_id: int, member_id: int, amount: Money, entry: int) -> None:
    """Reopen invoices for `amount`: those this payment settled first (newest first), then, for
    money of this payment that reached other invoices as credit, the member's other paid invoices."""
    own = await Allocation.raw(
        "SELECT invoice, sum(amount) AS amount FROM allocation WHERE payment = {} GROUP BY invoice "
        "HAVING sum(amount) > 0 ORDER BY max(id) DESC", payment_id)
    others = await Invoice.raw(
        "SELECT id AS invoice, paid AS amount FROM invoice WHERE member = {} AND paid > 0 AND status <> 'void' "
        "ORDER BY id DESC", member_id)
    left = amount
    for row in [*own, *others]:
        if not left:
            break
        invoice = await Invoice.select().where(Invoice.id == row["invoice"]).lock_rows().first()
        available = min(row["amount"], invoice["paid"])
        part = min(Money(available, amount.currency), left)
        if part.amount <= 0:
            continue
        await allocate(invoice, -part, payment_id=payment_id, entry_id=entry)
        left = left - part
    if left:
        raise RuleBroken(S_("This refund is more than the member has paid on open or paid invoices"))


async def payment_history(payment_id: int) -> list[dict]:
    return await PaymentEvent.select().where(PaymentEvent.payment == payment_id).order_by(PaymentEvent.id)
