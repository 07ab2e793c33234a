"""A payment by a payer: one payment (cash, bank transfer or cheque at the desk) that settles the
open invoices addressed to the payer across all its members, oldest due date first (then invoice
number), through the same ledger and allocation code as a member's own payment.

The ledger keeps what is owed per member (receivable, by member), so the payment's entry credits
each member's receivable with exactly what went to that member's invoices: one payment, one
`payment_received` entry with one leg per member, one allocation per invoice. Money left over
once every invoice addressed to the payer is paid becomes credit the way any overpayment does
(`credit_held`), held by one member: the member whose invoice the payment settled last, or, when
nothing was owed, the payer's first linked member. Credit is per member in these books, and that
member's next invoice uses it (issue_invoice applies credit), which is where a company's advance
goes in practice. A payer with neither invoices nor members cannot pay (nowhere to hold it).

The payment's own `member` is empty; `payer_payment` names the payer. Refunds of a payer's
payment are refused for now (portal/payments/service.refund_payment): see the payers README note.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from portal import audit
from portal.billing import ledger
from portal.billing.invoices import allocate, lock_member
from portal.billing.ledger import credit, debit
from portal.billing.numbering import next_number
from portal.lib import db
from portal.lib.clock import today
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from portal.lib.money import Money
from portal.members.holds import announce_holds
from portal.payments import state
from portal.payments.limits import check_confirmed
from portal.payments.service import (
    ACCOUNT_FOR,
    DESK_METHODS,
    Recorded,
    desk_of,
    desk_payment_problems,
)
from tables.billing import Invoice, Payment
from tables.payers import Payer, PayerMember, PayerPayment

MEMBERS_OWING_SQL = """
SELECT DISTINCT i.member FROM invoice_bill_to b JOIN invoice i ON i.id = b.invoice
WHERE b.payer = {} AND i.status IN ('open', 'partially_paid')
"""

# Oldest due date first, then the invoice number: the order a payer's payment settles them.
OPEN_FOR_UPDATE_SQL = """
SELECT i.* FROM invoice_bill_to b JOIN invoice i ON i.id = b.invoice
WHERE b.payer = {} AND i.status IN ('open', 'partially_paid') AND i.member = ANY({})
ORDER BY i.due_date, i.number, i.id
FOR UPDATE OF i
"""


async def record_payer_payment(*, payer_id: int, method: str, amount: Money, reference: str = "",
                               idempotency_key: str, staff_id: int | None, location_id: int | None,
                               note: str = "", confirmed: bool = False) -> Recorded:
    """Record and complete a desk payment by a payer (see the module's docstring for where the
    money goes). Idempotent on the key, like a member's desk payment."""
    problems = desk_payment_problems(method=method, amount=amount, reference=reference)
    if problems:
        raise problems[0]
    check_confirmed(amount, confirmed)
    location_id = await desk_of(location_id)
    async with db.transaction():
        # The payer's row first: two payments by one payer are taken one at a time.
        payer = await Payer.select().where(Payer.id == payer_id).lock_rows().first()
        if not payer:
            raise NotFound("payer")
        owing = [r["member"] for r in await Invoice.raw(MEMBERS_OWING_SQL, payer_id)]
        linked = [r["member"] for r in await PayerMember.select(PayerMember.member).where(
            PayerMember.payer == payer_id).order_by(PayerMember.member)]
        members = sorted(set(owing) | set(linked[:1]))
        if not members:
            raise RuleBroken(S_("This payer has no members and nothing to pay: link a member first"), field="amount")
        for member_id in members:  # in id order, so two payers sharing no lock order cannot deadlock
            await lock_member(member_id)
        payment_id, created = await state.open_payment(
            {"member": None, "invoice": None, "method": method, "amount": amount.amount, "currency": amount.currency,
             "reference": reference.strip(), "idempotency_key": idempotency_key, "staff": staff_id,
             "location": location_id, "note": note},
            reason=f"{DESK_METHODS[method]} from payer {payer['name']} recorded at the desk", staff_id=staff_id)
        if not created:
            earlier = await Payment.select().where(Payment.id == payment_id).first()
            if not await PayerPayment.exists().where((PayerPayment.payment == payment_id) & (PayerPayment.payer == payer_id)):
                raise state.KeyReused(earlier)
            return Recorded(earlier, created=False)
        await PayerPayment(payment=payment_id, payer=payer_id).save()
        payment = await _complete(payment_id, payer, members, linked, staff_id=staff_id)
    return Recorded(payment, created=True)


async def _complete(payment_id: int, payer: dict, members: list[int], linked: list[int], *,
                    staff_id: int | None) -> dict:
    payment = await state.lock(payment_id)
    received = Money(payment["amount"], payment["currency"])
    receipt = await next_number("RCP", today().year)
    change = await state.transition(payment_id, state.COMPLETED, reason=f"{DESK_METHODS[payment['method']]} received",
                                    staff_id=staff_id, values={Payment.receipt_number: receipt})
    invoices = await Invoice.raw(OPEN_FOR_UPDATE_SQL, payer["id"], members)
    plan: list[tuple[dict, Money]] = []
    left = received
    for invoice in invoices:
        if not left:
            break
        due = Money(invoice["total"] - invoice["paid"], invoice["currency"])
        part = due if due <= left else left
        if part:
            plan.append((invoice, part))
            left = left - part
    per_member: dict[int, Money] = defaultdict(lambda: Money.zero(received.currency))
    for invoice, part in plan:
        per_member[invoice["member"]] = per_member[invoice["member"]] + part
    holder = plan[-1][0]["member"] if plan else (linked[0] if linked else members[0])
    memo = f"Receipt {receipt} from {payer['name']}"
    entry = await ledger.post("payment_received", [
        debit(ACCOUNT_FOR[payment["method"]], received, location=payment["location"]),
        *[credit("receivable", part, member=member_id) for member_id, part in sorted(per_member.items())],
        credit("receivable", left, member=holder),
    ], memo=memo, staff_id=staff_id, payment_id=payment_id)
    for invoice, part in plan:
        await allocate(invoice, part, payment_id=payment_id, entry_id=entry, staff_id=staff_id)
    if left:
        await ledger.post("credit_held", [
            debit("receivable", left, member=holder),
            credit("member_credit", left, member=holder),
        ], memo=f"Credit from {receipt} (payer {payer['name']})", staff_id=staff_id, payment_id=payment_id)
    if per_member:
        await announce_holds(sorted(per_member))
    owed = sum((inv["total"] - inv["paid"] for inv in invoices), Decimal("0")) - (received - left).amount
    await state.record_settlement(payment_id, {
        "settled": [{"invoice": inv["id"], "number": inv["number"], "amount": str(part.amount),
                     "member": inv["member"]} for inv, part in plan],
        "credit_added": str(left.amount), "balance_owed": str(owed), "credit_balance": str(left.amount),
        "credit_holder": holder if left else None,
        "payer": {"id": payer["id"], "name": payer["name"]},
        "membership_note": "", "membership_lapsed": False,
    }, staff_id=staff_id)
    await audit.record("payment.completed", "payment", payment_id, staff_id=staff_id,
                       details={"receipt": receipt, "amount": str(received.amount), "method": payment["method"],
                                "payer": payer["id"], "late": change.late_success})
    return change.payment
