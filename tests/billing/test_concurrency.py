"""Money under concurrency, on real PostgreSQL."""

import asyncio

from portal.billing.invoices import Line, issue_invoice, lock_member
from portal.lib import db as portal_db
from tables.billing import Invoice, Payment, PaymentEvent
from tests.billing.helpers import assert_ledger_balanced, balances, invoice_for, kes, pay
from tests.factories import make_member


async def test_twenty_submissions_with_one_key_make_one_payment(db):
    member = await make_member()
    await invoice_for(member, 3000)
    results = await asyncio.gather(*[pay(member, 1000, key="double-click-key") for _ in range(20)])
    assert await Payment.count() == 1
    assert sum(r.created for r in results) == 1
    assert len({r.payment["id"] for r in results}) == 1
    assert await PaymentEvent.count().where(PaymentEvent.new_status == "completed") == 2  # completed + settled
    owed, _ = await balances(member)
    assert owed == kes(2000).amount
    await assert_ledger_balanced()


async def test_twenty_concurrent_form_posts_with_one_key_record_once(alice):

    member = await make_member()
    await invoice_for(member, 3000)
    responses = await asyncio.gather(*[
        alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "1,000", "idempotency_key": "k-42"})
        for _ in range(20)])
    assert {r.status_code for r in responses} == {303}
    assert len({r.headers["location"] for r in responses}) == 1
    assert await Payment.count() == 1


async def test_fifty_concurrent_invoices_get_fifty_distinct_numbers(db):
    members = [await make_member(phone=f"25471100{i:04d}") for i in range(50)]

    async def raise_one(member_id):
        async with portal_db.transaction():
            await lock_member(member_id)
            return (await issue_invoice(member_id, [Line("Monthly membership", kes(3000))]))["number"]

    numbers = await asyncio.gather(*[raise_one(m) for m in members])
    assert len(set(numbers)) == 50
    year = numbers[0].split("-")[1]
    assert sorted(numbers) == [f"INV-{year}-{n:06d}" for n in range(1, 51)]
    assert await Invoice.count() == 50
    await assert_ledger_balanced()


async def test_concurrent_payments_for_one_member_never_overpay_an_invoice(db):
    member = await make_member()
    inv = await invoice_for(member, 3000)
    await asyncio.gather(*[pay(member, 1000) for _ in range(5)])
    row = await Invoice.select().where(Invoice.id == inv["id"]).first()
    assert (row["status"], row["paid"]) == ("paid", kes(3000).amount)
    assert await balances(member) == (kes(0).amount, kes(2000).amount)
    await assert_ledger_balanced()


async def test_a_manager_voiding_an_invoice_twice_at_once_reverses_it_once(bob):
    """Two tabs (or a double click) void the same part-paid invoice at once: 3,000 invoiced,
    1,000 paid. One void goes through: revenue 2,586.21 + VAT 413.79 reversed once, the 1,000
    becomes the member's credit once, one credit note; the others land on the invoice, shown void."""
    from tables.billing import CreditNote
    from tables.ledger import LedgerEntry
    from tests.billing.helpers import assert_books_agree

    member = await make_member()
    inv = await invoice_for(member, 3000)
    await pay(member, 1000)
    answers = await asyncio.gather(*[
        bob.post(f"/invoices/{inv['id']}/void", {"reason": "Enrolled on the wrong plan"}) for _ in range(6)])
    assert {(r.status_code, r.headers.get("location")) for r in answers} == {(303, f"/invoices/{inv['id']}")}
    assert await LedgerEntry.count().where(LedgerEntry.kind == "void") == 1
    assert await CreditNote.count() == 1
    owed, held = await balances(member)
    assert (owed, held) == (kes(0).amount, kes(1000).amount)
    await assert_books_agree()
