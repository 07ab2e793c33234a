"""The catalogue, sale, custom-invoice and session pages as staff use them: forms that keep what
was typed and say what is wrong, no 500, roles, and query counts that do not grow."""

from decimal import Decimal

import pytest

from tables.audit import AuditLog
from tables.billing import Invoice, Payment
from tables.sales import CatalogueItem, Sale, SessionPack
from tests.billing.helpers import assert_books_agree
from tests.factories import make_location, make_member
from tests.sales.helpers import default_items, make_item
from tests.support.client import field_error, field_value

D = Decimal


async def test_a_manager_adds_and_edits_an_item_and_bad_input_comes_back(bob):
    r = await bob.post("/catalogue/new", {"name": "Towel hire", "category": "other", "price": "12.345", "vat_rate": "116",
                                          "vat_treatment": "inclusive", "kind": "pack", "sessions": "", "active": "on"})
    assert r.status_code == 422
    assert field_error(r.text, "price") == "At most 2 decimal places"
    assert field_error(r.text, "vat_rate") == "Enter a VAT rate between 0 and 100 (e.g. 16)"
    assert field_error(r.text, "sessions") == "A pack gives between 1 and 200 sessions"
    assert field_value(r.text, "name") == "Towel hire" and field_value(r.text, "price") == "12.345"
    assert await CatalogueItem.count() == 0
    r = await bob.post("/catalogue/new", {"name": "Towel hire", "category": "other", "price": "150", "vat_rate": "16",
                                          "vat_treatment": "exclusive", "kind": "simple", "active": "on"})
    assert r.status_code == 303
    item = await CatalogueItem.select().first()
    assert (item["price"], item["vat_inclusive"], item["revenue_account"], item["active"]) == (D("150.00"), False, "revenue", True)
    r = await bob.post(f"/catalogue/{item['id']}/edit", {"name": "Towel hire", "category": "drinks", "price": "160",
                                                        "vat_rate": "16", "vat_treatment": "inclusive", "kind": "simple"})
    assert r.status_code == 303
    item = await CatalogueItem.select().first()
    assert (item["price"], item["category"], item["revenue_account"], item["active"]) == (D("160.00"), "drinks", "revenue_retail", False)
    r = await bob.post("/catalogue/new", {"name": "towel HIRE", "category": "other", "price": "1", "vat_treatment": "inclusive",
                                          "kind": "simple"})
    assert field_error(r.text, "name") == "Another item already has this name"
    listing = await bob.get("/catalogue")
    assert listing.status_code == 200 and "Towel hire" in listing.text and "inactive" in listing.text
    assert await AuditLog.count().where(AuditLog.action == "catalogue.saved") == 2


async def test_the_front_desk_cannot_edit_the_catalogue_or_issue_custom_invoices(alice):
    member = await make_member()
    for path in ("/catalogue", "/catalogue/new", f"/members/{member}/invoices/new"):
        assert (await alice.get(path)).status_code in (401, 403), path
    assert (await alice.post(f"/members/{member}/invoices/new", {"reason": "x"})).status_code in (401, 403)


async def test_a_walk_in_sale_at_the_desk_shows_the_change_and_the_slip(alice):
    """Day pass 500 + 2 Water at 100 = 700; 1,000 tendered -> change 300.00, shown on the sale page;
    the 80 mm slip of its payment renders."""
    await make_location()
    items = await default_items()
    form = await alice.get("/sales/new")
    assert form.status_code == 200 and "Day pass" in form.text
    key = field_value(form.text, "idempotency_key")
    data = {"idempotency_key": key, f"qty_{items['Day pass']}": "1", f"qty_{items['Water']}": "2", "method": "cash",
            "tendered": "1,000", "buyer_name": "Brian", "buyer_phone": "0712 345 678"}
    r = await alice.post("/sales/new", data)
    assert r.status_code == 303, r.text
    page = await alice.get(r.headers["location"])
    assert 'data-testid="sale-change">KES 300' in page.text and "Brian" in page.text
    sale = await Sale.select().first()
    assert (sale["change"], sale["buyer_phone"]) == (D("300.00"), "254712345678")
    slip = await alice.get(f"/payments/{sale['payment']}/slip")
    assert slip.status_code == 200 and "Day pass" in slip.text
    again = await alice.post("/sales/new", data)  # sent twice: the same sale
    assert again.headers["location"] == r.headers["location"] and await Payment.count() == 1
    await assert_books_agree()


