"""The people pages: sandbox index, simulated phone, paybill (HTML, no external assets)."""

import re

from tests.sandbox.daraja_helpers import INTERACTIVE, daraja  # noqa: F401  (daraja fixture)


def no_external_assets(html: str) -> None:
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=", html)
    assert "https://" not in html


def test_index_lists_pages_scenarios_and_magic_numbers(daraja):
    r = daraja.http.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    no_external_assets(html)
    assert 'href="/phone"' in html and 'href="/paybill"' in html
    scenarios = daraja.control("GET", "/scenarios")
    for phone, name in scenarios["magic_phones"].items():
        assert phone in html and name in html
    for amount in scenarios["magic_amounts"]:
        assert f"KES {int(amount):,}" in html
    assert "/_sandbox/daraja/stk/{checkout_request_id:str}/accept" in html
    assert 'name="viewport"' in html  # mobile-friendly


def test_phone_page_picks_numbers_and_refreshes_itself(daraja):
    html = daraja.http.get("/phone").text
    no_external_assets(html)
    assert 'data-testid="phone-input"' in html
    bad = daraja.http.get("/phone", params={"msisdn": "12345"}).text
    assert 'data-testid="phone-error"' in bad

    state = daraja.http.get("/phone/state", params={"msisdn": INTERACTIVE}).json()["v"]
    push = daraja.push_ok(INTERACTIVE)
    # The page's poller sees a new fingerprint once a prompt arrives ...
    assert daraja.http.get("/phone/state", params={"msisdn": INTERACTIVE}).json()["v"] != state
    # ... and the phone picker lists the ringing phone.
    assert f"/phone?msisdn={INTERACTIVE}" in daraja.http.get("/phone").text
    page = daraja.http.get("/phone", params={"msisdn": f"+{INTERACTIVE}"}).text
    assert 'data-testid="stk-prompt"' in page
    assert f'data-checkout-request-id="{push["CheckoutRequestID"]}"' in page
    assert "location.reload()" in page and "data-expires" in page


def test_unknown_prompt_page(daraja):
    r = daraja.http.post("/phone/prompts/ws_CO_nope/accept", data={"pin": "1234"})
    assert r.status_code == 404 and "Unknown prompt" in r.text
