"""Discounts: a percentage or an amount off one line or a whole invoice, always with a reason,
and promo codes that give them. The one place any invoice (a plan's, a sale's, a custom one)
is discounted.

A discount is asked for (`give`), and posted only once approved: then it is a negative invoice
line, the invoice's totals shrink by it, and one ledger entry of its own moves it
(debit discounts with the net, debit vat_payable with the VAT in it, credit the member's
receivable), so revenue before discount is the revenue accounts and after discount is those
less the discounts account. Voiding the invoice reverses it with the rest (invoices.void_invoice).

Who approves: a manager or an admin giving it; the front desk up to DISCOUNT_DESK_LIMIT_PERCENT
(and DISCOUNT_DESK_LIMIT_AMOUNT when set) of what is discounted; above that a manager who types
their name and password on the same screen, or later from the approval queue. A promo code was
approved when a manager made it. While a discount waits, the invoice's reminders are paused:
what the member owes is not final yet.

The amount: a percentage of the discounted lines' totals, rounded half up to the cent; the VAT in
it is split over those lines by their share of the total (the last takes the remainder), each
share's net being share / (1 + its VAT rate), rounded half up; so a line's net, VAT and total
keep adding up, before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from portal import audit
from portal.billing import invoices, ledger
from portal.billing.ledger import credit, debit
from portal.lib import db
from portal.lib.clock import now, today
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.money import CENT, Money
from portal.members.holds import announce_holds
from portal.settings import get_settings
from tables.billing import Allocation, Invoice, InvoiceLine
from tables.discounts import Discount, PromoCode

KINDS = {"percent": "Percent", "amount": "Amount"}
PAUSED = "A discount is waiting for a manager's approval"


class NeedsApproval(RuleBroken):
    """Above the front desk's limit, with no manager to approve it."""


@dataclass(frozen=True)
class Ask:
    kind: str  # percent | amount
    value: Decimal
    reason: str
    line_id: int | None = None  # None: the whole invoice


def amount_of(kind: str, value: Decimal, base: Money) -> Money:
    return base * (value / Decimal(100)) if kind == "percent" else Money(value, base.currency)


def vat_split(amount: Money, lines: list[dict]) -> tuple[Money, Money]:
    """(net, VAT) in `amount` taken off `lines`, shared by their totals (see the module's note)."""
    cur = amount.currency
    base = sum((Decimal(line["total"]) for line in lines), Decimal(0))
    net, left = Money.zero(cur), amount
    for i, line in enumerate(lines):
        share = left if i == len(lines) - 1 else Money(
            (amount.amount * Decimal(line["total"]) / base).quantize(CENT, rounding=ROUND_HALF_UP), cur)
        left = left - share
        rate = Decimal(line["vat_rate"]) / Decimal(100)
        net = net + Money((share.amount / (1 + rate)).quantize(CENT, rounding=ROUND_HALF_UP), cur)
    return net, amount - net


def desk_may_give(amount: Money, base: Money) -> bool:
    settings = get_settings()
    if amount.amount * 100 > settings.discount_desk_limit_percent * base.amount:
        return False
    return not (settings.discount_desk_limit_amount and amount.amount > settings.discount_desk_limit_amount)


def desk_limit_text() -> str:
    settings = get_settings()
    text = f"{settings.discount_desk_limit_percent.normalize():f}%"
    if settings.discount_desk_limit_amount:
        text += f" or {settings.currency} {settings.discount_desk_limit_amount:,}"
    return text


async def _lines(invoice_id: int) -> list[dict]:
    """The invoice's priced lines (not its discount lines), each with what is already off it.
    One query."""
    return await InvoiceLine.raw(
        "SELECT l.*, s.item, coalesce(sum(d.amount) FILTER (WHERE d.status <> 'rejected'), 0) AS discounted "
        "FROM invoice_line l LEFT JOIN sale_line s ON s.invoice_line = l.id "
        "LEFT JOIN discount d ON d.invoice_line = l.id "
        "WHERE l.invoice = {} AND l.total > 0 GROUP BY l.id, s.item ORDER BY l.id", invoice_id)


async def _locked_invoice(invoice_id: int) -> dict:
    invoice = await Invoice.select(Invoice.member).where(Invoice.id == invoice_id).first()
    if not invoice:
        raise NotFound("invoice")
    await invoices.lock_member(invoice["member"])
    invoice = await Invoice.select().where(Invoice.id == invoice_id).lock_rows().first()
    if invoice["status"] == "void":
        raise RuleBroken("This invoice is void", field="value")
    if invoice["status"] == "paid":
        raise RuleBroken("This invoice is paid: nothing is left to discount", field="value")
    return invoice