async def test_bad_sale_input_comes_back_with_what_was_typed(alice):
    await make_location()
    items = await default_items()
    member = await make_member()
    r = await alice.post("/sales/new", {f"qty_{items['Water']}": "2", "method": "cash", "tendered": "150",
                                        "buyer_phone": "12345", "buyer_name": "Brian"})
    assert r.status_code == 422
    assert field_error(r.text, "tendered") == "Cash tendered is less than the total, KES 200"
    assert field_error(r.text, "buyer_phone") is not None
    assert field_value(r.text, f"qty_{items['Water']}") == "2" and field_value(r.text, "buyer_name") == "Brian"
    assert field_value(r.text, "tendered") == "150"
    r = await alice.post("/sales/new", {f"qty_{items['Water']}": "x", "method": "cash", "tendered": "abc"})
    assert r.status_code == 422 and field_error(r.text, "items") == "Quantities are whole numbers"
    assert field_error(r.text, "tendered") == "&#39;abc&#39; is not an amount"
    r = await alice.post("/sales/new", {f"qty_{items['Water']}": "1", "method": "account"})
    assert r.status_code == 422 and "only a member" in field_error(r.text, "method")
    r = await alice.post(f"/members/{member}/sale", {"method": "cash", "tendered": "100"})
    assert r.status_code == 422 and field_error(r.text, "items") == "Add at least one item"
    r = await alice.post(f"/members/{member}/sale", {f"qty_{items['Water']}": "1", "method": "bank"})
    assert r.status_code == 422 and field_error(r.text, "reference") == "Enter the bank reference"
    r = await alice.post("/members/999999/sale", {f"qty_{items['Water']}": "1", "method": "cash", "tendered": "100"})
    assert r.status_code == 404
    assert await Invoice.count() == 0 and await Payment.count() == 0


async def test_a_member_buys_a_pack_on_account_and_uses_sessions_from_their_page(alice):
    """PT pack of 10 on the member's account (invoice 12,000 open); Use a PT session three times:
    10 - 3 = 7 left on the member page."""
    await make_location()
    items = await default_items()
    member = await make_member()
    page = await alice.get(f"/members/{member}")
    assert 'data-testid="sell-to-member"' in page.text and 'data-testid="use-session"' not in page.text
    r = await alice.post(f"/members/{member}/sale", {f"qty_{items['PT pack of 10']}": "1", "method": "account",
                                                     "idempotency_key": "k-pack"})
    assert r.status_code == 303
    invoice = await Invoice.select().first()
    assert (invoice["total"], invoice["status"]) == (D("12000.00"), "open")
    for _ in range(3):
        r = await alice.post(f"/members/{member}/sessions/use")
        assert r.status_code == 303 and "notice=session_used" in r.headers["location"]
    page = await alice.get(f"/members/{member}")
    assert 'data-testid="sessions-remaining">7<' in page.text
    assert (await SessionPack.select().first())["used"] == 3
    other = await make_member()
    r = await alice.post(f"/members/{other}/sessions/use")
    assert "notice=no_sessions" in r.headers["location"]
    await assert_books_agree()


async def test_a_manager_issues_a_custom_invoice_and_bad_lines_come_back(bob):
    member = await make_member()
    form = await bob.get(f"/members/{member}/invoices/new")
    assert form.status_code == 200
    r = await bob.post(f"/members/{member}/invoices/new", {
        "description_0": "Towel hire", "quantity_0": "three", "unit_price_0": "333.33", "vat_rate_0": "16",
        "vat_treatment_0": "exclusive", "due_date": "tomorrow", "reason": ""})
    assert r.status_code == 422
    assert field_error(r.text, "quantity_0") == "A whole number from 1"
    assert field_error(r.text, "due_date") == "Enter a date like 2026-12-31"
    assert field_error(r.text, "reason") == "Give a reason for this invoice"
    assert field_value(r.text, "description_0") == "Towel hire" and field_value(r.text, "quantity_0") == "three"
    r = await bob.post(f"/members/{member}/invoices/new", {"due_date": "2999-01-01", "reason": "x"})
    assert field_error(r.text, "lines") == "Add at least one line with a description and a price"
    from datetime import timedelta

    from portal.lib.clock import today
    due = (today() + timedelta(days=7)).isoformat()
    r = await bob.post(f"/members/{member}/invoices/new", {
        "description_0": "Towel hire", "quantity_0": "3", "unit_price_0": "333.33", "vat_rate_0": "16",
        "vat_treatment_0": "exclusive", "description_1": "Guest session", "quantity_1": "1", "unit_price_1": "250",
        "vat_rate_1": "16", "vat_treatment_1": "inclusive", "due_date": due, "reason": "Towels lost",
        "idempotency_key": "custom-k"})
    assert r.status_code == 303 and r.headers["location"].startswith("/invoices/")
    invoice = await Invoice.select().first()
    assert (invoice["total"], invoice["tax_total"], invoice["due_date"].isoformat()) == (D("1409.99"), D("194.48"), due)
    assert (await bob.get(r.headers["location"])).status_code == 200
    await assert_books_agree()


