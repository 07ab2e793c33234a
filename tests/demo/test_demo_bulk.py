"""Bulk demo data (demo.bulk) is what the app would have written: every rule the business
code keeps, checked with SQL over a small bulk load (300 members, 3,000 payments)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import pytest_asyncio

from tests.fixtures import empty_tables
from tests.support.client import PortalClient

MEMBERS, PAYMENTS = 300, 3000


@pytest_asyncio.fixture(scope="module")
async def bulk(_database, _queue):
    from demo.bulk import load_bulk

    await empty_tables(_database)
    report = await load_bulk(MEMBERS, PAYMENTS, seed=11, show_progress=False)
    yield report
    await empty_tables(_database)


async def sql(query: str, *args) -> list[dict]:
    from tables.members import Member

    return await Member.raw(query, *args)


async def none_of(query: str, *args) -> None:
    """The query lists what breaks a rule: it must find nothing."""
    rows = await sql(query + " LIMIT 5", *args)
    assert rows == [], rows


def today() -> date:
    from portal.lib.clock import today

    return today()


async def test_counts_are_as_asked(bulk):
    counts = (await sql("SELECT (SELECT count(*) FROM member WHERE member_number <> 'WALKIN') AS members, "
                        "(SELECT count(*) FROM payment) AS payments"))[0]
    assert counts == {"members": MEMBERS, "payments": PAYMENTS}
    assert bulk.counts["member"] == MEMBERS and bulk.counts["payment"] == PAYMENTS
    # Every status and method a real gym has, mostly completed, mostly M-Pesa and cash.
    by_status = {r["status"]: r["n"] for r in await sql("SELECT status, count(*) AS n FROM payment GROUP BY status")}
    assert {"completed", "failed", "cancelled", "refunded", "partially_refunded"} <= set(by_status)
    assert by_status.get("pending", 0) + by_status.get("processing", 0) >= 1
    assert by_status["completed"] > 0.8 * PAYMENTS
    by_method = {r["method"]: r["n"] for r in await sql(
        "SELECT method, count(*) AS n FROM payment WHERE status = 'completed' GROUP BY method")}
    assert set(by_method) == {"cash", "mpesa", "card", "bank", "cheque"}
    assert by_method["mpesa"] + by_method["cash"] > 0.75 * by_status["completed"]
    statuses = {r["status"] for r in await sql("SELECT DISTINCT status FROM invoice")}
    assert statuses == {"open", "partially_paid", "paid", "void"}
    overdue = await sql("SELECT count(*) AS n FROM invoice WHERE status IN ('open', 'partially_paid') AND due_date < {}",
                        today())
    assert overdue[0]["n"] > 0


async def test_members_are_numbered_from_the_sequence_with_kenyan_phones(bulk, settings):
    rows = await sql("SELECT member_number, phone FROM member WHERE member_number <> 'WALKIN' ORDER BY id")
    assert [r["member_number"] for r in rows] == [f"{settings.member_prefix}{n:04d}" for n in range(1, MEMBERS + 1)]
    from portal.lib.phones import normalise_phone

    assert all(normalise_phone(r["phone"]) == r["phone"] for r in rows)
    assert len({r["phone"] for r in rows}) == MEMBERS
    from portal.members.members import next_member_number

    assert await next_member_number() == f"{settings.member_prefix}{MEMBERS + 1:04d}"


async def test_members_asked_or_paying_by_m_pesa_have_safaricom_numbers(bulk):
    """Only Safaricom lines have M-Pesa: every number in an M-Pesa payment, and every member who
    has one, is Safaricom's. A few members who pay at the desk or by card are on Airtel."""
    from collections import Counter

    from portal.lib.phones import carrier_of

    on_mpesa = await sql("SELECT DISTINCT m.phone FROM member m JOIN payment p ON p.member = m.id WHERE p.method = 'mpesa' "
                         "UNION SELECT phone FROM payment WHERE method = 'mpesa' AND phone <> ''")
    assert on_mpesa and {carrier_of(r["phone"]) for r in on_mpesa} == {"Safaricom"}
    networks = Counter(carrier_of(r["phone"]) for r in await sql("SELECT phone FROM member WHERE member_number <> 'WALKIN'"))
    assert set(networks) == {"Safaricom", "Airtel"} and networks["Airtel"] < networks["Safaricom"] / 5, networks


