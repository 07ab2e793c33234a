"""The simulated phone driven by a real browser: the prompt appears by itself, Accept pays."""

import shutil

import pytest

from tests.sandbox.daraja_helpers import (  # noqa: F401  (daraja fixture)
    INTERACTIVE,
    body_of,
    daraja,
    wait_at,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed"),
]


def test_prompt_appears_without_reload_and_accept_pays(daraja, callback_sink):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.goto(f"{daraja.base}/phone")
            page.get_by_test_id("phone-input").fill("0700000010")
            page.get_by_test_id("phone-open").click()
            page.get_by_test_id("no-prompts").wait_for()

            push = daraja.push_ok(INTERACTIVE, amount=3000)
            # The page polls and reloads itself when the prompt arrives.
            prompt = page.get_by_test_id("stk-prompt")
            prompt.wait_for(timeout=5000)
            assert "Pay KES 3,000 to 174379 account PTF0001? Enter PIN" in prompt.inner_text()
            page.get_by_test_id("pin-input").fill("1234")
            page.get_by_test_id("accept-button").click()
            page.get_by_test_id("no-prompts").wait_for()
        finally:
            browser.close()
    [got] = wait_at(callback_sink, "/stk/", 1)
    cb = body_of(got)["Body"]["stkCallback"]
    assert (cb["CheckoutRequestID"], cb["ResultCode"]) == (push["CheckoutRequestID"], 0)
