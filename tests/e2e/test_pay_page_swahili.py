"""A Swahili member opens their pay link on a 390 px phone: the page is in Swahili, fits the
screen, and "English | Kiswahili" switches it; the thank-you page follows the choice."""

import pytest

from portal.billing import paylinks
from tests.billing.helpers import invoice_for, pay
from tests.e2e.conftest import screenshot
from tests.factories import make_member

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 760}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


async def test_a_swahili_member_reads_the_pay_page_in_swahili_on_a_phone(db, queue, browser, live_server):
    from playwright.async_api import expect

    member = await make_member("Achieng", "Odhiambo", language="sw")
    inv = await invoice_for(member, 12500)
    await pay(member, 1000)
    token = await paylinks.create_link(inv["id"], None)

    context = await browser.new_context(base_url=live_server, **PHONE)
    context.set_default_timeout(15_000)
    phone = await context.new_page()
    await phone.goto(f"/pay/{token}")
    await expect(phone.locator("h1")).to_have_text("Habari Achieng")
    await expect(phone.get_by_text("Kiasi cha kulipa")).to_be_visible()
    await expect(phone.get_by_test_id("owed")).to_have_text("KES 11,500")
    await expect(phone.get_by_test_id("pay-mpesa")).to_have_text("Tuma ombi la M-Pesa")
    await expect(phone.get_by_test_id("pay-card")).to_have_text("Lipa kwa kadi")
    assert await phone.evaluate("document.documentElement.lang") == "sw"
    # Nothing wider than the phone.
    assert await phone.evaluate("document.documentElement.scrollWidth") <= 390
    await screenshot(phone, "swahili-pay-page")

    await phone.get_by_test_id("lang-en").click()
    await expect(phone.get_by_text("Amount due")).to_be_visible()
    await expect(phone.get_by_test_id("pay-mpesa")).to_have_text("Send M-Pesa prompt")
    await phone.get_by_test_id("lang-sw").click()
    await expect(phone.get_by_test_id("pay-mpesa")).to_have_text("Tuma ombi la M-Pesa")

    # Paid (at the desk, say): the thank-you page of a payment through the link, in Swahili.
    recorded = await pay(member, 11500, invoice_id=inv["id"])
    await phone.goto(f"/pay/{token}/payments/{recorded.payment['id']}")
    await expect(phone.get_by_test_id("thank-you").locator("h1")).to_have_text("Asante!")
    await expect(phone.get_by_text("Tumepokea KES 11,500.")).to_be_visible()
    assert await phone.evaluate("document.documentElement.scrollWidth") <= 390
    await screenshot(phone, "swahili-thank-you")
    await context.close()


async def test_the_desk_registers_a_member_who_reads_kiswahili(db, queue, page):
    from playwright.async_api import expect

    from portal.auth import create_staff
    from tests.e2e.pages import LoginPage

    await create_staff("amina", "amina-password-1", "front_desk", first_name="Amina")
    await page.goto("/login")
    await LoginPage(page).login("amina", "amina-password-1")
    await page.goto("/members/new")
    await page.get_by_label("First name").fill("Baraka")
    await page.get_by_label("Last name").fill("Mwangi")
    await page.get_by_label("Mobile phone (M-Pesa)").fill("0711 222 999")
    await page.get_by_label("Language for messages, the pay page and receipts").select_option("sw")
    await screenshot(page, "swahili-member-form")
    await page.get_by_test_id("save-member").click()
    await expect(page.get_by_test_id("member-language")).to_have_text("in Kiswahili")