async def give(invoice_id: int, ask: Ask | None, *, staff_id: int, role: str, approver_id: int | None = None,
               promo_code: str = "", queue: bool = False) -> dict:
    async with db.transaction():
        return await _give(invoice_id, ask, staff_id=staff_id, role=role, approver_id=approver_id,
                           promo_code=promo_code, queue=queue)


async def _give(invoice_id: int, ask: Ask | None, *, staff_id: int, role: str, approver_id: int | None,
                promo_code: str, queue: bool) -> dict:
    """Ask for a discount (or use a promo code instead of `ask`; `ask.reason` then adds to the
    code's). Posted at once when a manager gives it, approves it on the spot (`approver_id`), the
    front desk stays within its limit, or it is a promo code; otherwise (or with `queue`) it waits
    for the approval queue. Raises NeedsApproval above the desk's limit with no approver and no
    `queue`, and RuleBroken (naming the field) for anything else wrong."""
    invoice = await _locked_invoice(invoice_id)
    cur = invoice["currency"]
    lines = await _lines(invoice_id)
    promo = None
    if promo_code.strip():
        promo = await _usable_promo(promo_code, invoice, lines)
        targets = [line for line in lines if _promo_fits(promo, invoice, line)]
        kind, value = promo["kind"], promo["value"]
        reason = f"Promo code {promo['code']}" + (f": {ask.reason}" if ask and ask.reason.strip() else "")
        line_id = targets[0]["id"] if len(targets) == 1 else None
    else:
        if ask is None:
            raise RuleBroken("Enter a percentage or an amount", field="value")
        kind, value, reason, line_id = ask.kind, ask.value, ask.reason.strip(), ask.line_id
        if kind not in KINDS:
            raise RuleBroken("Choose percent or amount", field="kind")
        if not reason:
            raise RuleBroken("Give a reason for the discount", field="reason")
        targets = [line for line in lines if line_id is None or line["id"] == line_id]
        if not targets:
            raise RuleBroken("Choose a line of this invoice", field="line")
    if value <= 0 or (kind == "percent" and value > 100):
        raise RuleBroken("A percentage is more than 0 and at most 100" if kind == "percent"
                         else "A discount is more than nothing", field="value")
    base = Money(sum((Decimal(t["total"]) for t in targets), Decimal(0)), cur)
    amount = amount_of(kind, value, base)
    if not amount:
        raise RuleBroken("That discount rounds to nothing", field="value")
    pending = await Discount.raw("SELECT coalesce(sum(amount), 0) AS s FROM discount WHERE invoice = {} AND status = 'pending'",
                                 invoice_id)
    room = Money(invoice["total"] - pending[0]["s"], cur)
    if line_id is not None:
        room = min(room, Money(targets[0]["total"] - targets[0]["discounted"], cur))
    if amount > room:
        raise RuleBroken(f"A discount cannot be more than the {room.format()} left to discount", field="value")
    net, vat = vat_split(amount, targets)

    manager = role in ("manager", "admin")
    if promo:
        approver = promo["created_by"] or staff_id
    elif manager:
        approver = staff_id
    elif approver_id is not None:
        approver = approver_id
    elif queue or not desk_may_give(amount, base):
        approver = None
    else:
        approver = staff_id
    if approver is None and not queue:
        raise NeedsApproval(f"{amount.format()} is above the front desk's limit ({desk_limit_text()}): "
                            "a manager approves it here, or send it to the approval queue", field="value")
    row = (await Discount.insert(Discount(
        invoice=invoice_id, member=invoice["member"], invoice_line=line_id, kind=kind, value=value,
        amount=amount.amount, net=net.amount, vat=vat.amount, currency=cur, reason=reason,
        promo=promo["id"] if promo else None, requested_by=staff_id,
    )).returning(*Discount.all_columns()))[0]
    await audit.record("discount.asked", "invoice", invoice_id, staff_id=staff_id, reason=reason,
                       details={"discount": row["id"], "amount": str(amount.amount), "kind": kind, "value": str(value)})
    if approver is None:
        await Invoice.update({Invoice.reminders_paused: PAUSED}).where(
            (Invoice.id == invoice_id) & (Invoice.reminders_paused == ""))
        return row
    return await _post(row, invoice, lines, approver)


