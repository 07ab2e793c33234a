"""The door, keyboard only, at a desk's screen and at a tablet's: F2 from any page, scan (type the
number and Enter) green, amber and red, let the red one in with a reason, find one by name, and
print a member's card."""

from datetime import timedelta

import pytest

from portal.auth import create_staff
from portal.lib.clock import today
from tables.billing import Invoice
from tests.billing.helpers import invoice_for
from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.factories import make_location, make_member, make_membership, make_plan

pytestmark = pytest.mark.browser


async def _on_plan(plan: int, number: str, first: str, last: str, ends_in: int = 30) -> int:
    member = await make_member(first, last, number=number)
    await make_membership(member, plan, today() - timedelta(days=10), today() + timedelta(days=ends_in), "active")
    return member


@pytest.mark.parametrize("width, height", [(1366, 900), (768, 1024), (390, 844)])
async def test_check_in_by_keyboard(db, browser, live_server, width, height):
    from playwright.async_api import expect

    size = f"{width}x{height}"
    await make_location("WST", "Westlands")
    plan = await make_plan("Monthly", "3000", 1)
    await _on_plan(plan, "PTF0201", "Wanjiku", "Kamau")
    amber = await _on_plan(plan, "PTF0202", "Otieno", "Amber", ends_in=3)
    red = await _on_plan(plan, "PTF0203", "Njeri", "Late")
    inv = await invoice_for(red, 4500)
    await Invoice.update({Invoice.due_date: today() - timedelta(days=21)}).where(Invoice.id == inv["id"])
    await _on_plan(plan, "PTF0204", "Achieng", "Odhiambo")
    await _on_plan(plan, "PTF0205", "Achieng", "Wekesa")
    await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith")
    await create_staff("mo", "mo-password-1", "manager", first_name="Mo")

    context = await browser.new_context(base_url=live_server, viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    page = await context.new_page()
    try:
        await LoginPage(page).login("faith", "faith-password-1")
        keys = page.keyboard
        field = page.get_by_test_id("checkin-q")
        answer = page.get_by_test_id("checkin-answer")

        # One key from any page, even with the cursor in the member search.
        await expect(page.get_by_test_id("member-search")).to_be_focused()
        await keys.press("F2")
        await page.wait_for_url("**/checkin")
        await expect(field).to_be_focused()
        await screenshot(page, f"checkin-{size}-01-empty")

        # A scanner types the number and Enter.
        await keys.type("PTF0201")
        await keys.press("Enter")
        await expect(answer).to_have_attribute("data-colour", "green")
        await expect(page.get_by_test_id("checkin-member")).to_have_text("Wanjiku Kamau")
        await expect(field).to_be_focused()
        await expect(field).to_have_value("")
        await screenshot(page, f"checkin-{size}-02-green")

        await keys.type("ptf0202")
        await keys.press("Enter")
        await expect(answer).to_have_attribute("data-colour", "amber")
        await expect(page.get_by_test_id("checkin-reasons")).to_contain_text("3 days left")
        await expect(page.get_by_test_id("checkin-action-renew")).to_have_attribute("href", f"/members/{amber}#plan")
        await screenshot(page, f"checkin-{size}-03-amber")

        await keys.type("PTF0203")
        await keys.press("Enter")
        await expect(answer).to_have_attribute("data-colour", "red")
        await expect(page.get_by_test_id("checkin-verdict")).to_have_text("Stop: do not let in")
        await expect(page.get_by_test_id("checkin-reasons")).to_contain_text(f"invoice {inv['number']} is 21 days overdue")
        await expect(page.get_by_test_id("checkin-action-pay")).to_have_attribute("href", f"/members/{red}#pay")
        await screenshot(page, f"checkin-{size}-04-red")

        # Let them in anyway: Tab to the reason (past the button, the name and the two actions).
        reason = page.get_by_test_id("override-reason")
        presses = 0
        while presses < 8 and not await reason.evaluate("el => el === document.activeElement"):
            await keys.press("Tab")
            presses += 1
        await expect(reason).to_be_focused()
        assert presses == 5
        await keys.press("Enter")  # no reason: refused, and the cursor stays to type one
        await expect(page.get_by_test_id("error-override")).to_have_text("Say why you are letting them in (a few words).")
        await expect(page.get_by_test_id("override-reason")).to_be_focused()
        await screenshot(page, f"checkin-{size}-05-override-needs-reason")
        await keys.type("Paying by M-Pesa after the class")
        await keys.press("Enter")
        await expect(page.get_by_test_id("checkin-verdict")).to_have_text("Let in by override")
        await expect(page.get_by_test_id("checkin-override-done")).to_contain_text("Paying by M-Pesa after the class")
        await expect(field).to_be_focused()
        await screenshot(page, f"checkin-{size}-06-override-done")

        # A name finds two: Tab to the second, Enter.
        await keys.type("achieng")
        await keys.press("Enter")
        matches = page.get_by_test_id("checkin-match")
        await expect(matches).to_have_count(2)
        await screenshot(page, f"checkin-{size}-07-matches")
        await keys.press("Tab")
        await keys.press("Tab")
        await keys.press("Tab")
        await expect(matches.nth(1)).to_be_focused()
        await keys.press("Enter")
        await expect(page.get_by_test_id("checkin-member")).to_have_text("Achieng Wekesa")
        await expect(field).to_be_focused()

        # The red member's page shows the visit; their card prints from there.
        await page.goto(f"/members/{red}")
        visits = page.get_by_test_id("member-visits")
        await expect(visits.get_by_test_id("visit-row")).to_have_count(1)
        await expect(visits).to_contain_text("let in by override")
        await visits.scroll_into_view_if_needed()
        await screenshot(page, f"checkin-{size}-08-member-visits")
        await page.goto(f"/members/{red}/card")
        await expect(page.get_by_test_id("card-number")).to_have_text("PTF0203")
        box = await page.get_by_test_id("member-card").bounding_box()
        assert round(box["width"]) == round(85.6 / 25.4 * 96)  # a bank card's width, at 96 px an inch
        await screenshot(page, f"checkin-{size}-09-card")
        await page.emulate_media(media="print")
        await expect(page.get_by_test_id("print-card")).to_be_hidden()
        await screenshot(page, f"checkin-{size}-10-card-print")
    finally:
        await context.close()

    # The manager sees the day's visits and who has not come.
    context = await browser.new_context(base_url=live_server, viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    page = await context.new_page()
    try:
        await LoginPage(page).login("mo", "mo-password-1")
        await page.goto("/checkin/visits")
        day = page.locator(f'tr[data-day="{today().isoformat()}"]')
        await expect(day.get_by_test_id("came-in")).to_have_text("4")  # green, amber, the override, Achieng Wekesa
        await expect(day.get_by_test_id("refused")).to_have_text("0")
        await expect(page.get_by_test_id("absent-row")).to_have_count(1)  # Achieng Odhiambo
        await expect(page.get_by_test_id("not-seen")).to_contain_text("Achieng Odhiambo")
        await screenshot(page, f"checkin-{size}-11-visits")
        # One click reminds the absentee; the row then says when.
        await page.get_by_test_id("remind").click()
        await expect(page.get_by_test_id("reminded")).to_contain_text("1 reminded now")
        await expect(page.get_by_test_id("reminded-on")).to_have_count(1)
        await expect(page.get_by_test_id("remind-all")).to_be_disabled()
        await page.get_by_test_id("not-seen").scroll_into_view_if_needed()
        await screenshot(page, f"checkin-{size}-12-reminded")
    finally:
        await context.close()