async def test_every_ledger_entry_balances_and_so_does_the_ledger(bulk):
    from portal.billing.ledger import trial_balance

    await none_of("SELECT entry, currency FROM ledger_leg GROUP BY entry, currency HAVING sum(amount) <> 0")
    await none_of("SELECT e.id FROM ledger_entry e WHERE NOT EXISTS (SELECT 1 FROM ledger_leg l WHERE l.entry = e.id)")
    totals = await trial_balance()
    assert sum(totals.values()) == 0, totals
    assert totals["receivable"] > 0 and totals["revenue"] < 0 and totals["vat_payable"] < 0
    # The load kept the database's own check on (it ran for every loaded entry at COMMIT).
    trigger = await sql("SELECT tgenabled::text AS tgenabled FROM pg_trigger WHERE tgname = 'ledger_leg_balanced'")
    assert trigger == [{"tgenabled": "O"}]


async def test_invoices_agree_with_their_allocations_lines_and_ledger(bulk):
    await none_of("""
        SELECT i.id FROM invoice i LEFT JOIN allocation a ON a.invoice = i.id
        GROUP BY i.id HAVING i.paid <> coalesce(sum(a.amount), 0) AND i.status <> 'void'""")
    await none_of("""
        SELECT i.id FROM invoice i JOIN allocation a ON a.invoice = i.id
        WHERE i.status = 'void' GROUP BY i.id HAVING sum(a.amount) <> 0""")
    await none_of("""
        SELECT id FROM invoice WHERE NOT (
            (status = 'open' AND paid = 0) OR (status = 'partially_paid' AND paid > 0 AND paid < total)
            OR (status = 'paid' AND paid = total) OR (status = 'void' AND paid = 0 AND void_reason <> ''))""")
    await none_of("""
        SELECT i.id FROM invoice i JOIN invoice_line l ON l.invoice = i.id
        GROUP BY i.id HAVING sum(l.total) <> i.total OR sum(l.net) <> i.subtotal OR sum(l.vat) <> i.tax_total""")
    # Issued: receivable debited with the total, revenue (the items' own accounts for a sale) and VAT
    # credited; an approved discount takes its amount off receivable, its net and VAT onto the
    # discounts account and back from VAT (portal.billing.discounts); a void reverses it.
    await none_of("""
        SELECT i.id FROM invoice i JOIN ledger_entry e ON e.invoice = i.id AND e.kind IN ('invoice_issued', 'discount')
        JOIN ledger_leg l ON l.entry = e.id
        GROUP BY i.id, i.total, i.subtotal, i.tax_total, i.member
        HAVING sum(l.amount) FILTER (WHERE l.account = 'receivable' AND l.member = i.member) <> i.total
            OR coalesce(sum(l.amount) FILTER (WHERE l.account LIKE 'revenue%' OR l.account = 'discounts'), 0)
               <> -i.subtotal
            OR coalesce(sum(l.amount) FILTER (WHERE l.account = 'vat_payable'), 0) <> -i.tax_total""")
    await none_of("""
        SELECT i.id FROM invoice i WHERE (SELECT count(*) FROM ledger_entry e WHERE e.invoice = i.id
                                          AND e.kind = 'invoice_issued') <> 1
            OR (i.status = 'void') <> EXISTS (SELECT 1 FROM ledger_entry e WHERE e.invoice = i.id AND e.kind = 'void')""")
    # Numbers: unique (a constraint), gap-free per year and in the order invoices were issued.
    await none_of("""
        SELECT number FROM (
            SELECT number, issue_date, row_number() OVER (PARTITION BY extract(year FROM issue_date) ORDER BY id) AS n
            FROM invoice) x
        WHERE number <> 'INV-' || extract(year FROM issue_date) || '-' || lpad(n::text, 6, '0')""")
    await none_of("SELECT a.id, b.id FROM invoice a JOIN invoice b ON b.id = a.id + 1 WHERE b.created_at < a.created_at")


