"""Discounts and promo codes as worked examples: every figure computed by hand in the docstring,
each story ending with the books agreeing (ledger balanced, every invoice's paid amount equal to
its allocations). Plans carry VAT (VAT_RATE 16, prices include it), so a discount on a plan
carries its share of the VAT back out."""

from datetime import timedelta
from decimal import Decimal

import pytest

from portal.auth import create_staff
from portal.billing import discounts, ledger
from portal.billing.discounts import Ask, NeedsApproval
from portal.billing.invoices import void_invoice
from portal.lib.clock import today
from portal.lib.errors import RuleBroken
from portal.members.enrol import put_on_plan
from tables.billing import Invoice, InvoiceLine
from tables.discounts import Discount, PromoCode
from tables.ledger import LedgerLeg
from tables.members import Membership
from tests.billing.helpers import assert_books_agree, balances, invoice_for, pay
from tests.factories import make_location, make_member, make_plan
from tests.sales.helpers import default_items

D = Decimal


async def _people() -> tuple[int, int]:
    desk = await create_staff("deskdora", "desk-password-1", "front_desk")
    boss = await create_staff("mama", "manager-password-1", "manager")
    return desk, boss


async def _plan_invoice(member: int, plan: int) -> dict:
    membership = await put_on_plan(member, plan, today(), None)
    return await Invoice.select().where(Invoice.membership == membership.id).first()


async def _legs(kind: str, invoice_id: int) -> dict[str, Decimal]:
    rows = await LedgerLeg.raw(
        "SELECT l.account, sum(l.amount) AS amount FROM ledger_leg l JOIN ledger_entry e ON e.id = l.entry "
        "WHERE e.kind = {} AND e.invoice = {} GROUP BY l.account", kind, invoice_id)
    return {r["account"]: r["amount"] for r in rows}


async def test_a_ten_percent_student_discount_on_monthly(db):
    """Monthly 3,000 (16 % VAT included): net 3000/1.16 = 2586.206.. -> 2,586.21, VAT 413.79.
    The desk gives 10 % for a student (within its 10 % limit, so no manager is needed):

        discount 10 % x 3,000.00 = 300.00; its net 300/1.16 = 258.620.. -> 258.62, VAT 41.38
        invoice  total 3,000.00 - 300.00 = 2,700.00
                 net   2,586.21 - 258.62 = 2,327.59   (2700/1.16 = 2327.586.. -> 2,327.59: the same)
                 VAT     413.79 -  41.38 =   372.41

    The discount is its own entry: discounts +258.62 (debit), vat_payable +41.38, receivable
    -300.00. Revenue before discount is still 2,586.21 (credit); after: 2,586.21 - 258.62 =
    2,327.59. The member owes 2,700.00; paying 2,700.00 cash makes the invoice paid and the
    membership active."""
    await make_location()
    desk, _boss = await _people()
    member = await make_member()
    plan = await make_plan("Monthly", "3000")
    inv = await _plan_invoice(member, plan)
    assert (inv["total"], inv["subtotal"], inv["tax_total"]) == (D("3000.00"), D("2586.21"), D("413.79"))

    row = await discounts.give(inv["id"], Ask("percent", D("10"), "Student"), staff_id=desk, role="front_desk")
    assert (row["status"], row["amount"], row["net"], row["vat"], row["approved_by"]) == (
        "approved", D("300.00"), D("258.62"), D("41.38"), desk)
    inv = await Invoice.select().where(Invoice.id == inv["id"]).first()
    assert (inv["total"], inv["subtotal"], inv["tax_total"], inv["status"]) == (D("2700.00"), D("2327.59"), D("372.41"), "open")
    lines = await InvoiceLine.select().where(InvoiceLine.invoice == inv["id"]).order_by(InvoiceLine.id)
    assert [(ln["net"], ln["vat"], ln["total"]) for ln in lines] == [
        (D("2586.21"), D("413.79"), D("3000.00")), (D("-258.62"), D("-41.38"), D("-300.00"))]
    assert lines[1]["description"] == "Discount 10%: Student"
    assert await _legs("discount", inv["id"]) == {"discounts": D("258.62"), "vat_payable": D("41.38"),
                                                  "receivable": D("-300.00")}
    totals = await ledger.trial_balance()
    assert (totals["revenue"], totals["discounts"]) == (D("-2586.21"), D("258.62"))
    assert totals["revenue"] + totals["discounts"] == D("-2327.59")
    assert await balances(member) == (D("2700.00"), D("0"))
    await assert_books_agree()

    await pay(member, "2700", staff_id=desk)
    inv = await Invoice.select().where(Invoice.id == inv["id"]).first()
    assert (inv["status"], inv["paid"]) == ("paid", D("2700.00"))
    assert (await Membership.select().first())["status"] in ("active", "pending")
    await assert_books_agree()


