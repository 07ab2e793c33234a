"""A manager finds the catalogue under More, sells a member a PT pack of 10 on their account from
the member page, and the desk uses three sessions at three visits: 10 - 3 = 7 left."""

import pytest

from portal.auth import create_staff
from tests.billing.helpers import assert_books_agree
from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.factories import make_location, make_member
from tests.sales.helpers import default_items

pytestmark = pytest.mark.browser


async def test_a_pt_pack_sold_on_account_and_used_over_three_visits(db, queue, browser, live_server):
    from playwright.async_api import expect

    desk = await make_location("WST", "Westlands")
    await create_staff("grace", "grace-password-1", "manager", first_name="Grace", location_id=desk)
    await default_items()
    member = await make_member("Wanjiku", "Kamau", number="PTF0101")
    context = await browser.new_context(base_url=live_server, viewport={"width": 1366, "height": 900})
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await LoginPage(page).login("grace", "grace-password-1")
    await page.get_by_test_id("nav-more").locator("summary").click()
    await page.get_by_role("link", name="Catalogue").click()
    await expect(page.get_by_test_id("catalogue")).to_contain_text("PT pack of 10")
    await screenshot(page, "pt-pack-1-catalogue")

    await page.goto(f"/members/{member}")
    await page.get_by_test_id("sell-to-member").click()
    await page.get_by_test_id("qty-pt-pack-of-10").fill("1")
    await page.get_by_test_id("sale-method-account").check()
    await page.get_by_test_id("sell").click()
    await expect(page.get_by_role("heading", name="Sold: KES 12,000")).to_be_visible()
    await page.get_by_role("link", name="Wanjiku Kamau").first.click()
    for _ in range(3):
        await page.get_by_test_id("use-session").click()
        await expect(page.get_by_test_id("notice")).to_have_text("One session used.")
    await expect(page.get_by_test_id("sessions-remaining")).to_have_text("7")
    await expect(page.get_by_test_id("balance-owed")).to_have_text("KES 12,000")
    await screenshot(page, "pt-pack-2-member-page")

    # A custom invoice: a line with VAT added, no reason at first (kept and refused), then issued.
    await page.get_by_test_id("custom-invoice").click()
    await page.get_by_test_id("description_0").fill("Towel hire")
    await page.get_by_test_id("quantity_0").fill("3")
    await page.get_by_test_id("unit_price_0").fill("333.33")
    await page.get_by_test_id("vat_rate_0").fill("16")
    await page.get_by_label("VAT treatment 1").select_option("exclusive")
    await page.get_by_test_id("issue-custom").click()
    await expect(page.get_by_test_id("error-reason")).to_have_text("Give a reason for this invoice")
    await expect(page.get_by_test_id("description_0")).to_have_value("Towel hire")
    await screenshot(page, "pt-pack-3-custom-invoice-error")
    await page.get_by_label("Reason").fill("Towels lost")
    await page.get_by_test_id("issue-custom").click()
    await expect(page.get_by_text("1,159.99").first).to_be_visible()
    await screenshot(page, "pt-pack-4-custom-invoice")
    await context.close()
    await assert_books_agree()