async def test_payments_agree_with_their_ledger_allocations_and_refunds(bulk):
    await none_of("""
        SELECT id FROM payment WHERE NOT (
            (status IN ('completed', 'partially_refunded', 'refunded')
                AND receipt_number IS NOT NULL AND completed_at IS NOT NULL)
            OR (status NOT IN ('completed', 'partially_refunded', 'refunded')
                AND receipt_number IS NULL AND completed_at IS NULL))""")
    await none_of("""
        SELECT id FROM payment WHERE NOT (
            (status = 'refunded' AND refunded = amount) OR (status = 'partially_refunded' AND refunded > 0 AND refunded < amount)
            OR (status NOT IN ('refunded', 'partially_refunded') AND refunded = 0))""")
    # Received: the method's account debited with the amount, the member's receivable credited.
    await none_of("""
        SELECT p.id FROM payment p LEFT JOIN ledger_entry e ON e.payment = p.id AND e.kind = 'payment_received'
        LEFT JOIN ledger_leg l ON l.entry = e.id AND l.account = p.method
        GROUP BY p.id HAVING (p.status IN ('completed', 'partially_refunded', 'refunded'))
            <> (coalesce(sum(l.amount), 0) = p.amount AND count(DISTINCT e.id) = 1)""")
    await none_of("""
        SELECT p.id FROM payment p JOIN ledger_entry e ON e.payment = p.id
        WHERE p.status NOT IN ('completed', 'partially_refunded', 'refunded')""")
    # Refunded: exactly what the refund entries took out of the method's account.
    await none_of("""
        SELECT p.id FROM payment p LEFT JOIN ledger_entry e ON e.payment = p.id AND e.kind = 'refund'
        LEFT JOIN ledger_leg l ON l.entry = e.id AND l.account = p.method
        GROUP BY p.id HAVING p.refunded <> -coalesce(sum(l.amount), 0)""")
    await none_of("""
        SELECT p.id FROM payment p LEFT JOIN credit_note c ON c.payment = p.id AND c.kind = 'refund'
        GROUP BY p.id HAVING p.refunded <> coalesce(sum(c.amount), 0)""")
    # What a payment settled plus the credit it left is what it brought in.
    await none_of("""
        SELECT p.id FROM payment p
        WHERE p.status IN ('completed', 'partially_refunded', 'refunded') AND p.amount <>
            coalesce((SELECT sum(a.amount) FROM allocation a WHERE a.payment = p.id AND a.amount > 0), 0)
          + coalesce((SELECT -sum(l.amount) FROM ledger_entry e JOIN ledger_leg l ON l.entry = e.id
                      WHERE e.payment = p.id AND e.kind = 'credit_held' AND l.account = 'member_credit'), 0)""")
    await none_of("SELECT id FROM payment WHERE method = 'mpesa' AND amount <> trunc(amount)")
    # Flutterwave's fee comes out of the card money held (portal.payments.cards.checkout).
    await none_of("""
        SELECT p.id FROM payment p WHERE p.method = 'card' AND p.status = 'completed' AND NOT EXISTS (
            SELECT 1 FROM ledger_entry e JOIN ledger_leg l ON l.entry = e.id
            WHERE e.payment = p.id AND e.kind = 'gateway_fee' AND l.account = 'card' AND l.amount < 0)""")
    await none_of("""
        SELECT number FROM (
            SELECT receipt_number AS number, completed_at,
                   row_number() OVER (PARTITION BY extract(year FROM completed_at AT TIME ZONE 'Africa/Nairobi')
                                      ORDER BY completed_at, id) AS n
            FROM payment WHERE receipt_number IS NOT NULL) x
        WHERE number <> 'RCP-' || extract(year FROM completed_at AT TIME ZONE 'Africa/Nairobi') || '-' || lpad(n::text, 6, '0')""")
    # Reversals behind every M-Pesa refund, succeeded.
    await none_of("""
        SELECT p.id FROM payment p WHERE p.method = 'mpesa' AND p.refunded > 0 AND NOT EXISTS (
            SELECT 1 FROM gateway_request g WHERE g.payment = p.id AND g.kind = 'reversal' AND g.status = 'succeeded')""")


