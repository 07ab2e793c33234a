"""Messages in a real browser against `portal run` (sandbox on, no SMTP): a new invoice goes out
by email (kept in the dev mailbox) and by SMS (the sandbox, whose delivery report comes back to
the URL `portal run` registered); staff read the email as the member sees it."""

import pytest

from portal.auth import create_staff
from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.factories import make_member, make_plan

pytestmark = pytest.mark.browser


async def test_the_invoice_email_and_sms_as_staff_see_them(db, queue, live_server, page):
    from playwright.async_api import expect

    await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith")
    member = await make_member("Njeri", "Mwangi", phone="254711888999", email="njeri@example.com",
                               message_channel="both")
    await make_plan("Monthly", "3000")

    await LoginPage(page).login("faith", "faith-password-1")
    await page.goto(f"/members/{member}")
    await page.get_by_test_id("plan-select").select_option(label="Monthly — KES 3,000")
    await page.get_by_test_id("put-on-plan").click()
    await page.wait_for_url(f"**/members/{member}")

    # The SMS is delivered: the sandbox's report reached the portal's token URL.
    messages = page.get_by_test_id("member-messages")
    for _ in range(120):  # 30 s and more: the worker and the sandbox share a busy machine
        await page.reload()
        if await messages.get_by_text("delivered").count() and await messages.get_by_text("sent").count():
            break
        await page.wait_for_timeout(250)
    await expect(messages.locator("tbody tr")).to_have_count(2)
    await expect(messages.get_by_text("delivered")).to_be_visible()
    await screenshot(page, "40-member-messages")

    await messages.get_by_role("row").filter(has_text="by email").get_by_role("link").click()
    await expect(page.get_by_test_id("dev-mailbox-note")).to_be_visible()
    await expect(page.get_by_test_id("message-subject")).to_contain_text("Invoice INV-")
    await expect(page.get_by_test_id("attachment")).to_contain_text("Invoice (PDF)")
    frame = page.frame_locator('[data-testid="email-html"]')
    await expect(frame.get_by_text("Here is your invoice")).to_be_visible()
    await expect(frame.get_by_role("link", name="Pay KES 3,000 by M-Pesa or card")).to_be_visible()
    await screenshot(page, "41-dev-mailbox")
