"""The discount form on an invoice's page, the approval queue and promo codes as staff use them:
bad input comes back with what was typed and the field's message, no 500, CSRF, roles, and
query counts that do not grow with the data."""

from datetime import timedelta
from decimal import Decimal

import pytest

from portal.lib.clock import today
from portal.members.enrol import put_on_plan
from tables.billing import Invoice
from tables.discounts import Discount, PromoCode
from tests.billing.helpers import assert_books_agree
from tests.factories import make_location, make_member, make_plan
from tests.support.client import field_error, field_value

D = Decimal


async def _invoice(plan: int | None = None) -> dict:
    member = await make_member()
    membership = await put_on_plan(member, plan or await make_plan("Monthly", "3000"), today(), None)
    return await Invoice.select().where(Invoice.membership == membership.id).first()


async def test_bad_discount_input_comes_back_with_what_was_typed(alice):
    await make_location()
    inv = await _invoice()
    path = f"/invoices/{inv['id']}/discounts"
    r = await alice.post(path, {"kind": "percent", "value": "abc", "reason": ""})
    assert r.status_code == 422
    assert field_error(r.text, "value") == "&#39;abc&#39; is not an amount"
    assert field_error(r.text, "reason") == "Give a reason for the discount"
    assert field_value(r.text, "value") == "abc"
    r = await alice.post(path, {"kind": "percent", "value": "120", "reason": "Student"})
    assert r.status_code == 422 and field_error(r.text, "value") == "A percentage is more than 0 and at most 100"
    assert field_value(r.text, "reason") == "Student"
    r = await alice.post(path, {"kind": "amount", "value": "3001", "reason": "Too much"})
    assert r.status_code == 422 and field_error(r.text, "value") == "A discount cannot be more than the KES 3,000 left to discount"
    r = await alice.post(path, {"kind": "bogus", "value": "1", "reason": "x", "line": "zz"})
    assert r.status_code == 422 and field_error(r.text, "kind") == "Choose percent or amount"
    assert field_error(r.text, "line") == "Choose a line of this invoice"
    r = await alice.post(path, {"promo_code": "NOPE1"})
    assert r.status_code == 422 and field_error(r.text, "promo_code") == "There is no promo code NOPE1"
    r = await alice.post(path, {"promo_code": "a b"})
    assert r.status_code == 422 and field_error(r.text, "promo_code") == "A code is 3 to 30 letters, digits or dashes"
    assert (await alice.post("/invoices/999999/discounts", {"value": "1", "reason": "x"})).status_code == 404
    r = await alice.post(path, {"kind": "percent", "value": "5", "reason": "x"}, csrf=False)
    assert r.status_code == 403
    assert await Discount.count() == 0
    await assert_books_agree()


async def test_the_desk_above_its_limit_is_asked_for_a_manager_who_approves_on_the_spot(alice, bob):
    """Monthly 3,000; the desk asks 20 % (600.00), above its 10 %: the form comes back asking for
    a manager, with what was typed; a wrong password is refused; bob's name and password approve
    it: invoice 2,400.00, bob recorded as approver."""
    await make_location()
    inv = await _invoice()
    path = f"/invoices/{inv['id']}/discounts"
    typed = {"kind": "percent", "value": "20", "reason": "Corporate rate", "action": "give"}
    r = await alice.post(path, typed)
    assert r.status_code == 422
    assert field_error(r.text, "value").startswith("KES 600 is above the front desk&#39;s limit (10%)")
    assert field_value(r.text, "value") == "20" and field_value(r.text, "reason") == "Corporate rate"
    assert 'fieldset class="approve ask"' in r.text
    r = await alice.post(path, {**typed, "manager_username": "bob", "manager_password": "wrong-password"})
    assert r.status_code == 422 and field_error(r.text, "manager_username") == "That is not a manager&#39;s user name and password"
    assert field_value(r.text, "manager_password") == ""
    r = await alice.post(path, {**typed, "manager_username": "alice", "manager_password": "alice-password-1"})
    assert r.status_code == 422, "the desk cannot approve its own"
    assert await Discount.count() == 0
    r = await alice.post(path, {**typed, "manager_username": "Bob", "manager_password": "bob-password-1"})
    assert r.status_code == 303 and r.headers["location"].endswith("notice=discount_given")
    page = await alice.get(r.headers["location"])
    assert "Discount given" in page.text and "Corporate rate" in page.text and "by Bob" in page.text
    inv = await Invoice.select().where(Invoice.id == inv["id"]).first()
    assert inv["total"] == D("2400.00")
    row = await Discount.select().first()
    assert row["status"] == "approved" and row["approved_by"] != row["requested_by"]
    await assert_books_agree()


