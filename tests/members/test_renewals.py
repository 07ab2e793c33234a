"""Renewal invoices a few days before a membership ends, and what paying them does."""

from datetime import date, timedelta

from tables.billing import Invoice
from tables.members import Membership
from tests.billing.helpers import pay
from tests.factories import make_member, make_membership, make_plan


async def test_renewals_are_invoiced_once_and_paying_extends_from_the_old_end(worker, queue, settings):
    plan = await make_plan("Monthly", "3000", 1)
    member = await make_member()
    ms = await make_membership(member, plan, date(2026, 11, 11), date(2026, 12, 10), "active")
    later = await make_membership(await make_member(), plan, date(2026, 11, 30), date(2026, 12, 29), "active")

    # 7 days before the end (RENEWAL_DAYS_BEFORE default), run twice concurrently: one invoice.
    import asyncio

    results = await asyncio.gather(*[queue.apply("raise_renewal_invoices", as_of="2026-12-03", timeout=30) for _ in range(2)])
    assert sorted(results) == [0, 1]
    invoice = await Invoice.objects().where(Invoice.membership == ms).first()
    assert (invoice.kind, invoice.total, invoice.due_date) == ("renewal", 3000, date(2026, 12, 10))
    assert await Invoice.count().where(Invoice.membership == later) == 0
    assert await queue.apply("raise_renewal_invoices", as_of="2026-12-04", timeout=30) == 0

    # Paid before it lapses: the new period continues from the old end date.
    await pay(member, 3000)
    renewed = await Membership.objects().where((Membership.member == member) & (Membership.id != ms)).first()
    assert (renewed.start_date, renewed.end_date) == (date(2026, 12, 11), date(2027, 1, 10))
    # Paid: no second renewal invoice for the same membership.
    assert await queue.apply("raise_renewal_invoices", as_of="2026-12-05", timeout=30) == 0


async def test_a_lapsed_renewal_starts_on_the_payment_day(db):
    from portal.lib.clock import today
    from portal.members.renewals import raise_renewal_invoices

    plan = await make_plan("Monthly", "3000", 1)
    member = await make_member()
    end = today() - timedelta(days=3)
    ms = await make_membership(member, plan, end - timedelta(days=29), end, "active")
    assert await raise_renewal_invoices(end - timedelta(days=2)) == 1
    await pay(member, 3000)
    renewed = await Membership.objects().where((Membership.member == member) & (Membership.id != ms)).first()
    assert renewed.start_date == today() and renewed.status == "active"