async def test_above_the_desk_limit_is_refused_until_a_manager_approves_on_the_spot(db):
    """Monthly 3,000; the desk asks 20 % (corporate rate) = 600.00, above its 10 % limit (300.00):
    refused (NeedsApproval), nothing written. The manager approves on the same screen: 600.00 off,
    net 600/1.16 = 517.241.. -> 517.24, VAT 82.76; invoice 2,400.00 (net 2,586.21 - 517.24 =
    2,068.97, VAT 413.79 - 82.76 = 331.03), the manager recorded as approver."""
    await make_location()
    desk, boss = await _people()
    member = await make_member()
    inv = await _plan_invoice(member, await make_plan("Monthly", "3000"))
    with pytest.raises(NeedsApproval, match="above the front desk's limit"):
        await discounts.give(inv["id"], Ask("percent", D("20"), "Corporate rate"), staff_id=desk, role="front_desk")
    assert await Discount.count() == 0
    row = await discounts.give(inv["id"], Ask("percent", D("20"), "Corporate rate"), staff_id=desk, role="front_desk",
                               approver_id=boss)
    assert (row["status"], row["amount"], row["net"], row["vat"], row["approved_by"], row["requested_by"]) == (
        "approved", D("600.00"), D("517.24"), D("82.76"), boss, desk)
    inv = await Invoice.select().where(Invoice.id == inv["id"]).first()
    assert (inv["total"], inv["subtotal"], inv["tax_total"]) == (D("2400.00"), D("2068.97"), D("331.03"))
    await assert_books_agree()


async def test_above_the_limit_waits_in_the_queue_then_is_approved_or_rejected(db):
    """Two members on Monthly 3,000. The desk sends KES 500 goodwill (16.7 %, above 10 %) for each
    to the queue: both wait, nothing in the books, each invoice's reminders paused (not final).
    Member A pays 2,800 in the meantime (partially paid, 200 still owed). The manager approves
    A's: 500 off -> total 2,500.00, but 2,800 was paid, so 300.00 becomes A's credit (allocation
    -300.00), the invoice is paid; net of 500 = 500/1.16 = 431.034.. -> 431.03, VAT 68.97.
    The manager rejects B's: B's invoice stays 3,000.00, reminders resume, no discount entry."""
    await make_location()
    desk, boss = await _people()
    plan = await make_plan("Monthly", "3000")
    a, b = await make_member(), await make_member("Otieno", "Ouma")
    inv_a, inv_b = await _plan_invoice(a, plan), await _plan_invoice(b, plan)
    wait_a = await discounts.give(inv_a["id"], Ask("amount", D("500"), "Goodwill"), staff_id=desk, role="front_desk",
                                  queue=True)
    wait_b = await discounts.give(inv_b["id"], Ask("amount", D("500"), "Goodwill"), staff_id=desk, role="front_desk",
                                  queue=True)
    assert wait_a["status"] == wait_b["status"] == "pending"
    assert (await Invoice.select().where(Invoice.id == inv_a["id"]).first())["reminders_paused"] == discounts.PAUSED
    assert await _legs("discount", inv_a["id"]) == {}
    await pay(a, "2800", staff_id=desk)
    await assert_books_agree()

    await discounts.approve(wait_a["id"], boss)
    inv = await Invoice.select().where(Invoice.id == inv_a["id"]).first()
    assert (inv["total"], inv["paid"], inv["status"], inv["reminders_paused"]) == (D("2500.00"), D("2500.00"), "paid", "")
    assert await _legs("discount", inv_a["id"]) == {"discounts": D("431.03"), "vat_payable": D("68.97"),
                                                    "receivable": D("-500.00")}
    assert await balances(a) == (D("0"), D("300.00"))
    with pytest.raises(RuleBroken, match="already approved"):
        await discounts.approve(wait_a["id"], boss)

    await discounts.reject(wait_b["id"], boss, "Not our policy")
    inv = await Invoice.select().where(Invoice.id == inv_b["id"]).first()
    assert (inv["total"], inv["reminders_paused"]) == (D("3000.00"), "")
    assert await _legs("discount", inv_b["id"]) == {}
    await assert_books_agree()