async def test_payment_events_follow_the_state_machine(bulk):
    from portal.payments.state import TRANSITIONS

    rows = await sql("SELECT payment, old_status, new_status FROM payment_event ORDER BY payment, id")
    status = {r["id"]: r["status"] for r in await sql("SELECT id, status FROM payment")}
    current: dict[int, str] = {}
    for r in rows:
        pid, old, new = r["payment"], r["old_status"], r["new_status"]
        if pid not in current:
            assert (old, new) == ("", "pending"), r
        else:
            assert old == current[pid], r
            assert new in TRANSITIONS[old] or (old, new) == ("completed", "completed"), r
        current[pid] = new
    assert current == status


async def test_member_balances_agree_with_open_invoices(bulk):
    await none_of("""
        SELECT m.id FROM member m
        LEFT JOIN (SELECT member, sum(amount) AS owed FROM ledger_leg WHERE account = 'receivable' GROUP BY member) r
               ON r.member = m.id
        LEFT JOIN (SELECT member, sum(total - paid) AS open FROM invoice WHERE status IN ('open', 'partially_paid')
                   GROUP BY member) i ON i.member = m.id
        WHERE coalesce(r.owed, 0) <> coalesce(i.open, 0)""")
    await none_of("""SELECT member FROM ledger_leg WHERE account = 'member_credit' GROUP BY member HAVING sum(amount) > 0""")
    from portal.billing.ledger import member_balances

    busy = (await sql("SELECT member, sum(total - paid) AS open FROM invoice WHERE status IN ('open', 'partially_paid') "
                      "GROUP BY member ORDER BY 2 DESC LIMIT 1"))[0]
    owed, _credit = await member_balances(busy["member"])
    assert owed.amount == busy["open"] > 0


async def test_memberships_follow_their_invoices(bulk):
    from portal.members.memberships import status_on

    day = today()
    for ms in await sql("SELECT id, start_date, end_date, status FROM membership WHERE status NOT IN ('unpaid', 'cancelled')"):
        assert ms["status"] == status_on(ms["start_date"], ms["end_date"], day), ms
    # Waiting for its first invoice; cancelled with it voided; started when it was paid.
    await none_of("""
        SELECT ms.id FROM membership ms JOIN invoice i ON i.membership = ms.id AND i.kind = 'new'
        WHERE (ms.status = 'unpaid') <> (i.status IN ('open', 'partially_paid'))
           OR (ms.status = 'cancelled') <> (i.status = 'void')""")
    # A paid renewal made the next membership, from the day after the old one ended or later.
    await none_of("""
        SELECT i.id FROM invoice i JOIN membership old ON old.id = i.membership
        WHERE i.kind = 'renewal' AND i.status = 'paid' AND NOT EXISTS (
            SELECT 1 FROM membership nxt WHERE nxt.member = i.member AND nxt.start_date > old.end_date)""")
    await none_of("""
        SELECT member FROM membership WHERE status IN ('active', 'pending', 'unpaid')
        GROUP BY member HAVING count(*) FILTER (WHERE status = 'active') > 1""")
    await none_of("SELECT id FROM invoice WHERE issue_date > {} OR created_at > now()", day)
    await none_of("SELECT id FROM payment WHERE created_at > now()")


async def test_check_ins_follow_the_memberships_paid_for(bulk):
    """The door's history: let in (green, amber in the last week) only on a day a paid membership
    ran; turned away red only after one ran out; an override has its reason and who gave it."""
    assert bulk.counts["visit"] > MEMBERS  # most members come in more than once in the window
    rows = (await sql("""SELECT count(*) AS n, count(DISTINCT member) AS members,
                                count(*) FILTER (WHERE colour = 'amber') AS amber,
                                count(*) FILTER (WHERE outcome = 'refused') AS refused,
                                count(*) FILTER (WHERE outcome = 'override') AS overridden,
                                min(at)::date AS first FROM visit"""))[0]
    assert rows["n"] == bulk.counts["visit"] and rows["members"] > MEMBERS // 2
    assert rows["amber"] and rows["refused"] and rows["overridden"], rows
    from demo.visits import VISIT_DAYS
    from portal.settings import get_settings

    assert rows["first"] >= today() - timedelta(days=VISIT_DAYS + 1)
    covered = """EXISTS (SELECT 1 FROM membership ms WHERE ms.member = v.member
                         AND ms.status NOT IN ('unpaid', 'cancelled')
                         AND (v.at AT TIME ZONE {}) ::date BETWEEN ms.start_date AND ms.end_date)"""
    tz = get_settings().timezone
    await none_of(f"SELECT v.id FROM visit v WHERE v.outcome = 'allowed' AND NOT {covered}", tz)
    await none_of(f"SELECT v.id FROM visit v WHERE v.outcome <> 'allowed' AND {covered}", tz)
    await none_of("SELECT id FROM visit WHERE at > now() OR (outcome = 'override') <> (override_reason <> '')"
                  " OR (outcome = 'override') <> (overridden_by IS NOT NULL)")
    await none_of("SELECT v.id FROM visit v JOIN member m ON m.id = v.member WHERE v.at < m.created_at")


