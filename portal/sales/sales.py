"""Selling at the desk and custom invoices: both become an ordinary invoice (issued and due the
day it is made, for a sale), so receipts, PDFs, statements, dues and the ledger need nothing new.

A sale paid now is an invoice plus a desk payment against it through the payment service
(complete_payment), in one transaction: the same receipt, PDF and 80 mm slip as any payment.
Cash: what was tendered and the change are kept on the sale, exact to the cent. Left on the
member's account: the invoice stays open like any other. A discount (issue 14, later) will be
another invoice line (negative, pointing at the line it discounts through sale_line) posted to a
discounts account: lines here are built one per item so a discount can name the one it reduces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from portal import audit
from portal.billing import discounts
from portal.billing.discounts import Ask, amount_of, desk_limit_text, desk_may_give
from portal.billing.invoices import Line, issue_invoice, lock_member
from portal.lib import db
from portal.lib.clock import now, today
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.forms import MAX_DATE
from portal.lib.i18n import S_
from portal.lib.money import Money
from portal.payments import state
from portal.payments.limits import check_confirmed, over_limit
from portal.payments.service import DESK_METHODS, complete_payment, desk_of
from portal.sales.walkin import walkin_member_id
from tables.billing import Invoice, InvoiceLine, Payment
from tables.members import Member
from tables.sales import CatalogueItem, Sale, SaleLine, SessionPack

SALE_METHODS = {**DESK_METHODS, "account": "On the member's account"}
MAX_QUANTITY = 99


@dataclass(frozen=True)
class SaleResult:
    sale: dict
    invoice: dict
    payment: dict | None
    created: bool  # False: the form's key had made this sale already


@dataclass
class SaleRequest:
    member_id: int | None  # None: a walk-in
    quantities: dict[int, int]  # catalogue item id -> quantity
    method: str
    tendered: Money | None = None
    reference: str = ""
    buyer_name: str = ""
    buyer_phone: str = ""
    confirmed: bool = False
    location_id: int | None = None
    problems: list[RuleBroken] = field(default_factory=list)
    # A discount given while selling, off the whole sale (portal.billing.discounts, the same rule and
    # the same desk limit): the desk within its limit, a manager, or the desk with a manager's
    # approval typed on the same screen (approver_id).
    discount: Ask | None = None
    role: str = "front_desk"
    approver_id: int | None = None


def discount_off(request: SaleRequest, total: Money) -> Money:
    """What the sale's discount takes off `total` (nothing without one)."""
    if request.discount is None:
        return Money.zero(total.currency)
    return amount_of(request.discount.kind, request.discount.value, total)


def _lines(items: list[dict], quantities: dict[int, int]) -> list[tuple[dict, Line]]:
    return [(item, Line(item["name"], Money(item["price"], item["currency"]), quantities[item["id"]],
                        item["vat_rate"], item["vat_inclusive"], item["revenue_account"]))
            for item in items]


def sale_total(lines: list[Line], currency: str) -> Money:
    return sum((line.amounts()[2] for line in lines), Money.zero(currency))


async def sale_problems(request: SaleRequest, currency: str) -> tuple[list[RuleBroken], list[tuple[dict, Line]]]:
    """Every rule the sale breaks, each naming its field, and the priced lines (item, Line)."""
    problems = []
    wanted = {item_id: qty for item_id, qty in request.quantities.items() if qty}
    items = await CatalogueItem.select().where(CatalogueItem.id.is_in(list(wanted)) & (CatalogueItem.active == True)  # noqa: E712
                                               ).order_by(CatalogueItem.id) if wanted else []
    if not wanted:
        problems.append(RuleBroken(S_("Add at least one item"), field="items"))
    elif len(items) != len(wanted):
        problems.append(RuleBroken(S_("An item is no longer sold: choose from the list"), field="items"))
    if any(qty < 0 or qty > MAX_QUANTITY for qty in wanted.values()):
        problems.append(RuleBroken(f"Quantities are 1 to {MAX_QUANTITY}", field="items"))
    if request.member_id is None and any(item["kind"] == "pack" for item in items):
        problems.append(RuleBroken(S_("Session packs are sold to members: open the member's page to sell one"),
                                   field="items"))
    lines = _lines(items, wanted)
    total = sale_total([line for _, line in lines], currency)
    if (ask := request.discount) is not None:
        off = discount_off(request, total)
        if not ask.reason.strip():
            problems.append(RuleBroken(S_("Give a reason for the discount"), field="discount_reason"))
        if ask.kind not in discounts.KINDS:
            problems.append(RuleBroken(S_("Choose percent or amount"), field="discount_kind"))
        elif ask.value <= 0 or (ask.kind == "percent" and ask.value > 100):
            problems.append(RuleBroken(S_("A percentage is more than 0 and at most 100") if ask.kind == "percent"
                                       else S_("A discount is more than nothing"), field="discount_value"))
        elif total.amount > 0 and off > total:
            problems.append(RuleBroken(f"A discount cannot be more than the sale's {total.format()}",
                                       field="discount_value"))
        elif total.amount > 0 and not off:
            problems.append(RuleBroken(S_("That discount rounds to nothing"), field="discount_value"))
        elif (total.amount > 0 and request.role not in ("manager", "admin") and request.approver_id is None
              and not desk_may_give(off, total)):
            problems.append(RuleBroken(f"{off.format()} is above the front desk's limit ({desk_limit_text()}): "
                                       "a manager types their name and password below to approve it",
                                       field="discount_value"))
        else:
            total = total - off
    if request.method not in SALE_METHODS:
        problems.append(RuleBroken(S_("Choose how it is paid"), field="method"))
    elif request.method == "account":
        if request.member_id is None:
            problems.append(RuleBroken(S_("A walk-in pays now: only a member's sale can go on their account"), field="method"))
    else:
        if request.method == "cash" and total.amount > 0:
            if request.tendered is None:
                problems.append(RuleBroken(S_("Enter the cash tendered"), field="tendered"))
            elif request.tendered < total:
                problems.append(RuleBroken(f"Cash tendered is less than the total, {total.format()}", field="tendered"))
        if request.method in ("bank", "cheque") and not request.reference.strip():
            problems.append(RuleBroken("Enter the cheque number" if request.method == "cheque" else "Enter the bank reference",
                                       field="reference"))
        if total.amount > 0 and (too_much := over_limit(request.method, total)):
            problems.append(RuleBroken(str(too_much), field="method"))
    return problems, lines


