"""The demo gym `make run` loads (demo.seed): a past, not one day; books that agree; and members'
phones kept by the portal's phone rule as they are, nearly all fit for M-Pesa prompts."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from portal.billing.ledger import books_disagreements
from portal.lib.clock import today
from portal.lib.phones import carrier_of, normalise_phone
from portal.members import visits
from portal.reports import analytics
from tables.billing import Invoice, Payment
from tables.members import Member
from tests.support.env import setting


async def _load(members: int) -> None:
    from demo.seed import load_demo_data

    with setting("DEMO", "1"):
        await load_demo_data(members=members)


async def test_demo_members_have_phones_the_desk_can_use(db):
    await _load(60)
    phones = [r["phone"] for r in await Member.select(Member.phone)]
    assert len(phones) == len(set(phones)) == 60
    assert all(normalise_phone(phone) == phone for phone in phones)
    networks = Counter(carrier_of(phone) for phone in phones)
    assert set(networks) <= {"Safaricom", "Airtel"} and networks["Safaricom"] >= 50, networks


async def test_the_demo_gym_has_a_past_and_its_books_agree(db):
    await _load(200)
    assert await books_disagreements() == []
    assert await Payment.count() == 3000
    span = (await Payment.raw("SELECT min(created_at)::date AS first, max(created_at)::date AS last FROM payment"))[0]
    assert span["first"] < today() - timedelta(days=365) and span["last"] >= today() - timedelta(days=2)
    methods = {r["method"] for r in await Payment.raw("SELECT DISTINCT method FROM payment WHERE status = 'completed'")}
    assert methods == {"mpesa", "card", "cash", "bank", "cheque"}
    # No invoice issued after it fell due (they read "issued today, due last year" before).
    assert await Invoice.count().where(Invoice.issue_date > Invoice.due_date) == 0
    # The last 30 days' chart has money on most days, not one bar.
    report = await analytics.report(analytics.Period.parse({"preset": "30d"}))
    days_with_money = [r for r in report["series"] if any(r[m] for m in report["methods"])]
    assert len(days_with_money) >= 20, len(days_with_money)
    assert report["days_to_pay"]["median"] not in (None, 0)
    # The door has a past too: check-ins on most of the last 14 days, and some members not seen lately.
    ranges = visits.day_and_week_ranges()
    by_day = await visits.visits_by("day", *ranges["days"])
    assert sum(1 for r in by_day if r["came_in"]) >= 12, by_day
    absent, absent_total = await visits.not_seen(14)
    assert 0 < absent_total < await Member.count(), absent_total


async def test_the_demo_gym_has_freezes_made_by_the_apps_rule(db):
    from tables.freezes import MembershipFreeze
    from tables.visits import Visit

    await _load(200)
    freezes = await MembershipFreeze.select().order_by(MembershipFreeze.id)
    assert len(freezes) >= 5, freezes
    t = today()
    assert any(f["start_date"] <= t <= f["end_date"] for f in freezes)  # someone frozen today
    assert any(f["start_date"] > t for f in freezes)  # someone about to be
    assert any(f["ended_early_reason"] for f in freezes)
    for f in freezes:  # nobody came in on a frozen day
        came = await Visit.raw("SELECT count(*) AS n FROM visit WHERE member = {} AND outcome <> 'refused' "
                               "AND (at AT TIME ZONE 'Africa/Nairobi')::date BETWEEN {} AND {}",
                               f["member"], f["start_date"], f["end_date"])
        assert came[0]["n"] == 0, f
    assert await books_disagreements() == []


async def test_the_demo_gym_has_a_catalogue_to_sell_from(db):
    """Day pass 500, PT session 1,500, PT pack of 10 12,000, Locker 1,000, Joining fee 2,000,
    Water 100, Protein shake 350: the desk can sell from the first start."""
    from tables.sales import CatalogueItem

    await _load(20)
    items = {r["name"]: (r["price"], r["kind"], r["sessions"]) for r in await CatalogueItem.select()}
    assert {name: str(price) for name, (price, _, _) in items.items()} == {
        "Day pass": "500.00", "PT session": "1500.00", "PT pack of 10": "12000.00", "Locker (per month)": "1000.00",
        "Joining fee": "2000.00", "Water": "100.00", "Protein shake": "350.00"}
    assert items["PT pack of 10"][1:] == ("pack", 10)
