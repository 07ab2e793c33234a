"""A member opens the pay link on a phone and pays: by card on the (sandbox) hosted checkout, or
by M-Pesa approved on the simulated phone. The pay page's weight and first render are measured."""

import os

import pytest

from portal.billing import paylinks
from tests.billing.helpers import invoice_for, pay
from tests.e2e.conftest import screenshot
from tests.factories import make_member

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 760}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
# A slow phone on a weak signal ("Slow 3G" in Chromium's dev tools).
SLOW_3G = {"offline": False, "latency": 400, "downloadThroughput": 400 * 1024 / 8, "uploadThroughput": 400 * 1024 / 8}


async def _phone(browser, live_server):
    context = await browser.new_context(base_url=live_server, **PHONE)
    context.set_default_timeout(15_000)
    return context, await context.new_page()


async def _weight_and_first_paint(page, url: str) -> tuple[dict, float]:
    """Bytes per resource type on the wire for `url`, and its first contentful paint in ms."""
    sizes: dict[str, int] = {}

    async def count(response):
        kind = response.request.resource_type
        body = await response.body()
        sizes[kind] = sizes.get(kind, 0) + len(body)

    page.on("response", count)
    await page.goto(url, wait_until="load")
    page.remove_listener("response", count)
    fcp = await page.evaluate("""() => new Promise(resolve => {
        const seen = list => { const e = list.getEntriesByName('first-contentful-paint')[0]; if (e) resolve(e.startTime); };
        new PerformanceObserver(seen).observe({type: 'paint', buffered: true});
        setTimeout(() => resolve(-1), 5000);
    })""")
    return sizes, fcp


async def test_a_member_pays_by_card_on_a_phone(db, queue, browser, live_server):
    from playwright.async_api import expect

    member = await make_member("Wanjiku", "Kamau", email="wanjiku@example.com")
    inv = await invoice_for(member, 4500)
    await pay(member, 1000)  # a part-payment at the desk: the page asks for what is left
    token = await paylinks.create_link(inv["id"], None)

    context, phone = await _phone(browser, live_server)
    sizes, fcp = await _weight_and_first_paint(phone, f"/pay/{token}")
    html_css_js = sizes.get("document", 0) + sizes.get("stylesheet", 0) + sizes.get("script", 0)
    print(f"\npay page: html {sizes.get('document', 0)} B, css {sizes.get('stylesheet', 0)} B, "
          f"js {sizes.get('script', 0)} B, images {sizes.get('image', 0)} B; first contentful paint {fcp:.0f} ms")
    assert sizes.get("script", 0) == 0  # the pay page itself needs no JavaScript
    assert 0 < html_css_js < 15_000 and 0 < fcp < 1_500
    await expect(phone.get_by_test_id("owed")).to_have_text("KES 3,500")
    await screenshot(phone, "30-pay-page-phone")

    await phone.get_by_test_id("pay-card").click()
    await phone.wait_for_url(f"{os.environ['E2E_SANDBOX_URL']}/checkout/**")
    await expect(phone.get_by_test_id("checkout-amount")).to_contain_text("3,500")
    await screenshot(phone, "31-card-checkout-phone")
    await phone.get_by_test_id("card-success").click()

    await phone.wait_for_url(f"{live_server}/pay/{token}/payments/**")
    thanks = phone.get_by_test_id("thank-you")
    await expect(thanks).to_contain_text("Thank you", timeout=20_000)
    await expect(thanks).to_contain_text("KES 3,500")
    await expect(thanks).to_contain_text("ending")
    await screenshot(phone, "32-card-thank-you-phone")
    async with phone.expect_response(lambda r: r.url.endswith("/receipt.pdf")) as pdf:
        await phone.evaluate("url => fetch(url)", await phone.get_by_test_id("receipt-pdf").get_attribute("href"))
    response = await pdf.value
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    await phone.goto(f"/pay/{token}")
    await expect(phone.get_by_test_id("settled")).to_be_visible()
    await context.close()


async def test_a_member_pays_by_mpesa_on_a_phone(db, queue, browser, live_server):
    from playwright.async_api import expect

    member = await make_member("Achieng", "Odhiambo", phone="254722555222", number="PTF0301")
    inv = await invoice_for(member, 2000)
    token = await paylinks.create_link(inv["id"], None)

    context, phone = await _phone(browser, live_server)
    cdp = await context.new_cdp_session(phone)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditions", SLOW_3G)
    sizes, fcp = await _weight_and_first_paint(phone, f"/pay/{token}")
    print(f"\npay page on slow 3G (400 kbit/s, 400 ms): first contentful paint {fcp:.0f} ms")
    assert 0 < fcp < 3_000
    await cdp.send("Network.emulateNetworkConditions", {**SLOW_3G, "latency": 0, "downloadThroughput": -1,
                                                        "uploadThroughput": -1})

    await expect(phone.get_by_test_id("pay-phone")).to_have_value("0722 555 222")
    await phone.get_by_test_id("pay-mpesa").click()
    status = phone.get_by_test_id("pay-status")
    await expect(status).to_contain_text("enter your M-Pesa PIN")
    await screenshot(phone, "33-mpesa-waiting-phone")

    handset_context = await browser.new_context(**PHONE)
    handset = await handset_context.new_page()
    await handset.goto(f"{os.environ['E2E_SANDBOX_URL']}/phone")
    await handset.get_by_test_id("phone-input").fill("0722 555 222")
    await handset.get_by_test_id("phone-open").click()
    await expect(handset.get_by_test_id("stk-prompt")).to_contain_text("PTF0301", timeout=10_000)
    await handset.get_by_test_id("pin-input").fill("4321")
    await handset.get_by_test_id("accept-button").click()
    await handset_context.close()

    # The pay page turns to paid by itself.
    await expect(status).to_have_attribute("data-status", "completed", timeout=20_000)
    await expect(phone.get_by_test_id("thank-you")).to_contain_text("M-Pesa")
    await expect(phone.get_by_test_id("receipt-pdf")).to_be_visible()
    await screenshot(phone, "34-mpesa-thank-you-phone")
    await context.close()
