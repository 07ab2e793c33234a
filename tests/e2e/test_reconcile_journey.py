"""A manager reconciles M-Pesa: opens the page from More, uploads a broken statement (told the line
and column), then the right one: one line matched, one the portal never heard of credited, one
nobody's, a reversal. Screenshots 90-… (desktop and a phone's width)."""

import json
from datetime import timedelta

import pytest

from portal.auth import create_staff
from portal.callbacks import dispatch
from portal.callbacks import store as callbacks
from portal.lib.clock import now
from portal.settings import get_settings
from tests.billing.helpers import invoice_for
from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.factories import make_member

pytestmark = pytest.mark.browser

HEADER = ("Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,Balance,"
          "Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No.\r\n")


def _when(minutes: int) -> str:
    return (now() - timedelta(minutes=90 - minutes)).astimezone(get_settings().tz).strftime("%Y-%m-%d %H:%M:%S")


async def _statement() -> str:
    wanjiku = await make_member("Wanjiku", "Kamau", number="PTF0101")
    otieno = await make_member("Otieno", "Odhiambo", number="PTF0102")
    await invoice_for(wanjiku, 3000)
    await invoice_for(otieno, 8000)
    body = {"TransactionType": "Pay Bill", "TransID": "TLA1KNOWN1", "TransTime": "20261207090000",
            "TransAmount": "3000.00", "BusinessShortCode": "174379", "BillRefNumber": "PTF0101",
            "MSISDN": "2547 ***** 149", "FirstName": "WANJIKU"}
    stored = await callbacks.store("daraja", "c2b_confirmation", json.dumps(body).encode(), external_id="TLA1KNOWN1")
    assert await dispatch.process(stored.id) == "applied"
    return HEADER + "".join([
        f"TLA1REVERS,{_when(40)},{_when(40)},Pay Bill Online Reversal of TLA1KNOWN1,Completed,,\"-3,000.00\",\"8,500.00\",true,Pay Bill Online Reversal,2547 ***** 149 - WANJIKU,TLA1KNOWN1,PTF0101\r\n",
        f"TLA1NOBODY,{_when(30)},{_when(30)},Pay Bill from 2547 ***** 222 - PETER Acc. GYM,Completed,500.00,,\"11,500.00\",true,Pay Bill Online,2547 ***** 222 - PETER,,GYM\r\n",
        f"TLA1NEWPAY,{_when(20)},{_when(20)},Pay Bill from 2547 ***** 333 - OTIENO Acc. PTF0102,Completed,\"8,000.00\",,\"11,000.00\",true,Pay Bill Online,2547 ***** 333 - OTIENO,,PTF0102\r\n",
        f"TLA1KNOWN1,{_when(10)},{_when(10)},Pay Bill from 2547 ***** 149 - WANJIKU Acc. PTF0101,Completed,\"3,000.00\",,\"3,000.00\",true,Pay Bill Online,2547 ***** 149 - WANJIKU,,PTF0101\r\n",
    ])


async def test_a_manager_imports_the_mpesa_statement(db, queue, browser, live_server, page, tmp_path):
    from playwright.async_api import expect

    await create_staff("mary", "mary-password-1", "manager", first_name="Mary")
    good = tmp_path / "ORG_174379_statement.csv"
    good.write_text(await _statement())
    broken = tmp_path / "ORG_174379_statement_edited.csv"
    broken.write_text(good.read_text().replace('"8,000.00",,', '"8.000,00",,'))

    await LoginPage(page).login("mary", "mary-password-1")
    await page.get_by_test_id("nav-more").click()
    await page.get_by_role("link", name="M-Pesa reconciliation").click()
    await expect(page).to_have_url(f"{live_server}/reconcile/mpesa")
    await page.locator("#statement-file").set_input_files(str(broken))
    await page.get_by_test_id("import-statement").click()
    await expect(page.get_by_test_id("import-error")).to_contain_text("Line 4, column 6 (Paid In)")
    await screenshot(page, "90-reconcile-refused")

    await page.locator("#statement-file").set_input_files(str(good))
    await page.get_by_test_id("import-statement").click()
    await expect(page.get_by_test_id("count-credited")).to_have_text("1")
    await expect(page.get_by_test_id("count-matched")).to_have_text("1")
    await expect(page.get_by_test_id("count-unmatched")).to_have_text("1")
    await expect(page.get_by_test_id("count-reversal")).to_have_text("1")
    await expect(page.get_by_test_id("paid-in")).to_contain_text("11,500")
    await screenshot(page, "91-reconcile-statement")
    await page.set_viewport_size({"width": 390, "height": 844})
    await screenshot(page, "92-reconcile-statement-phone")
    await page.set_viewport_size({"width": 1280, "height": 860})
    await page.goto("/reconcile/mpesa")
    await expect(page.get_by_test_id("statements")).to_contain_text("ORG_174379_statement.csv")
    await screenshot(page, "93-reconcile-page")
