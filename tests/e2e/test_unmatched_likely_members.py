"""Unmatched M-Pesa with a masked phone: the likely members are offered, the likeliest first, and
one click matches the payment (screenshots at the desk's width and a phone's)."""

import json
from datetime import datetime, timezone

import pytest

from portal.auth import create_staff
from tables.gateway import GatewayCallback
from tests.billing.helpers import invoice_for
from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.factories import make_member

pytestmark = pytest.mark.browser


async def test_staff_match_a_masked_payment_to_the_likeliest_member(db, queue, browser, live_server, page):
    from playwright.async_api import expect

    await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith")
    payer = await make_member("Grace", "Wanjiru", phone="254722555126", number="PTF0401")
    await make_member("Otieno", "Barasa", phone="254711000126", number="PTF0402")
    await make_member("Grace", "Njeri", phone="254733000127", number="PTF0403")  # other last digits
    await invoice_for(payer, 3000)
    body = {"TransactionType": "Pay Bill", "TransID": "TKL9MASK01", "TransTime": "20261207101500", "TransAmount": "3000.00",
            "BusinessShortCode": "174379", "BillRefNumber": "gym fees", "InvoiceNumber": "", "OrgAccountBalance": "",
            "ThirdPartyTransID": "", "MSISDN": "2547 ***** 126", "FirstName": "GRACE", "MiddleName": "", "LastName": ""}
    now = datetime.now(timezone.utc)
    await GatewayCallback.insert(GatewayCallback(
        gateway="daraja", kind="c2b_confirmation", dedupe_key="TKL9MASK01", external_id="TKL9MASK01",
        body=json.dumps(body), received_at=now, last_delivery_at=now, processed_at=now, attempts=1,
        outcome="unmatched", note="account gym fees matches no member or invoice", amount="3000.00"))

    await LoginPage(page).login("faith", "faith-password-1")
    await page.goto("/mpesa/unmatched")
    likely = page.get_by_test_id("likely-member")
    await expect(likely).to_have_count(2)
    await expect(likely.first).to_have_attribute("data-member", "PTF0401")
    await screenshot(page, "recon-unmatched-likely")
    await page.set_viewport_size({"width": 390, "height": 800})
    await screenshot(page, "recon-unmatched-likely-phone")
    await page.set_viewport_size({"width": 1280, "height": 860})
    await page.get_by_test_id("likely-match-PTF0401").click()
    await page.wait_for_url("**/payments/*")
    await expect(page.locator("body")).to_contain_text("TKL9MASK01")
