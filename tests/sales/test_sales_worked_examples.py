"""Selling at the desk and custom invoices, as worked examples: every figure below is computed by
hand in the docstring, and each story ends with the books agreeing (ledger balanced, every
invoice's paid amount equal to its allocations)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from portal.billing import closes, ledger
from portal.billing.invoices import Line, void_invoice
from portal.lib.clock import today
from portal.lib.errors import RuleBroken
from portal.payments.limits import NeedsConfirmation
from portal.sales import packs
from portal.sales.sales import SaleRequest, issue_custom_invoice, sell
from portal.sales.walkin import WALKIN_NUMBER
from tables.billing import Allocation, Invoice, InvoiceLine, Payment
from tables.ledger import LedgerLeg
from tables.members import Member
from tables.sales import Sale, SaleLine, SessionPack, SessionUse
from tests.billing.helpers import assert_books_agree, balances, desk_staff, invoice_for, kes
from tests.factories import make_location, make_member
from tests.sales.helpers import default_items

D = Decimal


async def _legs(entry_kind: str, invoice_id: int) -> dict[str, Decimal]:
    rows = await LedgerLeg.raw(
        "SELECT l.account, sum(l.amount) AS amount FROM ledger_leg l JOIN ledger_entry e ON e.id = l.entry "
        "WHERE e.kind = {} AND e.invoice = {} GROUP BY l.account", entry_kind, invoice_id)
    return {r["account"]: r["amount"] for r in rows}


async def test_a_walk_in_buys_a_day_pass_and_two_waters_with_cash_and_change(db):
    """A walk-in (name Brian, no phone) buys a Day pass (500) and 2 Water (100 each), 16 % VAT
    included, and hands over 1,000 in cash.

        Day pass   1 x 500.00 = 500.00   net 500/1.16 = 431.034.. -> 431.03, VAT 68.97
        Water      2 x 100.00 = 200.00   net 200/1.16 = 172.413.. -> 172.41, VAT 27.59
        total 700.00 = net 603.44 + VAT 96.56
        tendered 1,000.00 - 700.00 = change 300.00

    Ledger: cash +700.00 at the desk; revenue_fees -431.03, revenue_retail -172.41,
    vat_payable -96.56; the walk-in account owes nothing and holds no credit. The close of the
    desk expects the 700.00 cash, under the staff member who took it."""
    desk = await make_location()
    staff = await desk_staff()
    items = await default_items()
    result = await sell(SaleRequest(member_id=None, quantities={items["Day pass"]: 1, items["Water"]: 2},
                                    method="cash", tendered=kes(1000), buyer_name="Brian"),
                        idempotency_key="walkin-1", staff_id=staff, currency="KES")
    sale, invoice, payment = result.sale, result.invoice, result.payment
    assert (sale["tendered"], sale["change"], sale["member"], sale["buyer_name"]) == (D("1000.00"), D("300.00"), None, "Brian")
    assert (invoice["total"], invoice["subtotal"], invoice["tax_total"], invoice["status"], invoice["paid"]) == (
        D("700.00"), D("603.44"), D("96.56"), "paid", D("700.00"))
    assert invoice["issue_date"] == invoice["due_date"] == today()
    lines = await InvoiceLine.select().where(InvoiceLine.invoice == invoice["id"]).order_by(InvoiceLine.id)
    assert [(ln["description"], ln["quantity"], ln["net"], ln["vat"], ln["total"]) for ln in lines] == [
        ("Day pass", 1, D("431.03"), D("68.97"), D("500.00")), ("Water", 2, D("172.41"), D("27.59"), D("200.00"))]
    assert [r["category"] for r in await SaleLine.select(SaleLine.category).order_by(SaleLine.id)] == ["day_pass", "drinks"]
    assert (payment["method"], payment["amount"], payment["status"], payment["location"]) == ("cash", D("700.00"), "completed", desk)
    assert payment["receipt_number"].startswith("RCP-")
    walkin = await Member.select().where(Member.member_number == WALKIN_NUMBER).first()
    assert invoice["member"] == payment["member"] == walkin["id"] and walkin["phone"] == ""
    assert await balances(walkin["id"]) == (D("0"), D("0"))
    assert await _legs("invoice_issued", invoice["id"]) == {
        "receivable": D("700.00"), "revenue_fees": D("-431.03"), "revenue_retail": D("-172.41"), "vat_payable": D("-96.56")}
    assert sum((await ledger.trial_balance()).values()) == 0

    expected = await closes.expected(desk, today())
    assert expected["methods"]["cash"] == "700.00"
    assert [(c["staff"], c["expected"]) for c in expected["cash_by_staff"]] == [(staff, "700.00")]

    # The same form sent again (a double click): the same sale, no second payment.
    again = await sell(SaleRequest(member_id=None, quantities={items["Day pass"]: 1, items["Water"]: 2},
                                   method="cash", tendered=kes(1000)),
                       idempotency_key="walkin-1", staff_id=staff, currency="KES")
    assert (again.created, again.sale["id"]) == (False, sale["id"])
    assert await Payment.count() == 1 and await Invoice.count() == 1
    await assert_books_agree()


async def test_a_pt_pack_of_10_used_over_three_visits_leaves_7(db):
    """A member buys a PT pack of 10 (12,000, 16 % VAT included: net 10,344.83, VAT 1,655.17) with
    exactly 12,000 cash: change 0.00. Three visits use one session each: 10 - 3 = 7 left. Seven
    more use the rest, 0 left; an eleventh is refused and the count stays 0 (never below zero).
    Every use is audited with what is left."""
    await make_location()
    staff = await desk_staff()
    member = await make_member()
    items = await default_items()
    result = await sell(SaleRequest(member_id=member, quantities={items["PT pack of 10"]: 1}, method="cash",
                                    tendered=kes(12000)), idempotency_key="pack-1", staff_id=staff, currency="KES")
    assert (result.invoice["subtotal"], result.invoice["tax_total"], result.sale["change"]) == (
        D("10344.83"), D("1655.17"), D("0.00"))
    assert await _legs("invoice_issued", result.invoice["id"]) == {
        "receivable": D("12000.00"), "revenue_training": D("-10344.83"), "vat_payable": D("-1655.17")}
    assert await packs.sessions_remaining(member) == 10
    for _ in range(3):
        await packs.use_session(member, staff_id=staff)
    assert await packs.sessions_remaining(member) == 7
    assert [(p["name"], p["remaining"]) for p in await packs.packs_with_sessions(member)] == [("PT pack of 10", 7)]
    for _ in range(7):
        await packs.use_session(member, staff_id=staff)
    with pytest.raises(RuleBroken, match="No sessions left"):
        await packs.use_session(member, staff_id=staff)
    assert await packs.sessions_remaining(member) == 0
    assert (await SessionPack.select().first())["used"] == 10
    assert await SessionUse.count() == 10
    from tables.audit import AuditLog
    last = await AuditLog.select().where(AuditLog.action == "session.used").order_by(AuditLog.id, ascending=False).first()
    assert (last["details"] if isinstance(last["details"], dict) else __import__("json").loads(last["details"]))["remaining"] == 0
    await assert_books_agree()


async def test_a_member_puts_a_sale_on_account_and_credit_is_used_first(db):
    """A member holding 150.00 credit (paid 3,150 on a 3,000 invoice) buys a Protein shake (350) on
    their account: the credit pays 150, 200 stays open. Another shake with cash 500: the invoice's
    350 is taken (no credit left), change 150."""
    await make_location()
    staff = await desk_staff()
    member = await make_member()
    items = await default_items()
    first = await invoice_for(member, 3000, staff_id=staff)
    from tests.billing.helpers import pay
    await pay(member, 3150, staff_id=staff, invoice_id=first["id"])
    assert await balances(member) == (D("0"), D("150.00"))
    on_account = await sell(SaleRequest(member_id=member, quantities={items["Protein shake"]: 1}, method="account"),
                            idempotency_key="acct-1", staff_id=staff, currency="KES")
    assert (on_account.payment, on_account.invoice["status"], on_account.invoice["paid"]) == (None, "partially_paid", D("150.00"))
    assert await balances(member) == (D("200.00"), D("0"))
    cash = await sell(SaleRequest(member_id=member, quantities={items["Protein shake"]: 1}, method="cash",
                                  tendered=kes(500)), idempotency_key="cash-2", staff_id=staff, currency="KES")
    assert (cash.payment["amount"], cash.sale["change"], cash.invoice["status"]) == (D("350.00"), D("150.00"), "paid")
    assert await balances(member) == (D("200.00"), D("0"))
    await assert_books_agree()


async def test_sale_rules_refuse_with_the_field_named(db):
    """Not enough cash; a walk-in on account; a walk-in buying a pack; nothing chosen; a bank
    transfer without its reference; a large amount asked to be confirmed. Nothing is written."""
    await make_location()
    staff = await desk_staff()
    member = await make_member()
    items = await default_items()

    async def refused(request: SaleRequest, field: str, exc=RuleBroken):
        with pytest.raises(exc) as e:
            await sell(request, idempotency_key=f"bad-{field}-{request.method}", staff_id=staff, currency="KES")
        assert e.value.field == field, str(e.value)

    await refused(SaleRequest(None, {items["Day pass"]: 1}, "cash", tendered=kes("499.99")), "tendered")
    await refused(SaleRequest(None, {items["Day pass"]: 1}, "cash"), "tendered")
    await refused(SaleRequest(None, {items["Day pass"]: 1}, "account"), "method")
    await refused(SaleRequest(None, {items["PT pack of 10"]: 1}, "cash", tendered=kes(12000)), "items")
    await refused(SaleRequest(member, {}, "cash", tendered=kes(100)), "items")
    await refused(SaleRequest(member, {items["Day pass"]: 1}, "bank"), "reference")
    await refused(SaleRequest(member, {items["PT pack of 10"]: 9}, "bank", reference="EQ-1"), "amount", NeedsConfirmation)
    assert await Invoice.count() == 0 and await Payment.count() == 0 and await Sale.count() == 0
    await assert_books_agree()


async def test_a_custom_invoice_with_a_vat_exclusive_line_exact_to_the_cent(db):
    """A manager invoices a member for Towel hire, 3 x 333.33 at 16 % VAT added, and a Guest
    session 1 x 250.00 with 16 % VAT included, due in 7 days, reason "Towels lost on 3 Dec".

        Towel hire     net 3 x 333.33 = 999.99; total 999.99 x 1.16 = 1,159.9884 -> 1,159.99;
                       VAT 1,159.99 - 999.99 = 160.00
        Guest session  total 250.00; net 250/1.16 = 215.517.. -> 215.52; VAT 34.48
        invoice        net 1,215.51 + VAT 194.48 = total 1,409.99

    Voiding it reverses each revenue account it credited; the books agree after each step."""
    staff = await desk_staff()
    member = await make_member()
    due = today() + timedelta(days=7)
    invoice, created = await issue_custom_invoice(member, [
        Line("Towel hire", kes("333.33"), 3, D("16"), False),
        Line("Guest session", kes("250.00"), 1, D("16"), True),
    ], due_date=due, reason="Towels lost on 3 Dec", idempotency_key="custom-1", staff_id=staff)
    assert created
    assert (invoice["subtotal"], invoice["tax_total"], invoice["total"], invoice["due_date"], invoice["status"]) == (
        D("1215.51"), D("194.48"), D("1409.99"), due, "open")
    lines = await InvoiceLine.select().where(InvoiceLine.invoice == invoice["id"]).order_by(InvoiceLine.id)
    assert [(ln["net"], ln["vat"], ln["total"], ln["vat_inclusive"]) for ln in lines] == [
        (D("999.99"), D("160.00"), D("1159.99"), False), (D("215.52"), D("34.48"), D("250.00"), True)]
    assert (await Sale.select().first())["reason"] == "Towels lost on 3 Dec"
    assert await balances(member) == (D("1409.99"), D("0"))
    await assert_books_agree()
    again, created = await issue_custom_invoice(member, [Line("Towel hire", kes("333.33"), 3, D("16"), False)],
                                                due_date=due, reason="x", idempotency_key="custom-1", staff_id=staff)
    assert (again["id"], created) == (invoice["id"], False)
    with pytest.raises(RuleBroken) as e:
        await issue_custom_invoice(member, [Line("x", kes(1))], due_date=due, reason=" ", idempotency_key="c2",
                                   staff_id=staff)
    assert e.value.field == "reason"
    with pytest.raises(RuleBroken) as e:
        await issue_custom_invoice(member, [Line("x", kes(1))], due_date=today() - timedelta(days=1), reason="r",
                                   idempotency_key="c3", staff_id=staff)
    assert e.value.field == "due_date"
    await void_invoice(invoice["id"], "Towels found", staff)
    assert await balances(member) == (D("0"), D("0"))
    totals = await ledger.trial_balance()
    assert totals.get("revenue", D(0)) == 0 and totals["vat_payable"] == 0
    await assert_books_agree()


async def test_voiding_a_paid_walk_in_sale_reverses_each_revenue_account(db):
    """The walk-in's 700.00 sale (431.03 fees, 172.41 retail, 96.56 VAT) voided: each account is
    debited back what it was credited, and the 700.00 paid becomes the walk-in account's credit
    (to be refunded in cash at the desk: refund 700.00 leaves it at 0). Until then the next walk-in
    sale is refused, so that credit is never spent on a stranger; after it, a Water for 100 cash
    takes 100.00 (net 100/1.16 = 86.206.. -> 86.21 to revenue_retail): cash 700 - 700 + 100 = 100."""
    await make_location()
    staff = await desk_staff()
    items = await default_items()
    result = await sell(SaleRequest(None, {items["Day pass"]: 1, items["Water"]: 2}, "cash", tendered=kes(700)),
                        idempotency_key="v-1", staff_id=staff, currency="KES")
    await void_invoice(result.invoice["id"], "Sold by mistake", staff)
    assert await _legs("void", result.invoice["id"]) == {
        "receivable": D("0.00"), "revenue_fees": D("431.03"), "revenue_retail": D("172.41"), "vat_payable": D("96.56"),
        "member_credit": D("-700.00")}
    # Until that credit is refunded, no walk-in sale goes through (it would be spent on a stranger).
    with pytest.raises(RuleBroken, match="holds credit"):
        await sell(SaleRequest(None, {items["Water"]: 1}, "cash", tendered=kes(100)), idempotency_key="v-2",
                   staff_id=staff, currency="KES")
    from portal.payments.service import refund_payment
    await refund_payment(result.payment["id"], kes(700), "Sold by mistake", staff)
    after = await sell(SaleRequest(None, {items["Water"]: 1}, "cash", tendered=kes(100)), idempotency_key="v-3",
                       staff_id=staff, currency="KES")
    assert (after.payment["amount"], after.sale["change"]) == (D("100.00"), D("0.00"))
    walkin = result.invoice["member"]
    assert await balances(walkin) == (D("0"), D("0"))
    totals = await ledger.trial_balance()
    assert (totals["revenue_fees"], totals["revenue_retail"], totals["cash"]) == (D("0"), D("-86.21"), D("100.00"))
    assert await Allocation.count() == 3
    await assert_books_agree()