async def test_the_app_carries_on_after_the_bulk_rows(bulk):
    from portal.billing.invoices import issue_invoice, lock_member, plan_line
    from portal.lib import db
    from portal.lib.money import Money
    from portal.payments.service import record_desk_payment
    from tables.members import Plan

    member = (await sql("SELECT id FROM member ORDER BY id DESC LIMIT 1"))[0]["id"]
    plan = await Plan.select().where(Plan.name == "Monthly").first()
    last = (await sql("SELECT max(number) AS n FROM invoice WHERE number LIKE {}", f"INV-{today().year}-%"))[0]["n"]
    async with db.transaction():
        await lock_member(member)
        invoice = await issue_invoice(member, [plan_line(plan)], kind="other", plan_id=plan["id"])
    assert invoice["number"] == f"INV-{today().year}-{int(last[-6:]) + 1:06d}"
    staff = (await sql("SELECT id, location FROM staff WHERE role = 'front_desk' LIMIT 1"))[0]
    recorded = await record_desk_payment(member_id=member, method="cash", amount=Money(invoice["total"]),
                                         invoice_id=invoice["id"], idempotency_key="after-bulk-1",
                                         staff_id=staff["id"], location_id=staff["location"])
    assert recorded.payment["status"] == "completed" and recorded.payment["receipt_number"].startswith("RCP-")
    await none_of("SELECT entry FROM ledger_leg GROUP BY entry, currency HAVING sum(amount) <> 0")


async def test_the_pages_work_on_bulk_data(bulk, app):
    busy = (await sql("SELECT member FROM payment WHERE member <> (SELECT id FROM member WHERE member_number = 'WALKIN') "
                      "GROUP BY member ORDER BY count(*) DESC LIMIT 1"))[0]["member"]
    invoice = (await sql("SELECT invoice FROM allocation GROUP BY invoice ORDER BY count(*) DESC, invoice LIMIT 1"))[0]
    payment = (await sql("SELECT id FROM payment WHERE status = 'partially_refunded' LIMIT 1"))[0]["id"]
    async with PortalClient(app) as manager:
        await manager.login("manager", "manager")
        for path in ["/members", "/members?q=wa", f"/members/{busy}", "/payments", "/payments?status=refunded",
                     f"/invoices/{invoice['invoice']}", f"/payments/{payment}"]:
            r = await manager.get(path)
            assert r.status_code == 200, (path, r.status_code)
        r = await manager.get(f"/members/{busy}")
        assert "RCP-" in r.text


async def test_a_second_bulk_load_is_refused_unless_appending(bulk):
    from demo.bulk import DemoDataRefused, load_bulk

    with pytest.raises(DemoDataRefused, match="already has"):
        await load_bulk(10, 50, show_progress=False)
    before = (await sql("SELECT count(*) AS n FROM payment"))[0]["n"]
    report = await load_bulk(20, 150, seed=12, force_append=True, show_progress=False)
    assert report.counts["payment"] == 150
    assert (await sql("SELECT count(*) AS n FROM payment"))[0]["n"] == before + 150
    await none_of("SELECT entry FROM ledger_leg GROUP BY entry, currency HAVING sum(amount) <> 0")
    await none_of("SELECT number FROM invoice GROUP BY number HAVING count(*) > 1")
    await none_of("SELECT member_number FROM member GROUP BY member_number HAVING count(*) > 1")
    from portal.billing.ledger import trial_balance

    assert sum((await trial_balance()).values()) == Decimal(0)


