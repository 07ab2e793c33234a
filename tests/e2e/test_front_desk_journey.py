"""The front desk's daily path, keyboard first: log in, find a member, register one, put them on a plan."""

import pytest

from portal.auth import create_staff
from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage, MembersPage
from tests.factories import make_location, make_member, make_plan

pytestmark = pytest.mark.browser


async def test_front_desk_journey(db, page):
    from playwright.async_api import expect

    await make_location("WST", "Westlands")
    await make_plan("Monthly", "3000", 1)
    await make_plan("Quarterly", "8000", 3)
    await make_member("Wanjiku", "Kamau", phone="254712000001", number="PTF0101")
    await make_member("Wambui", "Njoroge", phone="254722000002", number="PTF0102")
    await make_member("Brian", "Otieno", phone="254733000003", number="PTF0103")
    await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith")

    await LoginPage(page).login("faith", "faith-password-1")
    members = MembersPage(page)
    await expect(members.search).to_be_focused()
    await screenshot(page, "01-members")

    # Search as they type; results update without a page load.
    await members.type_search("wan")
    results = page.get_by_test_id("member-link")
    await expect(results).to_have_count(1)
    await expect(results.first).to_have_text("Wanjiku Kamau")
    await screenshot(page, "02-search")

    # Keyboard only: arrow down to the result, Enter to open.
    await page.keyboard.press("ArrowDown")
    await expect(results.first).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("member-name")).to_have_text("Wanjiku Kamau")
    await expect(page.get_by_test_id("member-number")).to_have_text("PTF0101")
    await screenshot(page, "03-member")

    # Register a new member: first with mistakes, then right.
    await page.goto("/members")
    await page.get_by_test_id("new-member").click()
    await page.get_by_label("First name").fill("Amina")
    await page.get_by_label("Mobile phone (M-Pesa)").fill("020 123 4567")
    await page.get_by_label("Email").fill("amina@example.com")
    await page.get_by_test_id("save-member").click()
    await expect(page.get_by_test_id("error-last_name")).to_have_text("Last name is required")
    await expect(page.get_by_test_id("error-phone")).to_contain_text("mobile number")
    await expect(page.get_by_label("First name")).to_have_value("Amina")
    await expect(page.get_by_label("Email")).to_have_value("amina@example.com")
    await screenshot(page, "04-register-error")

    await page.get_by_label("Last name").fill("Hassan")
    await page.get_by_label("Mobile phone (M-Pesa)").fill("0712 345 678")
    await page.get_by_test_id("save-member").click()
    await expect(page.get_by_test_id("flash")).to_contain_text("Registered Amina as")
    await expect(page.get_by_test_id("member-name")).to_have_text("Amina Hassan")
    await expect(page.get_by_text("0712 345 678")).to_be_visible()

    # Put them on a plan.
    await page.get_by_test_id("plan-select").select_option(label="Quarterly — KES 8,000")
    await page.get_by_test_id("put-on-plan").click()
    row = page.get_by_test_id("memberships").locator("tbody tr")
    await expect(row).to_have_count(1)
    await expect(row.first).to_contain_text("Quarterly")
    await expect(row.first).to_contain_text("awaiting payment")
    await expect(page.get_by_test_id("invoices").locator("tbody tr")).to_have_count(1)
    await expect(page.get_by_test_id("balance-owed")).to_have_text("KES 8,000")
    await screenshot(page, "05-on-plan")

    # And the new member is found by phone from the search.
    await page.keyboard.press("Escape")
    await page.goto("/members")
    await members.type_search("0712 345")
    await expect(page.get_by_test_id("member-link")).to_have_text(["Amina Hassan"])


async def test_the_pages_fit_a_phone(db, browser, live_server):
    await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith")
    await make_member("Wanjiku", "Kamau", phone="254712000001")
    context = await browser.new_context(base_url=live_server, viewport={"width": 375, "height": 740}, is_mobile=True)
    page = await context.new_page()
    await LoginPage(page).login("faith", "faith-password-1")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"page scrolls sideways on a phone ({width}px)"
    await screenshot(page, "06-phone")
    await context.close()