async def sell(request: SaleRequest, *, idempotency_key: str, staff_id: int | None, currency: str) -> SaleResult:
    """Make the sale: invoice, payment (unless on account), packs. A key seen before returns the
    sale it made. Raises RuleBroken (field named) for the first rule broken, NeedsConfirmation for
    a large amount not yet confirmed."""
    if (done := await _sale_by_key(idempotency_key)) is not None:
        return done
    problems, priced = await sale_problems(request, currency)
    if problems:
        raise problems[0]
    lines = [line for _, line in priced]
    total = sale_total(lines, currency)
    paying = request.method != "account"
    if paying:
        check_confirmed(total, request.confirmed)
    location_id = await desk_of(request.location_id) if paying else request.location_id
    async with db.transaction():
        if request.member_id is not None:
            if not await Member.exists().where(Member.id == request.member_id):
                raise NotFound("member")
            target = request.member_id
        else:
            target = await walkin_member_id()
        await lock_member(target)
        if (done := await _sale_by_key(idempotency_key)) is not None:  # the same form, twice at once
            return done
        invoice = await issue_invoice(target, lines, kind="other", staff_id=staff_id)
        if request.member_id is None and invoice["paid"]:
            # Credit on the walk-in account is someone's money (a voided sale not yet refunded, a
            # Paybill payment to account WALKIN): never a discount for the next stranger.
            raise RuleBroken("The walk-in account holds credit from an earlier sale: a manager refunds it from "
                             "the walk-in account's page first", field="items")
        if request.discount is not None:
            # Off the whole sale before it is paid: its own line and ledger entry (discounts account).
            try:
                await discounts._give(invoice["id"], request.discount, staff_id=staff_id, role=request.role,
                                      approver_id=request.approver_id, promo_code="", queue=False)
            except RuleBroken as e:
                raise RuleBroken(str(e), field=f"discount_{e.field}" if e.field in ("value", "reason", "kind")
                                 else "discount_value") from e
            invoice = await Invoice.select().where(Invoice.id == invoice["id"]).first()
        # Credit the member held has been used on it already: the desk takes what is left.
        due = Money(invoice["total"] - invoice["paid"], invoice["currency"])
        payment = None
        tendered = change = None
        if paying and due.amount > 0:
            if request.method == "cash":
                tendered = request.tendered
                if tendered < due:
                    raise RuleBroken(f"Cash tendered is less than {due.format()}", field="tendered")
                change = tendered - due
            payment_id, _ = await state.open_payment(
                {"member": target, "invoice": invoice["id"], "method": request.method, "amount": due.amount,
                 "currency": due.currency, "reference": request.reference.strip(),
                 "idempotency_key": f"sale:{idempotency_key}", "staff": staff_id, "location": location_id,
                 "note": f"Sale {invoice['number']}"},
                reason=f"{DESK_METHODS[request.method]} for a sale at the desk", staff_id=staff_id)
            payment = await complete_payment(payment_id, reason=f"{DESK_METHODS[request.method]} received for a sale",
                                             staff_id=staff_id)
            invoice = await Invoice.select().where(Invoice.id == invoice["id"]).first()
        sale = (await Sale.insert(Sale(
            invoice=invoice["id"], kind="sale", member=request.member_id, buyer_name=request.buyer_name.strip()[:80],
            buyer_phone=request.buyer_phone, method=request.method, payment=payment["id"] if payment else None,
            tendered=tendered.amount if tendered is not None else None,
            change=change.amount if change is not None else None,
            idempotency_key=idempotency_key, staff=staff_id, location=location_id, created_at=now(),
        )).returning(*Sale.all_columns()))[0]
        invoice_lines = await InvoiceLine.select(InvoiceLine.id).where(InvoiceLine.invoice == invoice["id"]).order_by(
            InvoiceLine.id)
        await SaleLine.insert(*[SaleLine(sale=sale["id"], invoice_line=row["id"], item=item["id"], category=item["category"])
                                for row, (item, _) in zip(invoice_lines, priced)])
        packs = [SessionPack(member=request.member_id, item=item["id"], sale=sale["id"],
                             sessions=item["sessions"] * line.quantity, used=0, created_at=now())
                 for item, line in priced if item["kind"] == "pack"]
        if packs:
            await SessionPack.insert(*packs)
        await audit.record("sale.made", "sale", sale["id"], staff_id=staff_id, details={
            "invoice": invoice["number"], "total": str(total.amount), "method": request.method,
            "member": request.member_id, "walk_in": request.member_id is None,
            "items": {item["name"]: line.quantity for item, line in priced},
            "tendered": str(tendered.amount) if tendered is not None else None,
            "change": str(change.amount) if change is not None else None,
            "discount": str(invoice_discount) if (invoice_discount := total.amount - invoice["total"]) else None,
            "sessions_given": sum(p.sessions for p in packs)})
    return SaleResult(sale, invoice, payment, created=True)


