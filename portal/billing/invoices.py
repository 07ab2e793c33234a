"""Invoices: issue, settle, void; and what a fully paid membership invoice does.

Every function that moves money runs inside one transaction that first locks the member row:
money for one member is handled one operation at a time, so allocations, credit and invoice
totals can never race each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from portal import audit, webhooks
from portal.billing import ledger
from portal.billing.ledger import credit, debit
from portal.billing.numbering import next_number
from portal.lib import db
from portal.lib.clock import now, today
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from portal.lib.money import CENT, Money
from portal.members.holds import announce_holds
from portal.members.memberships import on_invoice_paid
from portal.messages import outbox
from portal.payers import billto
from portal.settings import get_settings
from tables.billing import Allocation, CreditNote, Invoice, InvoiceLine
from tables.discounts import Discount
from tables.ledger import LedgerLeg
from tables.members import Member, Membership
from tables.statuses import OPEN_INVOICE


@dataclass(frozen=True)
class Line:
    description: str
    unit_price: Money
    quantity: int = 1
    vat_rate: Decimal = Decimal("0")
    vat_inclusive: bool = True
    # The ledger account its net amount is credited to (ledger.REVENUE_ACCOUNTS).
    revenue_account: str = "revenue"

    def amounts(self) -> tuple[Money, Money, Money]:
        """(net, vat, total), rounded to the cent, adding up exactly."""
        gross = self.unit_price * self.quantity
        rate = self.vat_rate / Decimal(100)
        if self.vat_inclusive:
            total = gross
            net = Money((total.amount / (1 + rate)).quantize(CENT, rounding=ROUND_HALF_UP), total.currency)
        else:
            net = gross
            total = Money((net.amount * (1 + rate)).quantize(CENT, rounding=ROUND_HALF_UP), net.currency)
        return net, total - net, total


async def lock_member(member_id: int) -> dict:
    row = await Member.select(Member.id, Member.first_name, Member.last_name).where(Member.id == member_id).lock_rows().first()
    if not row:
        raise NotFound("member")
    return row


def plan_line(plan: dict, period: str = "") -> Line:
    settings = get_settings()
    description = f"{plan['name']} membership" + (f" ({period})" if period else "")
    return Line(description, Money(plan["price"], plan["currency"]), 1, settings.vat_rate, settings.prices_include_vat)


async def issue_invoice(member_id: int, lines: list[Line], *, kind: str = "other", plan_id: int | None = None,
                        membership_id: int | None = None, period_start: date | None = None,
                        due_date: date | None = None, staff_id: int | None = None) -> dict:
    """Raise an invoice and post it (receivable / revenue + VAT); then any credit the member
    holds is applied to it straight away, and the invoice message is queued for the member.
    Caller holds the member lock (and, after commit, may `outbox.nudge_invoice` to send it now)."""
    if not lines:
        raise RuleBroken(S_("an invoice needs at least one line"))
    day = today()
    currency = lines[0].unit_price.currency
    computed = [(line, *line.amounts()) for line in lines]
    subtotal = sum((c[1] for c in computed), Money.zero(currency))
    tax = sum((c[2] for c in computed), Money.zero(currency))
    total = sum((c[3] for c in computed), Money.zero(currency))
    number = await next_number("INV", day.year)
    invoice_id = (await Invoice.insert(Invoice(
        number=number, member=member_id, kind=kind, plan=plan_id, membership=membership_id,
        period_start=period_start, issue_date=day, due_date=due_date or day, currency=currency,
        subtotal=subtotal.amount, tax_total=tax.amount, total=total.amount, created_by=staff_id, created_at=now(),
    )).returning(Invoice.id))[0]["id"]
    await InvoiceLine.insert(*[
        InvoiceLine(invoice=invoice_id, description=line.description, quantity=line.quantity,
                    unit_price=line.unit_price.amount, vat_rate=line.vat_rate, vat_inclusive=line.vat_inclusive,
                    net=net.amount, vat=vat.amount, total=line_total.amount)
        for line, net, vat, line_total in computed
    ])
    await billto.freeze(invoice_id, member_id)  # addressed to the member's payer, if any, as it is now
    by_account: dict[str, Money] = {}
    for line, net, _vat, _total in computed:
        by_account[line.revenue_account] = by_account.get(line.revenue_account, Money.zero(currency)) + net
    await ledger.post("invoice_issued", [
        debit("receivable", total, member=member_id),
        *[credit(account, net) for account, net in by_account.items()],
        credit("vat_payable", tax),
    ], memo=f"Invoice {number}", staff_id=staff_id, invoice_id=invoice_id)
    await audit.record("invoice.issued", "invoice", invoice_id, staff_id=staff_id,
                       details={"number": number, "total": str(total.amount), "kind": kind})
    # Before credit is applied: a receiver hears of the invoice before it hears it was paid.
    await webhooks.emit("invoice.created", "invoice", invoice_id, webhooks.invoice_data({
        "id": invoice_id, "number": number, "status": "open", "kind": kind, "member": member_id,
        "membership": membership_id, "currency": currency, "total": total.amount, "paid": Decimal("0"),
        "issue_date": day, "due_date": due_date or day}))
    await apply_credit(member_id, staff_id=staff_id)
    # In this transaction: the member hears of the invoice exactly when it exists.
    await outbox.invoice_issued(invoice_id, member_id)
    invoice = await Invoice.select().where(Invoice.id == invoice_id).first()
    if invoice["due_date"] < day:  # raised already overdue (a back-dated invoice) may start a hold
        await announce_holds([member_id])
    return invoice


async def open_invoices(member_id: int, lock: bool = False) -> list[dict]:
    query = Invoice.select().where((Invoice.member == member_id) & Invoice.status.is_in(list(OPEN_INVOICE))).order_by(
        Invoice.due_date).order_by(Invoice.id)
    return await (query.lock_rows() if lock else query)


def _status_for(total: Decimal, paid: Decimal) -> str:
    if paid <= 0:
        return "open"
    return "paid" if paid >= total else "partially_paid"


async def allocate(invoice: dict, amount: Money, *, payment_id: int | None, entry_id: int,
                   staff_id: int | None = None, when: date | None = None) -> dict:
    """Put `amount` against an invoice (negative to take it back) and keep its status in step.
    A membership invoice that becomes fully paid activates or extends the membership."""
    await Allocation.insert(Allocation(invoice=invoice["id"], payment=payment_id, amount=amount.amount, entry=entry_id))
    paid = invoice["paid"] + amount.amount
    status = _status_for(invoice["total"], paid)
    await Invoice.update({Invoice.paid: paid, Invoice.status: status}).where(Invoice.id == invoice["id"])
    updated = {**invoice, "paid": paid, "status": status}
    if status == "paid" and invoice["status"] != "paid":
        await webhooks.emit("invoice.paid", "invoice", invoice["id"], webhooks.invoice_data(updated))
        await on_invoice_paid(updated, when or today(), staff_id)
    return updated


async def change_totals(invoice: dict, *, total: Money, subtotal: Money, tax: Money, paid: Money,
                        staff_id: int | None) -> dict:
    """New totals for an invoice (a discount took something off), its status in step: an invoice
    a discount leaves fully paid is paid, as if the last shilling had come in."""
    status = _status_for(total.amount, paid.amount) if total.amount > 0 or paid.amount > 0 else "paid"
    await Invoice.update({Invoice.total: total.amount, Invoice.subtotal: subtotal.amount, Invoice.tax_total: tax.amount,
                          Invoice.paid: paid.amount, Invoice.status: status}).where(Invoice.id == invoice["id"])
    updated = {**invoice, "total": total.amount, "subtotal": subtotal.amount, "tax_total": tax.amount,
               "paid": paid.amount, "status": status}
    if status == "paid" and invoice["status"] != "paid":
        await webhooks.emit("invoice.paid", "invoice", invoice["id"], webhooks.invoice_data(updated))
        await on_invoice_paid(updated, today(), staff_id)
    return updated


async def settle(member_id: int, amount: Money, *, payment_id: int | None, entry_id: int,
                 invoice_id: int | None = None, staff_id: int | None = None,
                 invoices: list[dict] | None = None) -> tuple[list[tuple[dict, Money]], Money]:
    """Spread `amount` over open invoices: the one chosen first, then oldest due first.
    Returns what each invoice got, and what is left over (which the caller keeps as credit).
    `invoices`: the member's open invoices as the caller locked them (open_invoices' order)."""
    invoices = await open_invoices(member_id, lock=True) if invoices is None else list(invoices)
    if invoice_id is not None:
        invoices.sort(key=lambda inv: inv["id"] != invoice_id)
    left = amount
    settled = []
    for invoice in invoices:
        if not left:
            break
        due = Money(invoice["total"] - invoice["paid"], invoice["currency"])
        part = due if due <= left else left
        if part:
            await allocate(invoice, part, payment_id=payment_id, entry_id=entry_id, staff_id=staff_id)
            settled.append((invoice, part))
            left = left - part
    return settled, left


async def apply_credit(member_id: int, staff_id: int | None = None, invoice_id: int | None = None) -> Money:
    """Use credit the member holds on their open invoices (after an overpayment or a void):
    `invoice_id` first when given (a plan switch's credit goes to the new plan's invoice), then
    oldest due first."""
    owed, held = await ledger.member_balances(member_id)
    usable = min(owed, held) if owed.amount > 0 and held.amount > 0 else Money.zero(held.currency)
    if not usable:
        return usable
    entry = await ledger.post("credit_applied", [
        debit("member_credit", usable, member=member_id),
        credit("receivable", usable, member=member_id),
    ], memo="Credit applied to open invoices", staff_id=staff_id)
    settled, left = await settle(member_id, usable, payment_id=None, entry_id=entry, invoice_id=invoice_id,
                                 staff_id=staff_id)
    assert not left, "credit applied beyond what invoices owe"
    return usable


async def void_invoice(invoice_id: int, reason: str, staff_id: int) -> dict:
    """Void with a reason: the invoice's entry is reversed; whatever was paid on it becomes
    credit (and is applied to other open invoices); a credit note records it. In one transaction
    (the caller's when there is one): the member lock and the "already void" check only hold
    inside one, and without it two tabs voiding at once each reversed the invoice."""
    async with db.transaction():
        return await _void_invoice(invoice_id, reason, staff_id)


async def _void_invoice(invoice_id: int, reason: str, staff_id: int) -> dict:
    reason = reason.strip()
    if not reason:
        raise RuleBroken(S_("Give a reason for voiding"))
    invoice = await Invoice.select().where(Invoice.id == invoice_id).first()
    if not invoice:
        raise NotFound("invoice")
    member_id = invoice["member"]
    await lock_member(member_id)
    invoice = await Invoice.select().where(Invoice.id == invoice_id).lock_rows().first()
    if invoice["status"] == "void":
        raise RuleBroken(S_("This invoice is already void"))
    cur = invoice["currency"]
    total, subtotal, tax = Money(invoice["total"], cur), Money(invoice["subtotal"], cur), Money(invoice["tax_total"], cur)
    paid = Money(invoice["paid"], cur)
    # Revenue goes back out of the accounts the invoice credited (a sale's lines may have used several).
    revenue = await LedgerLeg.raw(
        "SELECT l.account, -sum(l.amount) AS amount FROM ledger_leg l JOIN ledger_entry e ON e.id = l.entry "
        # Its approved discounts too: the discounts account is credited back as the revenue is debited.
        "WHERE e.invoice = {} AND e.kind IN ('invoice_issued', 'discount') "
        "AND l.account NOT IN ('receivable', 'vat_payable', 'member_credit') "
        "GROUP BY l.account ORDER BY l.account", invoice_id)
    revenue_legs = [debit(r["account"], Money(r["amount"], cur)) for r in revenue] or [debit("revenue", subtotal)]
    entry = await ledger.post("void", [
        credit("receivable", total, member=member_id),
        *revenue_legs,
        debit("vat_payable", tax),
        # What was paid on it stays the member's money, as credit.
        debit("receivable", paid, member=member_id),
        credit("member_credit", paid, member=member_id),
    ], memo=f"Void {invoice['number']}: {reason}", staff_id=staff_id, invoice_id=invoice_id)
    if paid:
        await Allocation.insert(Allocation(invoice=invoice_id, payment=None, amount=-paid.amount, entry=entry))
    await Invoice.update({Invoice.status: "void", Invoice.paid: Decimal("0"), Invoice.void_reason: reason}).where(
        Invoice.id == invoice_id)
    # A discount still waiting has nothing left to take off.
    await Discount.update({Discount.status: "rejected", Discount.approved_by: staff_id, Discount.decided_at: now(),
                           Discount.decision_note: "Invoice voided"}).where(
        (Discount.invoice == invoice_id) & (Discount.status == "pending"))
    if invoice["kind"] == "new" and invoice["membership"]:
        await Membership.update({Membership.status: "cancelled"}).where(
            (Membership.id == invoice["membership"]) & (Membership.status == "unpaid"))
    note = await create_credit_note("void", member_id, total, reason, staff_id, invoice_id=invoice_id)
    await audit.record("invoice.voided", "invoice", invoice_id, staff_id=staff_id, reason=reason,
                       details={"number": invoice["number"], "paid_to_credit": str(paid.amount), "credit_note": note["number"]})
    voided = {**invoice, "status": "void", "paid": Decimal("0"), "void_reason": reason}
    await webhooks.emit("invoice.voided", "invoice", invoice_id, webhooks.invoice_data(voided))
    await apply_credit(member_id, staff_id=staff_id)
    await announce_holds([member_id])
    return note


async def create_credit_note(kind: str, member_id: int, amount: Money, reason: str, staff_id: int | None,
                             invoice_id: int | None = None, payment_id: int | None = None) -> dict:
    number = await next_number("CRN", today().year)
    row = (await CreditNote.insert(CreditNote(
        number=number, kind=kind, member=member_id, invoice=invoice_id, payment=payment_id,
        amount=amount.amount, currency=amount.currency, reason=reason, staff=staff_id,
    )).returning(*CreditNote.all_columns()))[0]
    return row