async def _post(discount: dict, invoice: dict, lines: list[dict], approver_id: int) -> dict:
    """The approved discount into the invoice and the books. Caller holds the member lock."""
    cur = invoice["currency"]
    amount, net, vat = (Money(discount[k], cur) for k in ("amount", "net", "vat"))
    target = next((line for line in lines if line["id"] == discount["invoice_line"]), None)
    label = f"{discount['value'].normalize():f}% " if discount["kind"] == "percent" else ""
    description = (f"Discount {label}on {target['description']}: " if target else f"Discount {label}: ").replace(" :", ":")
    line_id = (await InvoiceLine.insert(InvoiceLine(
        invoice=invoice["id"], description=(description + discount["reason"])[:200], quantity=1,
        unit_price=-amount.amount, vat_rate=_rate_of([target] if target else lines), vat_inclusive=True,
        net=-net.amount, vat=-vat.amount, total=-amount.amount,
    )).returning(InvoiceLine.id))[0]["id"]
    member = invoice["member"]
    entry = await ledger.post("discount", [
        debit("discounts", net),
        debit("vat_payable", vat),
        credit("receivable", amount, member=member),
    ], memo=f"Discount on {invoice['number']}: {discount['reason']}", staff_id=approver_id, invoice_id=invoice["id"])
    total = Money(invoice["total"], cur) - amount
    paid = Money(invoice["paid"], cur)
    # Already paid beyond the new total (approved after a payment): that much is the member's credit.
    over = paid - total if paid > total else Money.zero(cur)
    if over:
        back = await ledger.post("discount_overpaid", [
            debit("receivable", over, member=member),
            credit("member_credit", over, member=member),
        ], memo=f"Paid beyond {invoice['number']} after its discount", staff_id=approver_id, invoice_id=invoice["id"])
        await Allocation.insert(Allocation(invoice=invoice["id"], payment=None, amount=-over.amount, entry=back))
    await invoices.change_totals(invoice, total=total, subtotal=Money(invoice["subtotal"], cur) - net,
                                 tax=Money(invoice["tax_total"], cur) - vat, paid=paid - over, staff_id=approver_id)
    await Discount.update({Discount.status: "approved", Discount.approved_by: approver_id, Discount.entry: entry,
                           Discount.discount_line: line_id, Discount.decided_at: now()}).where(Discount.id == discount["id"])
    await _unpause_when_settled(invoice["id"])
    await audit.record("discount.approved", "invoice", invoice["id"], staff_id=approver_id, reason=discount["reason"],
                       details={"discount": discount["id"], "amount": str(amount.amount), "net": str(net.amount),
                                "vat": str(vat.amount)})
    if over:
        await invoices.apply_credit(member, staff_id=approver_id)
    await announce_holds([member])
    return {**discount, "status": "approved", "approved_by": approver_id, "entry": entry, "discount_line": line_id}


def _rate_of(lines: list[dict]) -> Decimal:
    """The VAT rate a discount's line shows: its lines' one rate (0 when they mix rates: its VAT is then
    their shares' VAT, as vat_split made it)."""
    rates = {Decimal(line["vat_rate"]) for line in lines}
    return rates.pop() if len(rates) == 1 else Decimal(0)


async def _unpause_when_settled(invoice_id: int) -> None:
    await Invoice.raw(
        "UPDATE invoice SET reminders_paused = '' WHERE id = {} AND reminders_paused = {} "
        "AND NOT EXISTS (SELECT 1 FROM discount WHERE invoice = {} AND status = 'pending')", invoice_id, PAUSED, invoice_id)


async def _pending(discount_id: int) -> tuple[dict, dict]:
    row = await Discount.select().where(Discount.id == discount_id).first()
    if not row:
        raise NotFound("discount")
    invoice = await Invoice.select(Invoice.member).where(Invoice.id == row["invoice"]).first()
    await invoices.lock_member(invoice["member"])
    row = await Discount.select().where(Discount.id == discount_id).lock_rows().first()
    if row["status"] != "pending":
        raise RuleBroken(f"This discount was already {row['status']}")
    return row, await Invoice.select().where(Invoice.id == row["invoice"]).lock_rows().first()


async def approve(discount_id: int, manager_id: int) -> dict:
    async with db.transaction():
        return await _approve(discount_id, manager_id)


