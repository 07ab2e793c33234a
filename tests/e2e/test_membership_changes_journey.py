"""The desk freezes a membership (a too-short freeze refused first) and upgrades one mid-term,
in a browser at a desk's width and at a phone's."""

from datetime import timedelta

import pytest

from portal.auth import create_staff
from portal.lib.clock import today
from portal.members.enrol import put_on_plan
from tables.members import Membership
from tests.billing.helpers import pay
from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.factories import make_member, make_membership, make_plan

pytestmark = pytest.mark.browser


async def _context(browser, live_server, width: int, height: int):
    context = await browser.new_context(base_url=live_server, viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    return context, await context.new_page()


async def test_a_freeze_at_the_desk(db, browser, live_server):
    """Monthly T-5 to T+24. A 3-day freeze is refused (at least 7), then T to T+19 (20 days):
    the member page shows the freeze and the end date T+44; check-in says Frozen until T+19."""
    from playwright.async_api import expect

    t = today()
    plan = await make_plan("Monthly", "3000", 1)
    member = await make_member("Wanjiku", "Kamau", number="PTF0301")
    await make_membership(member, plan, t - timedelta(days=5), t + timedelta(days=24), "active")
    await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith")
    context, page = await _context(browser, live_server, 1366, 900)
    try:
        await LoginPage(page).login("faith", "faith-password-1")
        await page.goto(f"/members/{member}")
        await page.get_by_test_id("freeze-link").click()
        await page.wait_for_url("**/freeze")
        await page.get_by_label("First frozen day").fill(t.isoformat())
        await page.get_by_label("Last frozen day").fill((t + timedelta(days=2)).isoformat())
        await page.get_by_label("Reason").fill("Travelling to Kisumu")
        await page.get_by_test_id("freeze-submit").click()
        await expect(page.get_by_test_id("error-end_date")).to_have_text("A freeze lasts at least 7 days; this is 3 days")
        await expect(page.get_by_label("Reason")).to_have_value("Travelling to Kisumu")
        await screenshot(page, "freeze-1366-01-too-short")

        await page.get_by_label("Last frozen day").fill((t + timedelta(days=19)).isoformat())
        await page.get_by_label("Freeze fee (KES)").fill("500")
        await page.get_by_test_id("freeze-submit").click()
        await page.wait_for_url(f"**/members/{member}?notice=membership_frozen")
        await expect(page.get_by_test_id("notice")).to_contain_text("Membership frozen")
        badge = page.get_by_test_id("frozen-badge")
        await expect(badge).to_contain_text(f"{t + timedelta(days=19):%d %b %Y}")
        await expect(page.get_by_test_id("memberships")).to_contain_text(f"{t + timedelta(days=44):%d %b %Y}")
        await screenshot(page, "freeze-1366-02-member-page")
        # The same page on a phone: the memberships card fits the screen (its table scrolls inside it).
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.reload()
        card = await page.locator("section#plan").bounding_box()
        assert card["x"] >= 0 and card["x"] + card["width"] <= 390, card
        await page.get_by_test_id("memberships").scroll_into_view_if_needed()
        await screenshot(page, "freeze-390-member-page")
        await page.set_viewport_size({"width": 1366, "height": 900})

        await page.goto("/checkin")
        await page.get_by_test_id("checkin-q").fill("PTF0301")
        await page.keyboard.press("Enter")
        await expect(page.get_by_test_id("checkin-answer")).to_contain_text(f"Frozen until {t + timedelta(days=19):%d %b %Y}")
        await screenshot(page, "freeze-1366-03-checkin")
    finally:
        await context.close()


@pytest.mark.parametrize("width, height", [(1366, 900), (390, 844)])
async def test_an_upgrade_at_the_desk(db, browser, live_server, width, height):
    """Monthly 3,000 paid, T-11 to T+18 (30 days); upgraded to Quarterly 8,000 today (day 12):
    19 unused days, credit 3,000 × 19 / 30 = 1,900, the Quarterly invoice owes 8,000 - 1,900 = 6,100."""
    from playwright.async_api import expect

    t = today()
    monthly = await make_plan("Monthly", "3000", 1)
    await make_plan("Quarterly", "8000", 3)
    member = await make_member("Otieno", "Odhiambo")
    ms = await put_on_plan(member, monthly, t, None)
    await pay(member, 3000)
    await Membership.update({Membership.start_date: t - timedelta(days=11),
                             Membership.end_date: t + timedelta(days=18)}).where(Membership.id == ms.id)
    await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith")
    context, page = await _context(browser, live_server, width, height)
    try:
        await LoginPage(page).login("faith", "faith-password-1")
        await page.goto(f"/members/{member}")
        await page.get_by_test_id("change-link").click()
        await page.wait_for_url("**/change")
        await page.get_by_test_id("change-plan-select").select_option(label="Quarterly — KES 8,000")
        await page.get_by_test_id("change-preview").click()
        await expect(page.get_by_test_id("quote-unused")).to_have_text("19")
        await expect(page.get_by_test_id("quote-credit")).to_have_text("KES 1,900")
        await expect(page.get_by_test_id("quote-balance")).to_have_text("KES 6,100")
        await screenshot(page, f"upgrade-{width}-01-quote")
        await page.get_by_test_id("change-submit").click()
        await page.wait_for_url("**/invoices/*?notice=plan_changed")
        await expect(page.get_by_test_id("notice")).to_contain_text("Plan changed")
        await expect(page.locator("main")).to_contain_text("Unused days credited")
        await screenshot(page, f"upgrade-{width}-02-invoice")
    finally:
        await context.close()
