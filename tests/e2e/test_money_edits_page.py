"""The money edits page with a week of edits, at the desk's and a phone's width (looked at)."""

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.reports.test_money_edits import _week_of_edits

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width,height", [(1366, 900), (390, 844)])
async def test_a_manager_reads_the_weeks_edits(db, queue, browser, live_server, width, height):
    await _week_of_edits()
    context = await browser.new_context(base_url=live_server, viewport={"width": width, "height": height})
    page = await context.new_page()
    try:
        await LoginPage(page).login("mo", "mo-password-1")
        await page.goto("/money-edits")
        await expect(page.get_by_test_id("edit-row")).to_have_count(3)
        await expect(page.get_by_test_id("total-refund")).to_have_text("KES 500")
        await expect(page.get_by_test_id("edits")).to_contain_text("Miscounted the float")
        assert await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
        await screenshot(page, f"money-edits-{width}")
    finally:
        await context.close()