async def test_a_promo_code_past_its_cap_is_refused(db):
    """Code STUDENT10: 10 % on the Monthly plan, 2 uses in all, 1 per member, valid from today
    for 30 days. Member A uses it (300.00 off 3,000); A's second invoice is refused (once per
    member); member B uses it (the 2nd use); member C is refused (used up). A code outside its
    dates, or on a plan it does not list (Quarterly 8,000), is refused with its reason."""
    await make_location()
    desk, boss = await _people()
    monthly, quarterly = await make_plan("Monthly", "3000"), await make_plan("Quarterly", "8000", months=3)
    day = today()
    await discounts.create_promo(discounts.PromoForm("STUDENT10", "percent", D("10"), "Students", day,
                                                     day + timedelta(days=30), 2, 1, [monthly], []), boss)
    await discounts.create_promo(discounts.PromoForm("OLD", "percent", D("10"), "", day - timedelta(days=30),
                                                     day - timedelta(days=1), None, None, [], []), boss)
    a, b, c = await make_member(), await make_member("B", "B"), await make_member("C", "C")
    inv_a = await _plan_invoice(a, monthly)
    row = await discounts.give(inv_a["id"], None, staff_id=desk, role="front_desk", promo_code="student10")
    assert (row["amount"], row["reason"], row["approved_by"], row["status"]) == (D("300.00"), "Promo code STUDENT10", boss, "approved")
    assert (await Invoice.select().where(Invoice.id == inv_a["id"]).first())["total"] == D("2700.00")
    other_a = await invoice_for(a, "3000")
    with pytest.raises(RuleBroken, match="once per member"):
        await discounts.give(other_a["id"], None, staff_id=desk, role="front_desk", promo_code="STUDENT10")
    inv_b = await _plan_invoice(b, monthly)
    await discounts.give(inv_b["id"], None, staff_id=desk, role="front_desk", promo_code="STUDENT10")
    inv_c = await _plan_invoice(c, monthly)
    with pytest.raises(RuleBroken, match="used its 2 times: it is used up") as refused:
        await discounts.give(inv_c["id"], None, staff_id=desk, role="front_desk", promo_code="STUDENT10")
    assert refused.value.field == "promo_code"
    with pytest.raises(RuleBroken, match="ended on"):
        await discounts.give(inv_c["id"], None, staff_id=desk, role="front_desk", promo_code="OLD")
    d = await make_member("D", "D")
    inv_d = await _plan_invoice(d, quarterly)
    await PromoCode.update({PromoCode.max_uses: None}).where(PromoCode.code == "STUDENT10")
    with pytest.raises(RuleBroken, match="does not apply"):
        await discounts.give(inv_d["id"], None, staff_id=desk, role="front_desk", promo_code="STUDENT10")
    assert await Discount.count() == 2
    await assert_books_agree()