@pytest.mark.parametrize("extra", [0, 40])
async def test_the_sale_pages_query_counts_are_fixed(alice, bob, extra):
    await make_location()
    items = await default_items()
    for i in range(extra):
        await make_item(f"Extra {i}", "10")
    member = await make_member()
    for _ in range(2):
        await alice.post(f"/members/{member}/sale", {f"qty_{items['PT pack of 10']}": "1", "method": "account"})
    # session, items, desks
    assert int((await alice.get("/sales/new")).headers["x-query-count"]) == 3
    # session, member, items, desks
    assert int((await alice.get(f"/members/{member}/sale")).headers["x-query-count"]) == 4
    sale = await Sale.select(Sale.id).first()
    # session, sale, invoice, lines, member (no payment on account)
    assert int((await alice.get(f"/sales/{sale['id']}")).headers["x-query-count"]) == 5
    # session, items
    assert int((await bob.get("/catalogue")).headers["x-query-count"]) == 2
    # session, member
    assert int((await bob.get(f"/members/{member}/invoices/new")).headers["x-query-count"]) == 2


async def test_the_payments_list_and_its_csv_say_what_was_sold(bob):
    """A walk-in's 700.00 (1 Day pass, 2 Water) reads "1 x Day pass, 2 x Water" in the payments
    list and in its CSV export, with the buyer's name."""
    await make_location()
    items = await default_items()
    r = await bob.post("/sales/new", {f"qty_{items['Day pass']}": "1", f"qty_{items['Water']}": "2", "method": "cash",
                                      "tendered": "700", "buyer_name": "Brian"})
    assert r.status_code == 303
    listing = await bob.get("/payments")
    assert 'data-testid="sold">1 x Day pass, 2 x Water<' in listing.text and "(Brian)" in listing.text
    assert int(listing.headers["x-query-count"]) == 5  # as before: the sale rides on the page's one query
    csv = await bob.get("/payments.csv")
    header, row = csv.text.strip().splitlines()[:2]
    assert header.endswith("sold,buyer_name") and row.endswith('"1 x Day pass, 2 x Water",Brian'), (header, row)


async def test_analytics_shows_revenue_by_category_and_ranks_no_walk_in(bob):
    """A walk-in's Day pass (500: net 431.03) and 2 Water (200: net 172.41), a member's PT pack on
    account (12,000: net 10,344.83) and a plan invoice of 3,000 (net 2,586.21): four categories, net
    of VAT. The walk-in account's 700 is not a "top member"."""
    from tests.billing.helpers import invoice_for, pay

    await make_location()
    items = await default_items()
    member = await make_member()
    await bob.post("/sales/new", {f"qty_{items['Day pass']}": "1", f"qty_{items['Water']}": "2", "method": "cash",
                                  "tendered": "700"})
    await bob.post(f"/members/{member}/sale", {f"qty_{items['PT pack of 10']}": "1", "method": "account"})
    plan_invoice = await invoice_for(member, 3000)
    await Invoice.update({Invoice.plan: None}).where(Invoice.id == plan_invoice["id"])  # no plan row: "other"
    await pay(member, 100)
    page = await bob.get("/analytics?preset=7d")
    assert page.status_code == 200
    from portal.reports import analytics
    rows = await analytics.revenue_by_category(analytics.Period.parse({"preset": "7d"}))
    assert [(r["category"], r["net"]) for r in rows] == [
        ("personal_training", D("10344.83")), ("other", D("2586.21")), ("day_pass", D("431.03")), ("drinks", D("172.41"))]
    assert 'data-category="drinks"><td>Drinks</td><td class="num">KES 172.41<' in page.text
    top = page.text.split('data-testid="top-members"')[1].split("</table>")[0]
    assert "Walk-in" not in top and "Wanjiku" in top


