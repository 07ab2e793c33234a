"""Money at the desk in a real browser: a part-payment in cash, its receipt, and a manager's refund."""

import pytest

from portal.auth import create_staff
from tests.billing.helpers import invoice_for
from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.factories import make_member

pytestmark = pytest.mark.browser


async def test_part_payment_receipt_and_refund(db, queue, browser, live_server, page):
    from playwright.async_api import expect

    await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith")
    await create_staff("paul", "paul-password-1", "manager", first_name="Paul")
    member = await make_member("Wanjiku", "Kamau", number="PTF0101")
    invoice = await invoice_for(member, 3000)

    await LoginPage(page).login("faith", "faith-password-1")
    await page.goto(f"/members/{member}")
    await expect(page.get_by_test_id("balance-owed")).to_have_text("KES 3,000")
    await page.get_by_test_id("pay-amount").fill("1000")
    await page.get_by_test_id("method-cash").check()
    # A double click still records one payment.
    await page.get_by_test_id("record-payment").dblclick()
    await expect(page.get_by_test_id("receipt-number")).to_contain_text("RCP-")
    await expect(page.get_by_test_id("balance-after")).to_have_text("KES 2,000")
    await expect(page.get_by_test_id("payment-status")).to_have_text("completed")
    receipt_url = page.url

    # The receipt PDF arrives from the worker without reloading; download it.
    link = page.get_by_test_id("doc-receipt").get_by_role("link", name="Receipt (A4)", exact=True)
    await expect(link).to_be_visible(timeout=20_000)
    await expect(page.get_by_test_id("doc-receipt_80mm")).to_be_visible(timeout=20_000)
    await screenshot(page, "10-receipt")
    async with page.expect_download() as download_info:
        await page.get_by_test_id("doc-receipt").get_by_label("Download Receipt (A4)").click()
    download = await download_info.value
    assert download.suggested_filename.startswith("RCP-") and download.suggested_filename.endswith(".pdf")

    await page.goto(f"/members/{member}")
    await expect(page.get_by_test_id("balance-owed")).to_have_text("KES 2,000")
    await expect(page.get_by_test_id("payments").locator("tbody tr")).to_have_count(1)
    await screenshot(page, "11-member-after-payment")

    # The manager refunds it, with a reason.
    context = await browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860})
    manager = await context.new_page()
    await LoginPage(manager).login("paul", "paul-password-1")
    await manager.goto(receipt_url)
    await manager.get_by_label("Reason (required)").fill("")
    await manager.get_by_test_id("refund").click()
    await expect(manager.get_by_test_id("error-reason")).to_have_text("Give a reason for the refund")
    await manager.get_by_label("Reason (required)").fill("Paid twice, once by M-Pesa")
    await manager.get_by_test_id("refund").click()
    await expect(manager.get_by_test_id("payment-status")).to_have_text("refunded")
    await expect(manager.get_by_test_id("history")).to_contain_text("Paid twice, once by M-Pesa")
    await expect(manager.get_by_test_id("doc-credit_note").or_(manager.get_by_test_id("doc-credit_note-pending"))).to_be_visible()
    await screenshot(manager, "12-refunded")
    await manager.goto(f"/members/{member}")
    await expect(manager.get_by_test_id("balance-owed")).to_have_text("KES 3,000")
    await context.close()

    from tables.billing import Payment

    assert await Payment.count() == 1