async def test_a_line_discount_on_a_sale_and_the_void_reverses_it(db):
    """A member's sale on account: Day pass 500 + Water 2 x 100 (16 % included) = 700.00
    (net 431.03 + 172.41 = 603.44, VAT 96.56). A manager takes KES 50 off the Water line:
    net 50/1.16 = 43.103.. -> 43.10, VAT 6.90; invoice 650.00 (net 560.34, VAT 89.66).
    Voiding the invoice reverses everything: revenue_fees +431.03, revenue_retail +172.41,
    discounts -43.10, vat_payable +89.66, receivable -650.00; every account back to 0."""
    from portal.sales.sales import SaleRequest, sell

    await make_location()
    _desk, boss = await _people()
    items = await default_items()
    member = await make_member()
    result = await sell(SaleRequest(member_id=member, quantities={items["Day pass"]: 1, items["Water"]: 2},
                                    method="account"), idempotency_key="s-1", staff_id=boss, currency="KES")
    inv = result.invoice
    water = (await InvoiceLine.select().where((InvoiceLine.invoice == inv["id"]) & (InvoiceLine.description.ilike("%Water%"))).first())
    row = await discounts.give(inv["id"], Ask("amount", D("50"), "Warm bottles", water["id"]), staff_id=boss, role="manager")
    assert (row["net"], row["vat"], row["invoice_line"]) == (D("43.10"), D("6.90"), water["id"])
    inv = await Invoice.select().where(Invoice.id == inv["id"]).first()
    assert (inv["total"], inv["subtotal"], inv["tax_total"]) == (D("650.00"), D("560.34"), D("89.66"))
    with pytest.raises(RuleBroken, match="more than the KES 150 left"):
        await discounts.give(inv["id"], Ask("amount", D("151"), "More", water["id"]), staff_id=boss, role="manager")
    await void_invoice(inv["id"], "Sold by mistake", boss)
    assert await _legs("void", inv["id"]) == {"receivable": D("-650.00"), "revenue_fees": D("431.03"),
                                              "revenue_retail": D("172.41"), "discounts": D("-43.10"),
                                              "vat_payable": D("89.66")}
    totals = await ledger.trial_balance()
    assert all(v == 0 for v in totals.values()), totals
    await assert_books_agree()


async def test_a_pending_discount_on_a_voided_invoice_is_rejected_with_it(db):
    """Monthly 3,000; the desk queues 50 % (1,500.00); the manager voids the invoice: the waiting
    discount is rejected ("Invoice voided"), nothing of it in the books."""
    await make_location()
    desk, boss = await _people()
    member = await make_member()
    inv = await _plan_invoice(member, await make_plan("Monthly", "3000"))
    row = await discounts.give(inv["id"], Ask("percent", D("50"), "Hardship"), staff_id=desk, role="front_desk", queue=True)
    assert row["amount"] == D("1500.00")
    await void_invoice(inv["id"], "Wrong plan", boss)
    row = await Discount.select().where(Discount.id == row["id"]).first()
    assert (row["status"], row["decision_note"]) == ("rejected", "Invoice voided")
    with pytest.raises(RuleBroken, match="already rejected"):
        await discounts.approve(row["id"], boss)
    await assert_books_agree()


async def test_the_invoice_and_receipt_say_the_discount_in_the_members_language(db):
    """A Swahili-speaking member on Monthly 3,000 with 10 % off for a student (300.00): the
    invoice's lines read "Punguzo la 10%: Student" -300, total 2,700; paying 2,700 in cash, the
    receipt reads the plan's line "(baada ya punguzo la KES 300)". The same in English reads
    "Discount of 10%: Student" and "(after a discount of KES 300)"."""
    from portal.documents.context import invoice_context, receipt_context
    from portal.documents.render import render_html
    from tables.members import Member

    await make_location()
    desk, _boss = await _people()
    member = await make_member()
    await Member.update({Member.language: "sw"}).where(Member.id == member)
    inv = await _plan_invoice(member, await make_plan("Monthly", "3000"))
    await discounts.give(inv["id"], Ask("percent", D("10"), "Student"), staff_id=desk, role="front_desk")
    html = render_html("invoice", await invoice_context(inv["id"]))
    assert "Punguzo la 10%: Student" in html and "2,700" in html
    payment = await pay(member, "2700", staff_id=desk)
    pid = payment.payment["id"]
    receipt = render_html("receipt", await receipt_context(pid))
    assert "(baada ya punguzo la KES 300)" in receipt
    await Member.update({Member.language: "en"}).where(Member.id == member)
    assert "Discount of 10%: Student" in render_html("invoice", await invoice_context(inv["id"]))
    assert "(after a discount of KES 300)" in render_html("receipt", await receipt_context(pid))
    await assert_books_agree()
