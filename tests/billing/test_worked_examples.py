"""The ledger as short stories (after hordak's worked examples). Each ends with the books balanced."""

from decimal import Decimal

import asyncpg
import pytest

from portal.billing.invoices import void_invoice
from portal.payments.service import refund_payment
from tables.billing import Allocation, CreditNote, Payment
from tables.ledger import LedgerLeg
from tests.billing.helpers import (
    assert_ledger_balanced,
    balances,
    desk_staff,
    invoice,
    invoice_for,
    kes,
    pay,
)
from tests.factories import make_member

D = Decimal


async def test_part_payments_overpayment_credit_and_the_next_invoice(db):
    """Invoice 3,000 -> cash 1,000 -> bank 2,500 (500 becomes credit) -> next invoice 3,000 takes
    the credit and leaves 2,500 open."""
    staff = await desk_staff()
    member = await make_member()
    first = await invoice_for(member, 3000, staff_id=staff)
    assert (first["number"], first["total"], first["subtotal"], first["tax_total"]) == (
        f"INV-{first['issue_date'].year}-000001", D("3000.00"), D("2586.21"), D("413.79"))
    assert await balances(member) == (D("3000.00"), D("0.00"))

    cash = (await pay(member, 1000, staff_id=staff)).payment
    assert cash["status"] == "completed" and cash["receipt_number"].startswith("RCP-")
    assert (await invoice(first["id"]))["status"] == "partially_paid"
    assert await balances(member) == (D("2000.00"), D("0"))

    bank = (await pay(member, 2500, method="bank", reference="EQ-778812", staff_id=staff)).payment
    assert (await invoice(first["id"]))["status"] == "paid"
    assert await balances(member) == (D("0"), D("500.00"))
    assert bank["reference"] == "EQ-778812"

    second = await invoice_for(member, 3000, staff_id=staff)
    second = await invoice(second["id"])
    assert (second["status"], second["paid"]) == ("partially_paid", D("500.00"))
    assert await balances(member) == (D("2500.00"), D("0"))
    await assert_ledger_balanced()


async def test_void_turns_what_was_paid_into_credit(db):
    """Invoice 3,000, cash 1,000, void with a reason: the 1,000 is the member's credit, which the
    next invoice uses; a credit note records the void."""
    staff = await desk_staff()
    member = await make_member()
    inv = await invoice_for(member, 3000)
    await pay(member, 1000, staff_id=staff)
    note = await void_invoice(inv["id"], "Member moved to another branch", staff)
    assert note["number"].startswith("CRN-") and note["amount"] == D("3000.00")
    voided = await invoice(inv["id"])
    assert (voided["status"], voided["paid"], voided["void_reason"]) == ("void", D("0"), "Member moved to another branch")
    assert await balances(member) == (D("0"), D("1000.00"))
    nxt = await invoice_for(member, 3000)
    assert (await invoice(nxt["id"]))["paid"] == D("1000.00")
    await assert_ledger_balanced()


async def test_refund_of_cash_reopens_the_invoice(db):
    """Invoice 3,000, cash 3,000 (paid), refund 1,200: the invoice owes 1,200 again, the payment is
    partially refunded; refunding the rest makes it refunded."""
    staff = await desk_staff()
    member = await make_member()
    inv = await invoice_for(member, 3000)
    payment = (await pay(member, 3000, staff_id=staff)).payment
    await refund_payment(payment["id"], kes(1200), "Overcharged for a month not used", staff)
    p = await Payment.select().where(Payment.id == payment["id"]).first()
    assert (p["status"], p["refunded"]) == ("partially_refunded", D("1200.00"))
    assert (await invoice(inv["id"]))["status"] == "partially_paid"
    assert await balances(member) == (D("1200.00"), D("0"))
    await refund_payment(payment["id"], kes(1800), "Left the gym", staff)
    p = await Payment.select().where(Payment.id == payment["id"]).first()
    assert p["status"] == "refunded"
    assert (await invoice(inv["id"]))["status"] == "open"
    assert await CreditNote.count() == 2
    with pytest.raises(Exception, match="Only completed payments"):
        await refund_payment(payment["id"], kes(1), "again", staff)
    await assert_ledger_balanced()


async def test_refund_takes_credit_first(db):
    """Cash 4,000 on a 3,000 invoice leaves 1,000 credit; refunding 1,000 just returns the credit."""
    staff = await desk_staff()
    member = await make_member()
    inv = await invoice_for(member, 3000)
    payment = (await pay(member, 4000, staff_id=staff)).payment
    assert await balances(member) == (D("0"), D("1000.00"))
    await refund_payment(payment["id"], kes(1000), "Overpaid by mistake", staff)
    assert (await invoice(inv["id"]))["status"] == "paid"
    assert await balances(member) == (D("0"), D("0"))
    await assert_ledger_balanced()


async def test_a_chosen_invoice_is_paid_before_older_ones(db):
    member = await make_member()
    older = await invoice_for(member, 1000, "Locker")
    newer = await invoice_for(member, 3000)
    await pay(member, 3000, invoice_id=newer["id"])
    assert (await invoice(newer["id"]))["status"] == "paid"
    assert (await invoice(older["id"]))["status"] == "open"


async def test_invoice_paid_and_allocations_agree_with_the_ledger(db):
    member = await make_member()
    for amount in (3000, 8000):
        await invoice_for(member, amount)
    for amount in (500, 2500, 9000):
        await pay(member, amount)
    rows = await Allocation.raw("SELECT invoice, sum(amount) AS s FROM allocation GROUP BY invoice ORDER BY invoice")
    for row in rows:
        assert (await invoice(row["invoice"]))["paid"] == row["s"]
    assert await balances(member) == (D("0"), D("1000.00"))
    await assert_ledger_balanced()


async def test_the_database_refuses_an_unbalanced_entry_typed_by_hand(db):
    from piccolo.engine import engine_finder
    from piccolo.querystring import QueryString

    from portal.lib import db as portal_db

    engine = engine_finder()
    with pytest.raises(asyncpg.exceptions.CheckViolationError, match="does not balance"):
        async with portal_db.transaction():
            await engine.run_querystring(QueryString(
                "INSERT INTO ledger_entry (at, business_date, kind, memo) VALUES (now(), current_date, 'manual', 'by hand') RETURNING id"))
            await engine.run_querystring(QueryString(
                "INSERT INTO ledger_leg (entry, account, amount, currency) "
                "VALUES ((SELECT max(id) FROM ledger_entry), 'cash', 100, 'KES')"))
    assert await LedgerLeg.count() == 0
    # and the failed COMMIT left nothing behind: the next transaction works
    member = await make_member()
    await invoice_for(member, 100)
    await assert_ledger_balanced()


async def test_the_ledger_refuses_edits(db):
    member = await make_member()
    await invoice_for(member, 3000)
    with pytest.raises(asyncpg.exceptions.RaiseError, match="append-only"):
        await LedgerLeg.update({LedgerLeg.amount: D("1")}).where(LedgerLeg.id > 0)


async def test_code_refuses_an_unbalanced_entry_before_the_database_sees_it(db):
    from portal.billing import ledger

    with pytest.raises(ledger.UnbalancedEntry):
        await ledger.post("manual", [ledger.debit("cash", kes(100)), ledger.credit("revenue", kes(99))])
