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
    # The walk-in account (member WALKIN, no phone: portal/sales/walkin.py) holds the demo's
    # walk-in sales; it is not a person.
    phones = [r["phone"] for r in await Member.select(Member.phone).where(Member.member_number != "WALKIN")]
    assert len(phones) == len(set(phones)) == 60
    assert all(normalise_phone(phone) == phone for phone in phones)
    networks = Counter(carrier_of(phone) for phone in phones)
    assert set(networks) <= {"Safaricom", "Airtel"} and networks["Safaricom"] >= 50, networks


async def test_the_demo_gym_has_a_past_and_its_books_agree(db):
    await _load(200)
    assert await books_disagreements() == []
    # The bulk history's 3,000 payments, and the desk sales' (demo.sales) on top.
    sale_payments = await Payment.count().where(Payment.note.like("Sale INV-%"))
    assert await Payment.count() - sale_payments == 3000 and sale_payments > 0
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


async def test_the_demo_gym_has_desk_sales_made_by_the_apps_rule(db):
    """demo.sales: walk-ins and members buy at the desk over the last 18 months, each sale made by
    portal.sales.sales.sell at its own moment: dated in the past, never ahead of now, numbered in
    its own year, with no message sent for it; packs of 10 used a session at a time since; the
    books agree and every invoice's paid is its allocations."""
    from portal.lib.clock import now
    from tables.messages import Message
    from tables.sales import Sale, SessionPack, SessionUse

    await _load(200)
    sales = await Sale.raw(
        "SELECT s.id, s.invoice, s.member, s.method, s.created_at, (s.created_at AT TIME ZONE 'Africa/Nairobi')::date AS day, "
        "i.issue_date, i.due_date, i.number, i.status, i.created_at AS invoice_at, p.created_at AS paid_at, "
        "p.receipt_number FROM sale s JOIN invoice i ON i.id = s.invoice LEFT JOIN payment p ON p.id = s.payment "
        "ORDER BY s.id")
    assert 50 <= len(sales) <= 70, len(sales)  # 0.3 of a sale a member
    t = today()
    assert min(s["day"] for s in sales) < t - timedelta(days=180)  # a past, not one day
    assert sum(1 for s in sales if s["day"] >= t - timedelta(days=60)) >= len(sales) // 2  # mostly lately
    assert all(t - timedelta(days=541) <= s["day"] <= t and s["created_at"] <= now() for s in sales)
    for s in sales:  # the app's own dates, at the sale's moment
        assert s["issue_date"] == s["due_date"] == s["day"] and s["invoice_at"] == s["created_at"], s
        assert s["number"].startswith(f"INV-{s['day'].year}-"), s
        if s["receipt_number"]:
            assert s["receipt_number"].startswith(f"RCP-{s['day'].year}-") and s["paid_at"] <= s["created_at"], s
    walk_ins = [s for s in sales if s["member"] is None]
    assert walk_ins and all(s["method"] in ("cash", "bank") and s["status"] == "paid" for s in walk_ins)
    members = [s for s in sales if s["member"] is not None]
    assert {"cash", "bank"} <= {s["method"] for s in members}
    on_account = [s for s in members if s["method"] == "account"]
    assert all(s["day"] >= t - timedelta(days=7) for s in on_account)  # none long overdue
    assert await Message.count().where(Message.invoice.is_in([s["invoice"] for s in sales])) == 0  # nothing sent
    packs = await SessionPack.select()
    assert packs and all(0 <= p["used"] <= p["sessions"] == 10 for p in packs)
    assert await SessionUse.count() == sum(p["used"] for p in packs) > 0
    uses = await SessionUse.raw("SELECT min(u.at) AS first, max(u.at) AS last FROM session_use u")
    assert uses[0]["last"] <= now()
    assert await books_disagreements() == []
    assert await Invoice.raw(
        "SELECT i.id FROM invoice i LEFT JOIN allocation a ON a.invoice = i.id GROUP BY i.id "
        "HAVING i.paid <> coalesce(sum(a.amount), 0) AND i.status <> 'void'") == []