async def _approve(discount_id: int, manager_id: int) -> dict:
    row, invoice = await _pending(discount_id)
    if invoice["status"] == "void":
        raise RuleBroken("Its invoice was voided")
    cur = invoice["currency"]
    # Payments since it was asked for may leave less to discount than it takes off: then it is
    # refused here rather than making the invoice negative.
    if Money(row["amount"], cur) > Money(invoice["total"], cur):
        raise RuleBroken(f"Its invoice now totals {Money(invoice['total'], cur).format()}: less than this discount")
    return await _post(row, invoice, await _lines(invoice["id"]), manager_id)


async def reject(discount_id: int, manager_id: int, note: str = "") -> dict:
    async with db.transaction():
        return await _reject(discount_id, manager_id, note)


async def _reject(discount_id: int, manager_id: int, note: str) -> dict:
    row, invoice = await _pending(discount_id)
    await Discount.update({Discount.status: "rejected", Discount.approved_by: manager_id, Discount.decided_at: now(),
                           Discount.decision_note: note.strip()[:500]}).where(Discount.id == discount_id)
    await _unpause_when_settled(invoice["id"])
    await audit.record("discount.rejected", "invoice", invoice["id"], staff_id=manager_id, reason=note.strip(),
                       details={"discount": discount_id, "amount": str(row["amount"])})
    return {**row, "status": "rejected"}


# --- promo codes --------------------------------------------------------------------------------

def _promo_fits(promo: dict, invoice: dict, line: dict) -> bool:
    """A code with no plans and no items fits every line; otherwise a plan invoice's lines fit
    when its plan is listed, and a sale's line when its catalogue item is."""
    if not promo["plans"] and not promo["items"]:
        return True
    if line["item"] is not None:
        return line["item"] in promo["items"]
    return invoice["plan"] is not None and invoice["plan"] in promo["plans"]


async def _usable_promo(code: str, invoice: dict, lines: list[dict]) -> dict:
    code = code.strip().upper()
    promo = await PromoCode.select().where(PromoCode.code == code).lock_rows().first()
    if not promo or not promo["active"]:
        raise RuleBroken(f"There is no promo code {code}", field="promo_code")
    day = today()
    if day < promo["valid_from"]:
        raise RuleBroken(f"Code {code} starts on {promo['valid_from']:%d %b %Y}", field="promo_code")
    if day > promo["valid_to"]:
        raise RuleBroken(f"Code {code} ended on {promo['valid_to']:%d %b %Y}", field="promo_code")
    uses = (await Discount.raw(
        "SELECT count(*) AS total, count(*) FILTER (WHERE member = {}) AS mine FROM discount "
        "WHERE promo = {} AND status <> 'rejected'", invoice["member"], promo["id"]))[0]
    if promo["max_uses"] is not None and uses["total"] >= promo["max_uses"]:
        raise RuleBroken(f"Code {code} has been used its {promo['max_uses']} times: it is used up", field="promo_code")
    if promo["max_per_member"] is not None and uses["mine"] >= promo["max_per_member"]:
        times = "once" if promo["max_per_member"] == 1 else f"{promo['max_per_member']} times"
        raise RuleBroken(f"Code {code} may be used {times} per member, and this member has", field="promo_code")
    if not any(_promo_fits(promo, invoice, line) for line in lines):
        raise RuleBroken(f"Code {code} does not apply to this invoice's plan or items", field="promo_code")
    return promo


@dataclass(frozen=True)
class PromoForm:
    code: str
    kind: str
    value: Decimal
    description: str
    valid_from: date
    valid_to: date
    max_uses: int | None
    max_per_member: int | None
    plans: list[int]
    items: list[int]


async def create_promo(form: PromoForm, staff_id: int) -> dict:
    async with db.transaction():
        return await _create_promo(form, staff_id)


async def _create_promo(form: PromoForm, staff_id: int) -> dict:
    if await PromoCode.exists().where(PromoCode.code == form.code):
        raise RuleBroken("Another code is spelt the same", field="code")
    row = (await PromoCode.insert(PromoCode(
        code=form.code, kind=form.kind, value=form.value, description=form.description, valid_from=form.valid_from,
        valid_to=form.valid_to, max_uses=form.max_uses, max_per_member=form.max_per_member, plans=form.plans,
        items=form.items, created_by=staff_id,
    )).returning(*PromoCode.all_columns()))[0]
    await audit.record("promo.created", "promo_code", row["id"], staff_id=staff_id,
                       details={"code": form.code, "kind": form.kind, "value": str(form.value)})
    return row