async def test_the_queue_approves_and_rejects_and_only_managers_see_it(alice, bob):
    """Two invoices of Monthly 3,000; the desk sends 15 % (450.00) of each to the queue. The
    manager approves the first (2,550.00) and rejects the second (3,000.00 still)."""
    await make_location()
    plan = await make_plan("Monthly", "3000")
    first, second = await _invoice(plan), await _invoice(plan)
    for inv in (first, second):
        r = await alice.post(f"/invoices/{inv['id']}/discounts",
                             {"kind": "percent", "value": "15", "reason": "Loyal", "action": "queue"})
        assert r.status_code == 303 and r.headers["location"].endswith("notice=discount_waiting")
    page = await alice.get(f"/invoices/{first['id']}")
    assert "waiting for a manager" in page.text and "Paused" in page.text
    assert (await alice.get("/discounts/approvals")).status_code in (401, 403)
    assert (await alice.get("/discounts/promo-codes")).status_code in (401, 403)
    a, b = await Discount.select().order_by(Discount.id)
    assert (await alice.post(f"/discounts/{a['id']}/approve")).status_code in (401, 403)
    queue = await bob.get("/discounts/approvals")
    assert queue.status_code == 200 and queue.text.count('data-testid="pending-discount"') == 2
    assert (await bob.post(f"/discounts/{a['id']}/approve", csrf=False)).status_code == 403
    r = await bob.post(f"/discounts/{a['id']}/approve")
    assert r.status_code == 303
    r = await bob.post(f"/discounts/{b['id']}/reject", {"note": "No"})
    assert r.status_code == 303
    again = await bob.post(f"/discounts/{a['id']}/approve")
    assert again.status_code == 422 and "already approved" in again.text
    assert (await bob.post("/discounts/999999/approve")).status_code == 404
    totals = [(await Invoice.select().where(Invoice.id == i["id"]).first())["total"] for i in (first, second)]
    assert totals == [D("2550.00"), D("3000.00")]
    assert 'data-testid="no-pending"' in (await bob.get("/discounts/approvals")).text
    # Analytics (last 30 days): memberships 2 x net 2,586.21 = 5,172.42 before discounts; the
    # discount given 450.00 = net 450/1.16 = 387.931.. -> 387.93 + VAT 62.07; after: 4,784.49.
    page = (await bob.get("/analytics")).text
    assert 'data-category="discounts"><td>Discounts given</td><td class="num">-KES 387.93</td><td class="num">-KES 450</td>' in page
    assert "Discounts given: KES 450 (KES 387.93 net of VAT)" in page
    assert '<th>Before discounts</th><td class="num">KES 5,172.42</td>' in page
    assert '<th>After discounts</th><td class="num">KES 4,784.49</td>' in page
    await assert_books_agree()


