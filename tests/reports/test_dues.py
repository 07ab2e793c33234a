"""Payments due and renewals due, checked against small hand-made data sets where the answer
is known, and with their query counts pinned (two per list, plus the session)."""

from datetime import timedelta
from decimal import Decimal

from portal.billing.invoices import void_invoice
from portal.lib.clock import today
from portal.reports import dues
from tables.billing import Invoice
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member, make_members, make_membership, make_plan


async def _due_in(member: int, amount, days: int) -> dict:
    inv = await invoice_for(member, amount)
    await Invoice.update({Invoice.due_date: today() + timedelta(days=days)}).where(Invoice.id == inv["id"])
    return inv


async def _gym() -> dict:
    """Five members, one invoice in each urgency bucket, part-payments and a void among them."""
    m = {name: await make_member(name, "Test", phone=f"2547110000{i:02d}") for i, name in
         enumerate(["Overdue", "Soon", "Week", "Fortnight", "Later"])}
    late = await _due_in(m["Overdue"], 3000, -20)   # 20 days overdue: past the 14-day grace, so on hold
    await pay(m["Overdue"], 1000, invoice_id=late["id"])  # part-paid: 2,000 still owed
    await _due_in(m["Soon"], 1500, 2)
    await _due_in(m["Week"], 2500, 6)
    await _due_in(m["Fortnight"], 4000, 10)
    await _due_in(m["Later"], 5000, 30)
    paid = await _due_in(m["Later"], 700, 1)       # paid in full: not due
    await pay(m["Later"], 700, invoice_id=paid["id"])
    voided = await _due_in(m["Soon"], 900, -3)     # void: not due
    await void_invoice(voided["id"], "Raised by mistake", None)
    return m


async def test_every_open_invoice_is_in_one_urgency_with_what_is_still_owed(db):
    await _gym()
    page = await dues.payments_due(dues.DueFilters())
    assert {k: (v["n"], v["owed"]) for k, v in page.summary.items()} == {
        "overdue": (1, Decimal("2000.00")), "d3": (1, Decimal("1500.00")), "d7": (1, Decimal("2500.00")),
        "d14": (1, Decimal("4000.00")), "later": (1, Decimal("5000.00"))}
    assert page.total_owed == Decimal("15000.00") and page.count == 5
    assert [(r["first_name"], r["urgency"], r["owed"]) for r in page.rows] == [
        ("Overdue", "overdue", Decimal("2000.00")), ("Soon", "d3", Decimal("1500.00")), ("Week", "d7", Decimal("2500.00")),
        ("Fortnight", "d14", Decimal("4000.00")), ("Later", "later", Decimal("5000.00"))]
    overdue = page.rows[0]
    assert overdue["hold"] and overdue["days_overdue"] == 20 and overdue["last_paid_at"] is not None
    assert not any(r["hold"] for r in page.rows[1:])


async def test_filters_search_and_paying_clears_the_hold(db):
    m = await _gym()
    only = await dues.payments_due(dues.DueFilters(urgency="d7"))
    assert [r["first_name"] for r in only.rows] == ["Week"] and only.count == 1
    assert only.total_owed == Decimal("15000.00")  # the cards above always show the whole picture
    found = await dues.payments_due(dues.DueFilters(q="fortn"))
    assert [r["first_name"] for r in found.rows] == ["Fortnight"] and found.count == 1
    by_phone = await dues.payments_due(dues.DueFilters(q="0711000002"))
    assert [r["first_name"] for r in by_phone.rows] == ["Week"]
    await pay(m["Overdue"], 2000)
    after = await dues.payments_due(dues.DueFilters())
    assert after.summary["overdue"]["n"] == 0 and not any(r["hold"] for r in after.rows)


