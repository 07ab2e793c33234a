"""A discount approval in a real browser: the front desk asks 20 % off a Monthly plan (3,000),
above its 10 % limit; the form says a manager must approve; the manager types their name and
password on the same screen; the invoice is 2,400. At the desk's 1366 px and on a 390 px phone."""

import pytest

from portal.auth import create_staff
from portal.lib.clock import today
from portal.members.enrol import put_on_plan
from tables.billing import Invoice
from tables.discounts import Discount
from tests.billing.helpers import assert_books_agree
from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.factories import make_location, make_member, make_plan

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width, height", [(1366, 900), (390, 844)])
async def test_the_desk_asks_above_its_limit_and_a_manager_approves_on_the_spot(db, queue, browser, live_server,
                                                                                width, height):
    """20 % of 3,000 = 600 (above the desk's 10 % = 300): refused until the manager approves;
    then 3,000 - 600 = 2,400 owed, the manager named as approver."""
    from playwright.async_api import expect

    desk = await make_location("WST", "Westlands")
    await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith", location_id=desk)
    boss = await create_staff("mo", "mo-password-1", "manager", first_name="Mo")
    member = await make_member("Achieng", "Otieno")
    membership = await put_on_plan(member, await make_plan("Monthly", "3000"), today(), None)
    invoice = await Invoice.select().where(Invoice.membership == membership.id).first()

    context = await browser.new_context(base_url=live_server, viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await LoginPage(page).login("faith", "faith-password-1")
    await page.goto(f"/invoices/{invoice['id']}")
    form = page.get_by_test_id("discount-form")
    await form.get_by_label("Percent or amount").fill("20")
    await form.get_by_label("Reason (required)").fill("Corporate rate (Safaricom staff)")
    await screenshot(page, f"discount-approval-{width}-1-asked")
    await page.get_by_test_id("give-discount").click()
    await expect(page.get_by_test_id("error-value")).to_contain_text("above the front desk's limit (10%)")
    await expect(page.get_by_test_id("manager-approval")).to_contain_text("needed")
    await expect(form.get_by_label("Percent or amount")).to_have_value("20")
    await page.get_by_label("Manager's user name").fill("mo")
    await page.get_by_label("Manager's password").fill("mo-password-1")
    await page.get_by_test_id("manager-approval").scroll_into_view_if_needed()
    await screenshot(page, f"discount-approval-{width}-2-manager")
    await page.get_by_test_id("give-discount").click()
    await expect(page.get_by_test_id("invoice-balance")).to_have_text("KES 2,400")
    await expect(page.get_by_test_id("discount-status")).to_have_text("approved")
    await expect(page.get_by_test_id("discounts")).to_contain_text("by Mo")
    await page.get_by_test_id("discounts").scroll_into_view_if_needed()
    await screenshot(page, f"discount-approval-{width}-3-approved")
    row = await Discount.select().first()
    assert (row["status"], row["amount"], row["approved_by"]) == ("approved", 600, boss)
    await context.close()
    await assert_books_agree()


async def test_the_approval_queue_and_promo_codes_pages(db, queue, browser, live_server):
    """The desk sends 15 % of Monthly 3,000 (450) to the queue; the manager sees it waiting,
    approves it (2,550 owed), and makes a promo code STUDENT10 for the Monthly plan."""
    from decimal import Decimal

    from playwright.async_api import expect

    from portal.billing import discounts
    from portal.billing.discounts import Ask

    await make_location("WST", "Westlands")
    faith = await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith")
    await create_staff("mo", "mo-password-1", "manager", first_name="Mo")
    member = await make_member("Achieng", "Otieno")
    membership = await put_on_plan(member, await make_plan("Monthly", "3000"), today(), None)
    invoice = await Invoice.select().where(Invoice.membership == membership.id).first()
    await discounts.give(invoice["id"], Ask("percent", Decimal("15"), "Loyal member, five years"), staff_id=faith,
                         role="front_desk", queue=True)
    context = await browser.new_context(base_url=live_server, viewport={"width": 1366, "height": 900})
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await LoginPage(page).login("mo", "mo-password-1")
    await page.goto("/discounts/approvals")
    await expect(page.get_by_test_id("pending-discount")).to_contain_text("KES 450")
    await screenshot(page, "discount-queue-1366-1-waiting")
    await page.get_by_role("button", name="Approve").click()
    await expect(page.get_by_test_id("no-pending")).to_be_visible()
    assert (await Invoice.select().where(Invoice.id == invoice["id"]).first())["total"] == Decimal("2550.00")
    await page.goto("/discounts/promo-codes")
    await page.get_by_label("Code").fill("student10")
    await page.get_by_label("Percent or amount").fill("10")
    await page.get_by_label("First day").fill(today().isoformat())
    await page.get_by_label("Last day").fill(today().replace(year=today().year + 1).isoformat())
    await page.get_by_label("Uses per member").fill("1")
    await page.get_by_label("Monthly plan").check()
    await page.get_by_test_id("save-promo").click()
    await expect(page.get_by_test_id("promo-row")).to_contain_text("STUDENT10")
    await screenshot(page, "discount-promo-codes-1366")
    await context.close()
    await assert_books_agree()
