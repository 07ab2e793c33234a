"""A company paying for its staff, in a real browser: the payer created (a wrong KRA PIN first),
three staff linked, one payment settling the oldest invoices, and the corporate invoice PDF with
the buyer's PIN kept in test-artifacts/pdf-previews/ (PDF and first-page PNG) for people to look at."""

import shutil
import subprocess
from datetime import timedelta
from io import BytesIO

import httpx
import pytest
from pypdf import PdfReader

from portal.auth import create_staff
from portal.lib.clock import today
from tables.payers import Payer
from tests.billing.helpers import assert_books_agree
from tests.conftest import ROOT
from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.factories import make_member
from tests.payers.helpers import invoice_due

pytestmark = pytest.mark.browser
PREVIEWS = ROOT / "test-artifacts" / "pdf-previews"


async def test_a_company_pays_for_three_staff_and_its_invoice_prints_the_buyers_pin(db, queue, browser, live_server, page):
    """Invoices 3,000 (due 20 days ago), 3,000 (10 days ago), 8,000 (5 days ago) addressed to Acme;
    one bank payment of 11,000: the first two paid, 5,000 on the third, 3,000 still owed."""
    from playwright.async_api import expect

    await create_staff("paul", "paul-password-1", "manager", first_name="Paul")  # "More" is in the managers' menu
    staff = [await make_member("Achieng", "Odhiambo", number="PTF0201"),
             await make_member("Otieno", "Mwangi", number="PTF0202"),
             await make_member("Njeri", "Kariuki", number="PTF0203")]
    await LoginPage(page).login("paul", "paul-password-1")

    await page.goto("/members")
    await page.get_by_test_id("nav-more").locator("summary").click()
    await page.get_by_role("link", name="Payers").click()
    await page.get_by_test_id("new-company").click()
    await page.get_by_label("Name").fill("Acme Logistics Ltd")
    await page.get_by_label("Email").fill("accounts@acme.co.ke")
    await page.get_by_label("Postal address").fill("P.O. Box 12345-00100\nNairobi")
    await page.get_by_label("KRA PIN").fill("P05123456")
    await page.get_by_test_id("save-payer").click()
    await expect(page.get_by_test_id("error-kra_pin")).to_contain_text("a letter, 9 digits and a letter")
    await expect(page.get_by_label("KRA PIN")).to_have_value("P05123456")
    await expect(page.get_by_label("Name")).to_have_value("Acme Logistics Ltd")
    await screenshot(page, "payers-01-wrong-pin")
    await page.get_by_label("KRA PIN").fill("P051234567X")
    await page.get_by_test_id("save-payer").click()
    await expect(page.get_by_test_id("payer-pin")).to_have_text("P051234567X")

    for number in ("PTF0201", "PTF0202", "PTF0203"):
        await page.get_by_test_id("link-member").fill(number)
        await page.get_by_test_id("link-member-button").click()
    await expect(page.get_by_test_id("payer-member")).to_have_count(3)

    payer_id = (await Payer.select(Payer.id).first())["id"]
    day = today()
    await invoice_due(staff[0], 3000, day - timedelta(days=20))
    await invoice_due(staff[1], 3000, day - timedelta(days=10))
    third = await invoice_due(staff[2], 8000, day - timedelta(days=5))
    await page.goto(f"/payers/{payer_id}")
    await expect(page.get_by_test_id("payer-owed")).to_have_text("KES 14,000")
    await expect(page.get_by_test_id("payer-invoice")).to_have_count(3)
    await screenshot(page, "payers-02-payer-page")

    await page.get_by_test_id("method-bank").check()
    await page.get_by_test_id("pay-amount").fill("11000")
    await page.get_by_label("Cheque no. / bank reference").fill("EQ-448812")
    await page.get_by_test_id("record-payer-payment").click()
    confirm = page.get_by_test_id("pay-confirmed")
    if await confirm.count():
        await confirm.check()
        await page.get_by_test_id("record-payer-payment").click()
    await expect(page.get_by_test_id("payment-payer")).to_have_text("Acme Logistics Ltd")
    await expect(page.get_by_test_id("balance-after")).to_have_text("KES 3,000")
    await screenshot(page, "payers-03-payment")

    await page.goto(f"/payers/{payer_id}")
    await expect(page.get_by_test_id("payer-owed")).to_have_text("KES 3,000")
    await expect(page.get_by_test_id("payer-invoice")).to_have_count(1)
    await screenshot(page, "payers-04-payer-page-after")

    # The member's page says who pays (loaded into the page by htmx).
    await page.goto(f"/members/{staff[2]}")
    await expect(page.get_by_test_id("member-payer-link")).to_have_text("Acme Logistics Ltd")

    await page.goto(f"/invoices/{third['id']}")
    await expect(page.get_by_test_id("bill-to-pin")).to_have_text("P051234567X")
    await screenshot(page, "payers-05-invoice")
    link = page.get_by_test_id("doc-invoice").get_by_role("link", name="Invoice PDF", exact=True)
    await expect(link).to_be_visible(timeout=30_000)
    href = await link.get_attribute("href")
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    pdf = httpx.get(live_server + href, cookies=cookies, timeout=20).content
    text = " ".join((p.extract_text() or "") for p in PdfReader(BytesIO(pdf)).pages)
    text = " ".join(text.split())
    PREVIEWS.mkdir(parents=True, exist_ok=True)
    (PREVIEWS / "invoice-payer-company.pdf").write_bytes(pdf)
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", "-f", "1", "-l", "1",
                        str(PREVIEWS / "invoice-payer-company.pdf"), str(PREVIEWS / "invoice-payer-company")], check=False)
    # Labels are set in capitals by the stylesheet: compared without case.
    for expected in ("Bill to", "Acme Logistics Ltd", "P.O. Box 12345-00100", "Buyer's PIN: P051234567X",
                     "Membership for", "Njeri Kariuki", "PTF0203", "Balance due KES 3,000"):
        assert expected.lower() in text.lower(), (expected, text)
    await assert_books_agree()

    # On a phone the payer's page and the list do not scroll sideways (wide tables scroll in their box).
    phone = await browser.new_context(base_url=live_server, viewport={"width": 390, "height": 800})
    small = await phone.new_page()
    await LoginPage(small).login("paul", "paul-password-1")
    for path, name in ((f"/payers/{payer_id}", "payers-06-payer-page-phone"), ("/payers", "payers-07-list-phone")):
        await small.goto(path)
        await small.wait_for_load_state("networkidle")
        sideways = await small.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        await screenshot(small, name)
        assert sideways <= 0, (path, sideways)
    await phone.close()