async def test_the_due_page_shows_it_and_runs_a_fixed_number_of_queries(alice):
    await _gym()
    small = await alice.get("/dues")
    assert small.status_code == 200 and 'data-testid="hold"' in small.text
    assert 'data-testid="total-due">KES 15,000<' in small.text
    await make_members(400, start=100)
    big_members = [r["id"] for r in await Invoice.raw("SELECT id FROM member ORDER BY id LIMIT 120")]
    for member in big_members:
        await _due_in(member, 1000, -1)
    big = await alice.get("/dues")
    assert small.headers["x-query-count"] == big.headers["x-query-count"] == "3"
    partial = await alice.get("/dues?urgency=overdue&page=2", htmx=True)
    assert partial.headers["x-query-count"] == "3" and "<html" not in partial.text
    assert "Page 2 of 3" in partial.text


async def test_renewals_due_by_window_with_their_renewal_invoices(bob):
    plan = await make_plan("Monthly", "3000")
    members = {name: await make_member(name, "Renew") for name in ["Ending", "Invoiced", "Paid", "Later", "Lapsed", "Renewed"]}
    t = today()
    await make_membership(members["Ending"], plan, t - timedelta(days=25), t + timedelta(days=5), "active")
    invoiced = await make_membership(members["Invoiced"], plan, t - timedelta(days=24), t + timedelta(days=6), "active")
    paid = await make_membership(members["Paid"], plan, t - timedelta(days=27), t + timedelta(days=3), "active")
    await make_membership(members["Later"], plan, t - timedelta(days=10), t + timedelta(days=20), "active")
    await make_membership(members["Lapsed"], plan, t - timedelta(days=40), t - timedelta(days=10), "expired")
    await make_membership(members["Renewed"], plan, t - timedelta(days=28), t + timedelta(days=2), "active")
    await make_membership(members["Renewed"], plan, t + timedelta(days=3), t + timedelta(days=33), "pending")
    for member, ms in ((members["Invoiced"], invoiced), (members["Paid"], paid)):
        inv = await invoice_for(member, 3000)
        await Invoice.update({Invoice.kind: "renewal", Invoice.membership: ms}).where(Invoice.id == inv["id"])
        if member == members["Paid"]:
            await pay(member, 3000, invoice_id=inv["id"])

    week = await dues.renewals_due("7")
    assert [r["first_name"] for r in week.rows] == ["Renewed", "Paid", "Ending", "Invoiced"]  # soonest first
    assert [(r["renewal_status"], r["renewed"]) for r in week.rows] == [
        (None, True), ("paid", True), (None, False), ("open", False)]  # a paid renewal starts the next membership
    assert (week.count, week.invoiced, week.paid, week.renewed) == (4, 2, 1, 2)
    assert week.expected == Decimal("12000.00") and week.collected == Decimal("3000.00")
    month = await dues.renewals_due("30")
    assert [r["first_name"] for r in month.rows] == ["Renewed", "Paid", "Ending", "Invoiced", "Later"]
    lapsed = await dues.renewals_due("expired")
    assert [r["first_name"] for r in lapsed.rows] == ["Lapsed"]
    # Without the summary (the API's list): the same rows and count, pages of 3, nothing summed.
    for window, full in (("7", week), ("30", month), ("expired", lapsed)):
        bare = await dues.renewals_due(window, size=3, summary=False)
        assert bare.rows == full.rows[:3] and bare.count == len(full.rows) and bare.expected == 0
    second = await dues.renewals_due("30", page=2, size=3, summary=False)
    assert second.rows == month.rows[3:] and second.pages == 2

    page = await bob.get("/renewals?window=7")
    assert page.status_code == 200 and page.headers["x-query-count"] == "3"
    assert 'data-testid="renewal-expected">KES 12,000<' in page.text


async def test_a_history_restore_of_the_due_page_gets_the_whole_page(bob):
    # /dues pushes its URL (hx-push-url): going back to it when htmx's history cache has lost it
    # asks with both headers, and htmx puts what comes back in place of the whole page.
    await _gym()
    restore = await bob.http.get("/dues?urgency=d7", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert restore.status_code == 200
    assert "<html" in restore.text and 'data-testid="dues-filters"' in restore.text and 'id="dues-table"' in restore.text
    partial = await bob.http.get("/dues?urgency=d7", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and 'data-testid="total-due"' in partial.text
    assert "<html" not in partial.text and 'data-testid="dues-filters"' not in partial.text