async def test_sales_discounts_freezes_and_payers_are_there_and_agree_with_the_books(bulk):
    """Issue 14's money in the bulk history (demo.extras): each kind present, in its proportion,
    and written as the app's rules write it, with the books agreeing after."""
    from demo import extras
    from tests.billing.helpers import assert_books_agree

    await assert_books_agree()  # legs sum to zero, paid = allocations, payment figures = payments
    counts = bulk.counts

    # Desk sales: 8% of the payments, walk-ins and members, each an invoice of its items paid at once.
    assert counts["sale"] == round((PAYMENTS - 1) * extras.SALE_SHARE)  # one prompt is in flight
    sales = (await sql("""SELECT count(*) FILTER (WHERE s.member IS NULL) AS walkin, count(*) AS n,
                                 count(*) FILTER (WHERE s.method = 'cash') AS cash,
                                 count(DISTINCT sl.category) AS categories
                          FROM sale s JOIN sale_line sl ON sl.sale = s.id"""))[0]
    assert 0.3 < sales["walkin"] / sales["n"] < 0.6 and sales["cash"] and sales["categories"] >= 4, sales
    await none_of("""
        SELECT s.id FROM sale s JOIN invoice i ON i.id = s.invoice JOIN payment p ON p.id = s.payment
        JOIN member m ON m.id = i.member
        WHERE i.kind <> 'other' OR i.status <> 'paid' OR p.status <> 'completed' OR p.amount <> i.total
           OR p.invoice <> i.id OR p.member <> i.member OR (s.member IS NULL) <> (m.member_number = 'WALKIN')
           OR (s.method = 'cash') <> (s.tendered IS NOT NULL) OR s.tendered - s.change <> i.total
           OR p.method <> s.method OR i.issue_date <> i.due_date""")
    await none_of("""
        SELECT s.id FROM sale s JOIN invoice_line l ON l.invoice = s.invoice
        LEFT JOIN sale_line sl ON sl.invoice_line = l.id AND sl.sale = s.id
        LEFT JOIN catalogue_item c ON c.id = sl.item
        WHERE l.total > 0 AND (sl.id IS NULL OR c.name <> l.description OR c.category <> sl.category)""")
    # Each line's net is credited to its item's revenue account (portal.sales.catalogue.DEFAULT_ACCOUNT).
    await none_of("""
        SELECT s.id FROM sale s JOIN ledger_entry e ON e.invoice = s.invoice AND e.kind = 'invoice_issued'
        JOIN ledger_leg g ON g.entry = e.id
        WHERE g.account LIKE 'revenue%' AND -g.amount <> (
            SELECT sum(l.net) FROM sale_line sl JOIN invoice_line l ON l.id = sl.invoice_line
            JOIN catalogue_item c ON c.id = sl.item WHERE sl.sale = s.id AND c.revenue_account = g.account)""")
    packs = (await sql("SELECT count(*) AS n, coalesce(sum(used), 0) AS used FROM session_pack"))[0]
    assert packs["n"] and packs["used"], packs
    await none_of("""
        SELECT p.id FROM session_pack p JOIN sale s ON s.id = p.sale LEFT JOIN session_use u ON u.pack = p.id
        WHERE s.member <> p.member GROUP BY p.id HAVING count(u.id) <> p.used OR p.used > p.sessions
        UNION SELECT p.id FROM session_pack p LEFT JOIN session_use u ON u.pack = p.id
        GROUP BY p.id HAVING count(u.id) <> max(p.used) OR max(p.used) > max(p.sessions)""")

    # Discounts: on a line and on a whole invoice, by the desk, a manager or a promo code; approved
    # ones are a negative line and their own entry against the discounts account.
    kinds = (await sql("""SELECT count(*) FILTER (WHERE status = 'approved' AND invoice_line IS NOT NULL) AS line,
                                 count(*) FILTER (WHERE status = 'approved' AND invoice_line IS NULL) AS whole,
                                 count(*) FILTER (WHERE status = 'approved' AND promo IS NOT NULL) AS promo,
                                 count(*) FILTER (WHERE status = 'pending') AS pending,
                                 count(*) FILTER (WHERE status = 'rejected') AS rejected FROM discount"""))[0]
    assert all(kinds.values()), kinds
    plan_invoices = (await sql("SELECT count(*) AS n FROM invoice WHERE kind <> 'other'"))[0]["n"]
    assert 0.04 < kinds["line"] / plan_invoices < 0.25, (kinds, plan_invoices)
    await none_of("""
        SELECT d.id FROM discount d JOIN invoice_line dl ON dl.id = d.discount_line
        JOIN ledger_entry e ON e.id = d.entry JOIN ledger_leg g ON g.entry = e.id
        WHERE d.status = 'approved' GROUP BY d.id, dl.total, dl.net, dl.vat, e.kind, e.invoice, d.invoice
        HAVING dl.total <> -d.amount OR dl.net <> -d.net OR dl.vat <> -d.vat OR d.net + d.vat <> d.amount
            OR e.kind <> 'discount' OR e.invoice <> d.invoice
            OR sum(g.amount) FILTER (WHERE g.account = 'discounts') <> d.net
            OR coalesce(sum(g.amount) FILTER (WHERE g.account = 'vat_payable'), 0) <> d.vat
            OR sum(g.amount) FILTER (WHERE g.account = 'receivable') <> -d.amount""")
    await none_of("""
        SELECT id FROM discount WHERE (status = 'approved') <> (entry IS NOT NULL AND discount_line IS NOT NULL
                                                                AND approved_by IS NOT NULL)
            OR (status = 'pending') <> (approved_by IS NULL) OR reason = ''""")
    await none_of("""SELECT d.id FROM discount d JOIN invoice i ON i.id = d.invoice
                     WHERE (d.status = 'pending') <> (i.reminders_paused <> '') AND d.status = 'pending'""")
    await none_of("""SELECT d.id FROM discount d JOIN promo_code p ON p.id = d.promo JOIN invoice i ON i.id = d.invoice
                     WHERE i.issue_date NOT BETWEEN p.valid_from AND p.valid_to""")
    await none_of("SELECT promo, member FROM discount WHERE promo IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1")
    from portal.billing.ledger import trial_balance

    assert (await trial_balance())["discounts"] > 0

    # Freezes: the membership's end moved by the frozen days; nobody let in while frozen.
    freezes = (await sql("""SELECT count(*) AS n, count(*) FILTER (WHERE ended_at IS NOT NULL) AS early,
                                   count(DISTINCT member) AS members FROM membership_freeze"""))[0]
    assert freezes["n"] and freezes["early"], freezes
    await none_of("""
        SELECT f.id FROM membership_freeze f JOIN membership ms ON ms.id = f.membership
        WHERE f.days <> f.end_date - f.start_date + 1 OR f.start_date < ms.start_date OR f.end_date > ms.end_date
           OR f.member <> ms.member OR ms.status IN ('unpaid', 'cancelled') OR f.created_at > now()
           OR f.days < 1 OR (f.ended_at IS NOT NULL) <> (f.ended_early_reason <> '')""")
    await none_of("""
        SELECT v.id FROM visit v JOIN membership_freeze f ON f.member = v.member
        WHERE (v.at AT TIME ZONE 'Africa/Nairobi')::date BETWEEN f.start_date AND f.end_date""")

    # Payers: parents and companies, each for several members; every invoice of a linked member is
    # addressed to the payer as it was; companies print their KRA PIN.
    payers = {r["kind"]: r for r in await sql("""
        SELECT p.kind, count(DISTINCT p.id) AS payers, count(pm.id) AS members, min(p.kra_pin) AS pin
        FROM payer p JOIN payer_member pm ON pm.payer = p.id GROUP BY p.kind""")}
    assert set(payers) == {"person", "company"} and payers["company"]["pin"].startswith("P"), payers
    await none_of("SELECT payer FROM payer_member GROUP BY payer HAVING count(*) < 2")
    await none_of("""
        SELECT i.id FROM invoice i JOIN payer_member pm ON pm.member = i.member
        LEFT JOIN invoice_bill_to b ON b.invoice = i.id
        WHERE i.kind <> 'other' AND (b.payer IS DISTINCT FROM pm.payer OR i.created_at < pm.linked_at)""")
    await none_of("""
        SELECT b.id FROM invoice_bill_to b JOIN payer p ON p.id = b.payer
        WHERE (b.name, b.kind, b.kra_pin, b.address) <> (p.name, p.kind, p.kra_pin, p.address)""")