async def test_a_session_is_used_at_check_in_for_that_visit(alice):
    """A member on an active plan with a PT pack of 10 checks in: green, with "Use a PT session
    (10 left)"; pressing it uses one for that visit and goes back to the door: 9 left. A visit id
    of another member is not recorded against this use."""
    import re
    from datetime import timedelta

    from portal.lib.clock import today
    from portal.sales import packs
    from tables.sales import SessionUse
    from tests.factories import make_membership, make_plan

    await make_location()
    items = await default_items()
    member = await make_member(number="PTF0500")
    await make_membership(member, await make_plan(), today() - timedelta(days=3), today() + timedelta(days=27), "active")
    await alice.post(f"/members/{member}/sale", {f"qty_{items['PT pack of 10']}": "1", "method": "account"})
    from tables.billing import Invoice as Inv
    from tests.billing.helpers import pay
    await pay(member, 12000)  # paid: green at the door
    r = await alice.post("/checkin", {"q": "PTF0500"}, htmx=True)
    assert 'data-colour="green"' in r.text and "Use a PT session (10 left)" in r.text
    visit = int(re.search(r'name="visit" value="(\d+)"', r.text).group(1))
    used = await alice.post(f"/members/{member}/sessions/use", {"visit": str(visit), "back": "checkin"})
    assert used.status_code == 303 and used.headers["location"] == "/checkin?notice=session_used"
    assert (await SessionUse.select().first())["visit"] == visit and await packs.sessions_remaining(member) == 9
    other = await make_member()
    await alice.post(f"/members/{other}/sale", {f"qty_{items['PT pack of 10']}": "1", "method": "account"})
    await alice.post(f"/members/{other}/sessions/use", {"visit": str(visit)})
    last = await SessionUse.select().order_by(SessionUse.id, ascending=False).first()
    assert last["visit"] is None
    assert await Inv.count() == 2
    await assert_books_agree()


async def test_a_sale_on_account_can_be_paid_by_m_pesa_from_its_page(alice):
    """A Protein shake (350) on the member's account: the sale page offers an M-Pesa prompt for
    KES 350 for that invoice, through the member page's own form (the worker sends it)."""
    import re

    await make_location()
    items = await default_items()
    member = await make_member(phone="254712000777")
    r = await alice.post(f"/members/{member}/sale", {f"qty_{items['Protein shake']}": "1", "method": "account"})
    page = await alice.get(r.headers["location"])
    assert "Send M-Pesa prompt for KES 350" in page.text
    assert field_value(page.text, "phone") == "0712000777"
    form = dict(re.findall(r'name="(idempotency_key|invoice|amount)" value="([^"]*)"', page.text))
    sent = await alice.post(f"/members/{member}/mpesa", {**form, "phone": "0712000777"})
    assert sent.status_code == 303
    payment = await Payment.select().first()
    invoice = await Invoice.select().first()
    assert (payment["method"], payment["amount"], payment["invoice"], payment["status"]) == ("mpesa", D("350.00"),
                                                                                            invoice["id"], "pending")


async def test_selling_from_the_walk_in_accounts_own_page_is_a_walk_in_sale(alice):
    """The walk-in account's page has Sell too: what it sells is a walk-in sale (paid now, never
    left on the account)."""
    from portal.sales.walkin import walkin_member_id

    await make_location()
    items = await default_items()
    walkin = await walkin_member_id()
    form = await alice.get(f"/members/{walkin}/sale")
    assert form.status_code == 200 and "Sell to a walk-in" in form.text and 'value="account"' not in form.text
    r = await alice.post(f"/members/{walkin}/sale", {f"qty_{items['Water']}": "1", "method": "account"})
    assert r.status_code == 422 and "only a member" in field_error(r.text, "method")
    r = await alice.post(f"/members/{walkin}/sale", {f"qty_{items['Water']}": "1", "method": "cash", "tendered": "100"})
    assert r.status_code == 303 and (await Sale.select().first())["member"] is None
    await assert_books_agree()
