"""A walk-in sale at the desk in a real browser: a Day pass and two Waters, 1,000 in cash, the
change (300) shown big enough to read across the counter, then the 80 mm slip. At the desk's
1366 px and on a 390 px phone."""

import pytest

from portal.auth import create_staff
from tables.billing import Payment
from tables.sales import Sale
from tests.billing.helpers import assert_books_agree
from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.factories import make_location
from tests.sales.helpers import default_items

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width, height", [(1366, 900), (390, 844)])
async def test_a_walk_in_buys_a_day_pass_and_two_waters_and_gets_change_and_a_slip(db, queue, browser, live_server,
                                                                                  width, height):
    """500 + 2 x 100 = 700; 1,000 tendered - 700 = 300 change."""
    from playwright.async_api import expect

    desk = await make_location("WST", "Westlands")
    await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith", location_id=desk)
    await default_items()
    context = await browser.new_context(base_url=live_server, viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await LoginPage(page).login("faith", "faith-password-1")
    if width >= 1000:
        await page.get_by_test_id("nav-sell").click()
    else:
        await page.goto("/sales/new")
    await expect(page.get_by_test_id("sale-form")).to_be_visible()
    await page.get_by_test_id("qty-day-pass").fill("1")
    await page.get_by_test_id("qty-water").fill("2")
    await page.get_by_label("Name (optional)").fill("Brian")
    await page.get_by_test_id("sale-tendered").fill("1000")
    await screenshot(page, f"walk-in-sale-{width}-1-form")
    await page.get_by_test_id("sell").click()
    await expect(page.get_by_test_id("sale-change")).to_have_text("KES 300")
    await expect(page.get_by_test_id("sale-total")).to_have_text("KES 700")
    await screenshot(page, f"walk-in-sale-{width}-2-change")
    sale = await Sale.select().first()
    payment = await Payment.select().where(Payment.id == sale["payment"]).first()
    assert (payment["amount"], payment["method"], payment["location"], sale["change"]) == (700, "cash", desk, 300)

    await page.goto(f"/payments/{payment['id']}/slip")
    await expect(page.get_by_text(payment["receipt_number"])).to_be_visible()
    await expect(page.get_by_text("1 x Day pass, 2 x Water")).to_be_visible()
    slip = await page.locator("body").inner_text()
    assert "Brian" in slip and "Tendered" in slip and "KES 1,000" in slip and "KES 300" in slip, slip
    await screenshot(page, f"walk-in-sale-{width}-3-slip")
    await context.close()
    await assert_books_agree()
