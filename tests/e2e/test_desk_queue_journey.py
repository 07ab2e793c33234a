"""The desk's queue in a real browser, keyboard only (issue 15): type a name, Enter, the amount
owed is already there, Enter, the slip prints (the print dialog's Enter, played here by the
browser's print being answered at once), and the search is back for the next person. Four
interactions, where it took 44 key presses before. The slip's page is 80 mm wide when printed."""

import io

import pytest
from pypdf import PdfReader

from portal.auth import create_staff
from tables.billing import Payment
from tests.billing.helpers import invoice_for
from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.factories import make_location, make_member

pytestmark = pytest.mark.browser

# The print dialog: answered "Print" at once, and each print counted where the next page can read it.
PRINT_DIALOG = """
window.print = () => {
  sessionStorage.setItem('printed', String(Number(sessionStorage.getItem('printed') || 0) + 1));
  sessionStorage.setItem('printed_from', location.pathname + location.search);
  window.dispatchEvent(new Event('afterprint'));
};
"""
MM = 72 / 25.4  # PDF points in a millimetre


@pytest.mark.parametrize("width, height", [(1366, 900), (768, 1024)])
async def test_four_interactions_from_a_name_to_a_printed_slip(db, queue, browser, live_server, width, height):
    from playwright.async_api import expect

    desk = await make_location("WST", "Westlands")
    await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith", location_id=desk)
    member = await make_member("Wanjiku", "Kamau", number="PTF0101")
    await make_member("Otieno", "Odhiambo", number="PTF0102")
    await invoice_for(member, 3000)
    context = await browser.new_context(base_url=live_server, viewport={"width": width, "height": height})
    await context.add_init_script(PRINT_DIALOG)
    page = await context.new_page()
    await LoginPage(page).login("faith", "faith-password-1")
    await expect(page.get_by_test_id("member-search")).to_be_focused()

    interactions = 0
    await page.keyboard.type("wanjiku")  # 1: the name
    interactions += 1
    await page.keyboard.press("Enter")  # 2: the only match, at its payment form
    interactions += 1
    amount = page.get_by_test_id("pay-amount")
    await expect(amount).to_be_focused()
    await expect(amount).to_have_value("3000.00")
    await screenshot(page, f"desk-queue-{width}-1-amount-owed")
    await page.keyboard.press("Enter")  # 3: record and print
    interactions += 1
    # 4: the print dialog's Enter (answered by PRINT_DIALOG); then the search, for the next person.
    interactions += 1
    await page.wait_for_url("**/members")
    await expect(page.get_by_test_id("member-search")).to_be_focused()
    payment = await Payment.select().where(Payment.member == member).first()
    assert (payment["method"], payment["amount"], payment["status"], payment["location"]) == ("cash", 3000, "completed", desk)
    printed = await page.evaluate("() => [sessionStorage.getItem('printed'), sessionStorage.getItem('printed_from')]")
    assert printed == ["1", f"/payments/{payment['id']}/slip?print=1"]
    assert interactions == 4

    # The slip as the printer gets it: 80 mm wide (the named roll page of the receipt's own sheet).
    await page.goto(f"/payments/{payment['id']}/slip")
    await expect(page.get_by_text(payment["receipt_number"])).to_be_visible()
    await screenshot(page, f"desk-queue-{width}-2-slip")
    pdf = PdfReader(io.BytesIO(await page.pdf(prefer_css_page_size=True, print_background=False)))
    box = pdf.pages[0].mediabox
    assert round(float(box.width) / MM) == 80, float(box.width) / MM
    assert payment["receipt_number"] in pdf.pages[0].extract_text()
    await context.close()
