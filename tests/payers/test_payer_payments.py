"""A payer paying for several members: worked examples, each ending with the books agreeing."""

from datetime import timedelta
from decimal import Decimal

import pytest

from portal.lib.clock import today
from portal.lib.errors import RuleBroken
from portal.payers.payers import payer_open_invoices, statement
from portal.payments.service import refund_payment
from tables.billing import Allocation, Payment
from tables.ledger import LedgerEntry, LedgerLeg
from tables.payers import InvoiceBillTo, PayerPayment
from tests.billing.helpers import (
    assert_books_agree,
    balances,
    desk_staff,
    invoice,
    invoice_for,
    kes,
    pay,
)
from tests.factories import make_member
from tests.payers.helpers import company, invoice_due, link, parent, payer_pays

D = Decimal


async def test_a_company_pays_for_three_staff_with_one_payment(db):
    """Acme Logistics pays for three staff. Invoices addressed to Acme, oldest due first:
        A  Achieng  3,000.00 due day-20
        B  Otieno   3,000.00 due day-10
        C  Njeri    8,000.00 due day-5
    One cash payment of 11,000.00:
        A gets 3,000.00 (paid)       11,000 - 3,000 = 8,000 left
        B gets 3,000.00 (paid)        8,000 - 3,000 = 5,000 left
        C gets 5,000.00 (partially)   5,000 - 5,000 = 0 left;  C still owes 8,000 - 5,000 = 3,000.00
    One payment, three allocations (3,000 + 3,000 + 5,000 = 11,000), one payment_received entry:
    cash debit 11,000; receivable credits 3,000 (Achieng), 3,000 (Otieno), 5,000 (Njeri).
    Acme now owes 3,000.00 in all; no credit is held."""
    staff = await desk_staff()
    acme = await company()
    achieng, otieno, njeri = (await make_member("Achieng", "Odhiambo"), await make_member("Otieno", "Mwangi"),
                              await make_member("Njeri", "Kariuki"))
    for m in (achieng, otieno, njeri):
        await link(acme, m)
    day = today()
    # Issued in the opposite order to their due dates: the due date decides, not the number.
    c = await invoice_due(njeri, 8000, day - timedelta(days=5))
    b = await invoice_due(otieno, 3000, day - timedelta(days=10))
    a = await invoice_due(achieng, 3000, day - timedelta(days=20))

    assert [r["number"] for r in await payer_open_invoices(acme)] == [a["number"], b["number"], c["number"]]
    recorded = await payer_pays(acme, 11000, staff_id=staff)
    payment = recorded.payment
    assert (payment["status"], payment["member"], payment["amount"]) == ("completed", None, D("11000.00"))
    assert await PayerPayment.exists().where((PayerPayment.payment == payment["id"]) & (PayerPayment.payer == acme))

    assert [((await invoice(i["id"]))["status"], (await invoice(i["id"]))["paid"]) for i in (a, b, c)] == [
        ("paid", D("3000.00")), ("paid", D("3000.00")), ("partially_paid", D("5000.00"))]
    allocations = await Allocation.select(Allocation.invoice, Allocation.amount).where(
        Allocation.payment == payment["id"]).order_by(Allocation.id)
    assert [(r["invoice"], r["amount"]) for r in allocations] == [
        (a["id"], D("3000.00")), (b["id"], D("3000.00")), (c["id"], D("5000.00"))]
    entries = await LedgerEntry.select(LedgerEntry.id, LedgerEntry.kind).where(LedgerEntry.payment == payment["id"])
    assert [e["kind"] for e in entries] == ["payment_received"]
    legs = await LedgerLeg.select(LedgerLeg.account, LedgerLeg.member, LedgerLeg.amount).where(
        LedgerLeg.entry == entries[0]["id"]).order_by(LedgerLeg.id)
    assert sorted((r["account"], r["member"], r["amount"]) for r in legs) == sorted([
        ("cash", None, D("11000.00")), ("receivable", achieng, D("-3000.00")),
        ("receivable", otieno, D("-3000.00")), ("receivable", njeri, D("-5000.00"))])
    assert await balances(achieng) == (D("0.00"), D("0"))
    assert await balances(otieno) == (D("0.00"), D("0"))
    assert await balances(njeri) == (D("3000.00"), D("0"))
    left = await payer_open_invoices(acme)
    assert [(r["number"], r["balance"]) for r in left] == [(c["number"], D("3000.00"))]
    st = await statement(acme, day)
    assert [r["number"] for r in st["invoices"]] == [a["number"], b["number"], c["number"]]
    assert (st["total"], st["paid"], st["balance"]) == (D("14000.00"), D("11000.00"), D("3000.00"))
    await assert_books_agree()