async def _sale_by_key(key: str) -> SaleResult | None:
    sale = await Sale.select().where(Sale.idempotency_key == key).first()
    if sale is None:
        return None
    invoice = await Invoice.select().where(Invoice.id == sale["invoice"]).first()
    payment = await Payment.select().where(Payment.id == sale["payment"]).first() if sale["payment"] else None
    return SaleResult(sale, invoice, payment, created=False)


async def sale_lines(sale_id: int) -> list[dict]:
    return await InvoiceLine.raw(
        "SELECT il.description, il.quantity, il.unit_price, il.total, sl.category FROM sale_line sl "
        "JOIN invoice_line il ON il.id = sl.invoice_line WHERE sl.sale = {} ORDER BY il.id", sale_id)


# --- custom invoices ----------------------------------------------------------------------------

MAX_CUSTOM_LINES = 5


async def issue_custom_invoice(member_id: int, lines: list[Line], *, due_date: date, reason: str,
                               idempotency_key: str, staff_id: int | None) -> tuple[dict, bool]:
    """A manager's invoice of free lines, with a due date and a reason (kept on its sale row and in
    the audit log). (invoice, created); a key seen before returns the invoice it made."""
    reason = reason.strip()
    if not reason:
        raise RuleBroken(S_("Give a reason for this invoice"), field="reason")
    if not lines:
        raise RuleBroken(S_("Add at least one line"), field="lines")
    if due_date < today() or due_date > MAX_DATE:
        raise RuleBroken(S_("The due date is today or later"), field="due_date")
    if (done := await _sale_by_key(idempotency_key)) is not None:
        return done.invoice, False
    async with db.transaction():
        if not await Member.exists().where(Member.id == member_id):
            raise NotFound("member")
        await lock_member(member_id)
        if (done := await _sale_by_key(idempotency_key)) is not None:
            return done.invoice, False
        invoice = await issue_invoice(member_id, lines, kind="other", due_date=due_date, staff_id=staff_id)
        sale = (await Sale.insert(Sale(
            invoice=invoice["id"], kind="custom", member=member_id, method="account", reason=reason,
            idempotency_key=idempotency_key, staff=staff_id, created_at=now(),
        )).returning(Sale.id))[0]
        invoice_lines = await InvoiceLine.select(InvoiceLine.id).where(InvoiceLine.invoice == invoice["id"]).order_by(
            InvoiceLine.id)
        await SaleLine.insert(*[SaleLine(sale=sale["id"], invoice_line=row["id"], item=None, category="other")
                                for row in invoice_lines])
        await audit.record("invoice.custom", "invoice", invoice["id"], staff_id=staff_id, reason=reason,
                           details={"number": invoice["number"], "total": str(invoice["total"]),
                                    "due_date": due_date.isoformat(), "lines": len(lines)})
    return invoice, True


def line_total_preview(lines: list[Line]) -> Decimal:
    return sum((line.amounts()[2].amount for line in lines), Decimal(0))