async def test_a_manager_makes_a_promo_code_and_bad_input_comes_back(bob, alice):
    await make_location()
    monthly = await make_plan("Monthly", "3000")
    r = await bob.post("/discounts/promo-codes", {"code": "x", "kind": "percent", "value": "0", "valid_from": "2026-13-01",
                                                  "valid_to": "", "max_uses": "-1", "description": "Students"})
    assert r.status_code == 422
    assert field_error(r.text, "code") == "A code is 3 to 30 letters, digits or dashes"
    assert field_error(r.text, "value") == "A percentage is more than 0 and at most 100"
    assert field_error(r.text, "valid_from") == "Enter a date, e.g. 2026-12-31"
    assert field_error(r.text, "max_uses") == "Leave empty for no limit, or a whole number from 1"
    assert field_value(r.text, "description") == "Students" and field_value(r.text, "max_uses") == "-1"
    day = today()
    good = {"code": "student10", "kind": "percent", "value": "10", "valid_from": day.isoformat(),
            "valid_to": (day + timedelta(days=30)).isoformat(), "max_uses": "2", "max_per_member": "1",
            f"plan_{monthly}": "on"}
    r = await bob.post("/discounts/promo-codes", good)
    assert r.status_code == 303
    promo = await PromoCode.select().first()
    assert (promo["code"], promo["plans"], promo["max_uses"], promo["created_by"] is not None) == ("STUDENT10", [monthly], 2, True)
    r = await bob.post("/discounts/promo-codes", good)
    assert r.status_code == 422 and field_error(r.text, "code") == "Another code is spelt the same"
    listing = await bob.get("/discounts/promo-codes")
    assert "STUDENT10" in listing.text and "Monthly" in listing.text
    # The desk uses it: within the code, no manager asked.
    inv = await _invoice(monthly)
    r = await alice.post(f"/invoices/{inv['id']}/discounts", {"promo_code": "student10"})
    assert r.status_code == 303
    assert (await Invoice.select().where(Invoice.id == inv["id"]).first())["total"] == D("2700.00")
    await assert_books_agree()


@pytest.mark.parametrize("extra", [0, 15])
async def test_the_discount_pages_query_counts_are_fixed(alice, bob, extra):
    await make_location()
    plan = await make_plan("Monthly", "3000")
    day = today()
    for i in range(extra + 1):
        inv = await _invoice(plan)
        await alice.post(f"/invoices/{inv['id']}/discounts", {"kind": "percent", "value": "20", "reason": f"r{i}",
                                                              "action": "queue"})
        await PromoCode.insert(PromoCode(code=f"CODE{i:03d}", kind="percent", value=D("5"), valid_from=day,
                                         valid_to=day, plans=[plan]))
    # The invoice page as before (its document subject and pay link included) plus one for its discounts.
    counts = {int((await alice.get(f"/invoices/{inv['id']}")).headers["x-query-count"])}
    # session, pending discounts
    assert int((await bob.get("/discounts/approvals")).headers["x-query-count"]) == 2
    # session, promo codes with their uses, plans, items
    assert int((await bob.get("/discounts/promo-codes")).headers["x-query-count"]) == 4
    assert counts == {INVOICE_PAGE_QUERIES}


INVOICE_PAGE_QUERIES = 14


async def test_a_discount_is_a_money_edit_of_the_week(alice, bob):
    """Monthly 3,000; the desk gives 10 % for a student (300.00, within its limit): the week's
    money edits list it as a Discount of KES 300 by Alice, with the reason and the invoice."""
    import re

    await make_location()
    inv = await _invoice()
    r = await alice.post(f"/invoices/{inv['id']}/discounts", {"kind": "percent", "value": "10", "reason": "Student card"})
    assert r.status_code == 303
    page = await bob.get("/money-edits")
    rows = re.findall(r'<tr data-testid="edit-row" data-kind="([\w.]+)">(.*?)</tr>', page.text, re.S)
    text = {kind: re.sub(r"\s+", " ", re.sub(r"<.*?>", " ", cells)).strip() for kind, cells in rows}
    assert list(text) == ["discount"]
    assert "KES 300" in text["discount"] and "Student card" in text["discount"] and "Alice" in text["discount"]
    assert inv["number"] in text["discount"]
    assert re.search(r'data-testid="total-discount">KES 300<', page.text)