async def test_a_payer_overpaying_leaves_credit_with_the_member_settled_last(db):
    """A parent owes 3,000.00 (Wambui) and 2,000.00 (Kiprono, due later); pays 6,000.00:
    3,000 + 2,000 settled, 6,000 - 5,000 = 1,000.00 excess held as credit by Kiprono (the member
    whose invoice was settled last). Kiprono's next invoice of 3,000.00 takes it: 2,000.00 owed."""
    mum = await parent()
    wambui, kiprono = await make_member("Wambui", "Mutua"), await make_member("Kiprono", "Mutua")
    await link(mum, wambui)
    await link(mum, kiprono)
    day = today()
    await invoice_due(wambui, 3000, day - timedelta(days=3))
    await invoice_due(kiprono, 2000, day)
    payment = (await payer_pays(mum, 6000)).payment
    assert await balances(wambui) == (D("0.00"), D("0"))
    assert await balances(kiprono) == (D("0.00"), D("1000.00"))
    kinds = [e["kind"] for e in await LedgerEntry.select(LedgerEntry.kind).where(
        LedgerEntry.payment == payment["id"]).order_by(LedgerEntry.id)]
    assert kinds == ["payment_received", "credit_held"]
    nxt = await invoice_due(kiprono, 3000, day + timedelta(days=30))
    assert ((await invoice(nxt["id"]))["paid"], await balances(kiprono)) == (D("1000.00"), (D("2000.00"), D("0")))
    await assert_books_agree()


async def test_relinking_a_member_does_not_change_an_earlier_invoice(db):
    """Otieno's invoice issued while he is Acme's stays addressed to Acme (name, address, PIN as
    they were) after he moves to another payer and Acme renames itself; his next invoice is
    addressed to the new payer; and once unlinked, his invoices are his own (no bill-to)."""
    acme = await company()
    other = await company(name="Beta Freight Ltd", kra_pin="P000111222B", address="P.O. Box 9-00200, Nairobi")
    otieno = await make_member("Otieno", "Mwangi")
    await link(acme, otieno)
    first = await invoice_for(otieno, 3000)
    await link(other, otieno)  # moves him
    from portal.payers.payers import update_payer
    from tests.payers.helpers import ACME
    await update_payer(acme, {**ACME, "name": "Acme Group Ltd"}, None)
    second = await invoice_for(otieno, 3000)
    from portal.payers.payers import unlink_member
    await unlink_member(other, otieno, None)
    third = await invoice_for(otieno, 3000)
    rows = {r["invoice"]: r for r in await InvoiceBillTo.select().where(
        InvoiceBillTo.invoice.is_in([first["id"], second["id"], third["id"]]))}
    assert (rows[first["id"]]["payer"], rows[first["id"]]["name"], rows[first["id"]]["kra_pin"]) == (
        acme, "Acme Logistics Ltd", "P051234567X")
    assert (rows[second["id"]]["payer"], rows[second["id"]]["name"]) == (other, "Beta Freight Ltd")
    assert third["id"] not in rows
    # Acme's payment reaches only the invoice addressed to Acme.
    await payer_pays(acme, 3000)
    assert [(await invoice(i["id"]))["status"] for i in (first, second, third)] == ["paid", "open", "open"]
    await assert_books_agree()


async def test_a_member_with_a_payer_can_still_pay_their_own_invoice(db):
    """Njeri's 8,000.00 invoice is addressed to Acme; she pays 2,000.00 cash herself at the desk:
    8,000 - 2,000 = 6,000.00 left, which is what Acme then owes; Acme pays 6,000.00 and it is paid."""
    acme = await company()
    njeri = await make_member("Njeri", "Kariuki")
    await link(acme, njeri)
    inv = await invoice_for(njeri, 8000)
    own = (await pay(njeri, 2000)).payment
    assert own["member"] == njeri and (await invoice(inv["id"]))["paid"] == D("2000.00")
    assert [r["balance"] for r in await payer_open_invoices(acme)] == [D("6000.00")]
    await payer_pays(acme, 6000)
    assert (await invoice(inv["id"]))["status"] == "paid"
    assert await balances(njeri) == (D("0.00"), D("0"))
    await assert_books_agree()


async def test_the_same_key_twice_is_one_payment_and_refunds_are_refused_not_crashed(db):
    acme = await company()
    m = await make_member()
    await link(acme, m)
    await invoice_for(m, 3000)
    first = await payer_pays(acme, 1000, key="same-key")
    again = await payer_pays(acme, 1000, key="same-key")
    assert (again.created, again.payment["id"]) == (False, first.payment["id"])
    assert await Payment.count() == 1
    staff = await desk_staff()
    with pytest.raises(RuleBroken, match="payer"):
        await refund_payment(first.payment["id"], kes(100), "changed mind", staff)
    await assert_books_agree()


async def test_a_payer_with_nothing_to_pay_and_no_members_is_refused(db):
    acme = await company()
    with pytest.raises(RuleBroken, match="link a member"):
        await payer_pays(acme, 1000)
    assert await Payment.count() == 0


async def test_bank_payment_needs_a_reference(db):
    acme = await company()
    m = await make_member()
    await link(acme, m)
    with pytest.raises(RuleBroken, match="bank reference"):
        await payer_pays(acme, 1000, method="bank")
