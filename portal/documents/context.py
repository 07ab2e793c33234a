"""Build the context of each PDF from the database (a fixed handful of queries per document).

What a receipt says about balances is what was true when the payment completed: it is read from
the payment's `settled` event, not recomputed later.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from portal.documents import branding
from portal.lib import i18n
from portal.lib.clock import now
from portal.lib.errors import NotFound
from portal.lib.formatting import payment_reference
from portal.lib.money import Money
from portal.payers import billto, payers
from portal.payments import state
from portal.payments.service import METHOD_LABELS
from portal.settings import get_settings
from tables.billing import CreditNote, Invoice, InvoiceLine, Payment
from tables.closes import DayClose
from tables.ledger import LedgerLeg
from tables.locations import Location
from tables.members import Member, Membership
from tables.payers import Payer
from tables.sales import Sale
from tables.staff import Staff
from tables.statuses import OPEN_INVOICE


def base() -> dict:
    s = get_settings()
    return {"gym": {"name": s.gym_name, "address": s.gym_address, "phone": s.gym_phone, "email": s.gym_email,
                    "kra_pin": s.gym_kra_pin, "logo": branding.logo_data_uri()}, "generated_at": now(), "timezone": s.timezone}


async def _member(member_id: int) -> dict:
    m = await Member.select().where(Member.id == member_id).first()
    if not m:
        raise NotFound("member")
    return {"name": f"{m['first_name']} {m['last_name']}", "number": m["member_number"], "phone": m["phone"],
            "email": m["email"] or "", "language": m["language"]}


async def _payer_party(payer_id: int) -> dict:
    """A payer where a document names who paid (receipts of a payer's payment)."""
    p = await Payer.select().where(Payer.id == payer_id).first()
    if not p:
        raise NotFound("payer")
    return {"name": p["name"], "number": "", "phone": p["phone"], "email": p["email"], "address": p["address"],
            "kra_pin": p["kra_pin"], "payer": True}


async def _staff_name(staff_id: int | None) -> str:
    if not staff_id:
        return ""
    row = await Staff.select(Staff.user.first_name, Staff.user.last_name, Staff.user.username).where(Staff.id == staff_id).first()
    if not row:
        return ""
    return " ".join(filter(None, [row["user.first_name"], row["user.last_name"]])) or row["user.username"]


async def invoice_context(invoice_id: int, pay_link: str | None = None) -> dict:
    inv = await Invoice.select().where(Invoice.id == invoice_id).first()
    if not inv:
        raise NotFound("invoice")
    # A discount's line (portal/billing/discounts.py) carries what the PDF says of it in the member's language.
    lines = await InvoiceLine.raw(
        "SELECT l.*, d.kind AS discount_kind, d.value AS discount_value, d.reason AS discount_reason "
        "FROM invoice_line l LEFT JOIN discount d ON d.discount_line = l.id WHERE l.invoice = {} ORDER BY l.id", invoice_id)
    member = await _member(inv["member"])
    period = ""
    if inv["membership"] and inv["kind"] == "new":
        ms = await Membership.select(Membership.start_date, Membership.end_date).where(Membership.id == inv["membership"]).first()
        # In the member's language, as the rest of the invoice ('01 Des 2026 – 28 Feb 2027').
        period = " – ".join(i18n.strftime(d, "%d %b %Y", member["language"]) for d in (ms["start_date"], ms["end_date"]))
    return {**base(), "invoice": {
        "number": inv["number"], "issue_date": inv["issue_date"], "due_date": inv["due_date"], "status": inv["status"],
        "currency": inv["currency"], "member": member,
        "lines": [{k: line[k] for k in ("description", "quantity", "unit_price", "vat_rate", "vat_inclusive", "net", "vat", "total",
                                        "discount_kind", "discount_value", "discount_reason")}
                  for line in lines],
        "subtotal": inv["subtotal"], "tax_total": inv["tax_total"], "total": inv["total"], "paid": inv["paid"],
        "balance": inv["total"] - inv["paid"] if inv["status"] != "void" else Decimal("0"),
        "pay_link": pay_link if inv["status"] in OPEN_INVOICE else None, "period": period,
        "bill_to": await billto.bill_to(invoice_id),  # a payer's name, address and PIN as at issue, or None
    }}


AFTER_DISCOUNT = i18n.N_("(after a discount of %(amount)s)")


async def receipt_context(payment_id: int) -> dict:
    p = await Payment.select().where(Payment.id == payment_id).first()
    if not p or not p["receipt_number"]:
        raise NotFound("receipt")
    facts = state.settlement_facts(await state.settlement_of(payment_id))
    numbers = [s["number"] for s in facts.get("settled", [])]
    descriptions = {}
    payer = facts.get("payer")  # a payer's payment (portal/payers/payments.py): it names the payer
    member = await _payer_party(payer["id"]) if payer else await _member(p["member"])
    lang = member.get("language")
    if numbers:
        rows = await InvoiceLine.select(InvoiceLine.invoice.number, InvoiceLine.description, InvoiceLine.quantity,
                                        InvoiceLine.total, InvoiceLine.invoice.currency,
                                        InvoiceLine.invoice.member.first_name, InvoiceLine.invoice.member.last_name).where(
            InvoiceLine.invoice.number.is_in(numbers)).order_by(InvoiceLine.id)
        by_invoice: dict[str, list[dict]] = {}
        off: dict[str, Decimal] = {}
        for row in rows:
            if row["total"] < 0:  # a discount's line: said once, in the member's language, after what was sold
                off[row["invoice.number"]] = off.get(row["invoice.number"], Decimal(0)) - row["total"]
                continue
            by_invoice.setdefault(row["invoice.number"], []).append(row)
        for number, lines in by_invoice.items():
            # A plan's one line reads as before; a desk sale's lines as "1 x Day pass, 2 x Water";
            # a payer's receipt names the member each invoice was for.
            text = lines[0]["description"] if len(lines) == 1 and lines[0]["quantity"] == 1 else \
                ", ".join(f"{line['quantity']} x {line['description']}" for line in lines)
            for_whom = f" ({lines[0]['invoice.member.first_name']} {lines[0]['invoice.member.last_name']})" if payer else ""
            if number in off:
                text += " " + i18n.gettext(lang, AFTER_DISCOUNT,
                                           amount=Money(off[number], lines[0]["invoice.currency"]).format())
            descriptions[number] = text + for_whom
    # A desk sale (portal/sales/sales.py): who bought, when a walk-in, and the cash tendered and change.
    sale = await Sale.select(Sale.member, Sale.buyer_name, Sale.buyer_phone, Sale.tendered, Sale.change).where(
        Sale.payment == payment_id).first()
    if sale and sale["member"] is None:
        member = {"name": sale["buyer_name"] or "Walk-in customer", "number": "Walk-in", "phone": sale["buyer_phone"],
                  "email": "", "language": member.get("language", "en")}
    return {**base(), "receipt": {
        "number": p["receipt_number"], "paid_at": p["completed_at"] or p["created_at"],
        "method_label": METHOD_LABELS[p["method"]], "reference": payment_reference(p), "amount": p["amount"],
        "currency": p["currency"], "member": member, "staff_name": await _staff_name(p["staff"]),
        "settled": [{"invoice_number": s["number"], "description": descriptions.get(s["number"], ""),
                     "amount": s["amount"]} for s in facts.get("settled", [])],
        "credit_added": facts.get("credit_added", Decimal("0")),
        "balance_owed": facts.get("balance_owed", Decimal("0")),
        "credit_balance": facts.get("credit_balance", Decimal("0")),
        "membership_note": facts.get("membership_note", ""),
        "membership_lapsed": facts.get("membership_lapsed", False),
        "tendered": sale["tendered"] if sale else None, "change": sale["change"] if sale else None,
    }}


async def credit_note_context(note_id: int) -> dict:
    n = await CreditNote.select().where(CreditNote.id == note_id).first()
    if not n:
        raise NotFound("credit note")
    if n["invoice"]:
        inv = await Invoice.select(Invoice.number, Invoice.total).where(Invoice.id == n["invoice"]).first()
        original = {"label": f"Invoice {inv['number']}", "amount": inv["total"]}
        method = ""
    else:
        pay = await Payment.select(Payment.receipt_number, Payment.amount, Payment.method).where(Payment.id == n["payment"]).first()
        original = {"label": f"Receipt {pay['receipt_number']}", "amount": pay["amount"]}
        method = METHOD_LABELS[pay["method"]]
    return {**base(), "credit_note": {
        "number": n["number"], "date": n["created_at"].astimezone(get_settings().tz).date(), "kind": n["kind"],
        "reason": n["reason"], "currency": n["currency"], "amount": n["amount"], "member": await _member(n["member"]),
        "original": original, "staff_name": await _staff_name(n["staff"]), "method_label": method,
    }}


STATEMENT_SQL = """
SELECT e.id, e.at, e.kind, e.memo, sum(l.amount) AS amount
FROM ledger_leg l JOIN ledger_entry e ON e.id = l.entry
WHERE l.member = {} AND l.account IN ('receivable', 'member_credit')
  AND (e.at AT TIME ZONE {})::date BETWEEN {} AND {}
GROUP BY e.id, e.at, e.kind, e.memo
HAVING sum(l.amount) <> 0
ORDER BY e.at, e.id
"""

OPENING_SQL = """
SELECT coalesce(sum(l.amount), 0) AS amount
FROM ledger_leg l JOIN ledger_entry e ON e.id = l.entry
WHERE l.member = {} AND l.account IN ('receivable', 'member_credit') AND (e.at AT TIME ZONE {})::date < {}
"""

KIND_LABEL = {"invoice_issued": "Invoice", "payment_received": "Payment", "void": "Invoice voided",
              "refund": "Refund", "credit_applied": "Credit applied", "credit_held": "Credit held",
              "prorate_credit": "Unused days credited"}


async def statement_context(member_id: int, start: date, end: date) -> dict:
    """Opening balance, every movement in the period, closing balance (positive = owes)."""
    tz = get_settings().timezone
    opening = (await LedgerLeg.raw(OPENING_SQL, member_id, tz, start))[0]["amount"]
    rows = await LedgerLeg.raw(STATEMENT_SQL, member_id, tz, start, end)
    balance = opening
    entries = []
    debits = credits = Decimal("0")
    for r in rows:
        balance += r["amount"]
        debit_amt = r["amount"] if r["amount"] > 0 else Decimal("0")
        credit_amt = -r["amount"] if r["amount"] < 0 else Decimal("0")
        debits += debit_amt
        credits += credit_amt
        entries.append({"date": r["at"].astimezone(get_settings().tz).date(), "description": KIND_LABEL.get(r["kind"], r["kind"]),
                        "reference": r["memo"], "debit": debit_amt, "credit": credit_amt, "balance": balance})
    return {**base(), "statement": {
        "member": await _member(member_id), "period_start": start, "period_end": end, "currency": get_settings().currency,
        "opening_balance": opening, "entries": entries, "closing_balance": balance,
        "total_debits": debits, "total_credits": credits,
    }}


async def day_close_context(close_id: int) -> dict:
    row = await DayClose.select().where(DayClose.id == close_id).output(load_json=True).first()
    if not row:
        raise NotFound("close")
    location = await Location.select(Location.name).where(Location.id == row["location"]).first()
    return {**base(), "close": {
        "id": row["id"], "location": location["name"], "business_date": row["business_date"], "status": row["status"],
        "version": row["version"], "expected": row["expected"], "counted": row["counted"],
        "cash_expected": row["cash_expected"], "cash_counted": row["cash_counted"], "variance": row["variance"],
        "note": row["note"], "closed_at": row["closed_at"], "closed_by": await _staff_name(row["closed_by"]),
        "currency": get_settings().currency,
    }}


async def payer_statement_context(payer_id: int, day: date) -> dict:
    """Every open invoice addressed to the payer and those paid recently, across its members."""
    payer = await _payer_party(payer_id)
    st = await payers.statement(payer_id, day)
    return {**base(), "payer_statement": {
        "payer": payer, "day": day, "since": st["since"], "currency": get_settings().currency,
        "invoices": [{k: r[k] for k in ("number", "issue_date", "due_date", "member_name", "member_number", "status",
                                         "total", "paid", "balance")} for r in st["invoices"]],
        "total": st["total"], "paid": st["paid"], "balance": st["balance"],
    }}
