"""The front desk pushes an M-Pesa prompt; the member approves it on the (simulated) phone; the
front desk page turns to paid by itself, with the M-Pesa code and the receipt."""

import os

import pytest

from portal.auth import create_staff
from tests.billing.helpers import invoice_for
from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.factories import make_member

pytestmark = pytest.mark.browser


async def test_front_desk_pushes_and_the_member_approves_on_the_phone(db, queue, browser, live_server, page):
    from playwright.async_api import expect

    await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith")
    member = await make_member("Achieng", "Odhiambo", phone="254722555111", number="PTF0300")
    await invoice_for(member, 3000)

    await LoginPage(page).login("faith", "faith-password-1")
    await page.goto(f"/members/{member}")
    await expect(page.get_by_test_id("mpesa-phone")).to_have_value("0722555111")
    await expect(page.get_by_test_id("mpesa-amount")).to_have_value("3000")
    await page.get_by_test_id("send-mpesa").click()
    status = page.get_by_test_id("stk-status")
    await expect(status).to_contain_text("enter their M-Pesa PIN", timeout=15_000)
    await screenshot(page, "20-mpesa-waiting")

    # The member's phone (the sandbox's simulated phone page).
    phone_context = await browser.new_context(viewport={"width": 390, "height": 760}, is_mobile=True)
    phone = await phone_context.new_page()
    await phone.goto(f"{os.environ['E2E_SANDBOX_URL']}/phone")
    await phone.get_by_test_id("phone-input").fill("0722 555 111")
    await phone.get_by_test_id("phone-open").click()
    await expect(phone.get_by_test_id("stk-prompt")).to_contain_text("PTF0300", timeout=10_000)
    await screenshot(phone, "21-simulated-phone")
    await phone.get_by_test_id("pin-input").fill("4321")
    await phone.get_by_test_id("accept-button").click()
    await phone_context.close()

    # The front desk page updates itself: paid, the M-Pesa code, the receipt.
    await expect(status).to_have_attribute("data-status", "completed", timeout=15_000)
    code = await page.get_by_test_id("mpesa-code").inner_text()
    assert len(code) == 10
    await expect(page.get_by_test_id("doc-receipt").get_by_role("link", name="Receipt (A4)", exact=True)).to_be_visible(timeout=20_000)
    await screenshot(page, "22-mpesa-paid")
    await page.goto(f"/members/{member}")
    await expect(page.get_by_test_id("balance-owed")).to_have_text("KES 0")
