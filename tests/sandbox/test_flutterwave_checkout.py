"""The simulated hosted checkout page and the redirect back (gateways.md §2.3, §2.7)."""

import re

import httpx
import pytest

from tests.support.flutterwave_helpers import (
    AUTH,
    RETURN_URL,
    cancel,
    create,
    hooks,
    paid,
    pay,
    query,
    settings,
    verify,
)

CARDS = {
    # key: (status, first6, last4, processor_response)
    "success": ("successful", "553188", "2950", "Approved"),
    "visa_3ds": ("successful", "418742", "4246", "Approved"),
    "mastercard_3ds": ("successful", "543889", "0229", "Approved"),
    "verve": ("successful", "506146", "4667", "Approved"),
    "insufficient_funds": ("failed", "525858", "6506", "Insufficient funds"),
    "declined": ("failed", "514301", "9965", "Declined"),
}
FULL_NUMBERS = [
    "5531886652142950",
    "4187427415564246",
    "5438898014560229",
    "5061460166976054667",
    "5258585922666506",
]


def test_the_page_offers_each_test_card_a_scenario_select_and_cancel(sandbox):
    html = httpx.get(create(sandbox)).text

    for key in CARDS:
        assert f'data-testid="card-{key}"' in html
        assert f'name="card" value="{key}"' in html
    assert 'data-testid="cancel"' in html
    assert 'data-testid="scenario-select"' in html
    assert 'name="viewport"' in html


def test_the_page_loads_nothing_from_elsewhere_and_shows_no_full_card_number(sandbox):
    html = httpx.get(create(sandbox)).text
    digits_only = re.sub(r"\D", "", html)

    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    for number in FULL_NUMBERS:
        assert number not in digits_only


@pytest.mark.parametrize("card", CARDS)
def test_paying_redirects_with_status_tx_ref_and_transaction_id(sandbox, card):
    status, first6, last4, response = CARDS[card]

    r = pay(create(sandbox, tx_ref=f"inv-{card}"), card)

    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith(RETURN_URL + "?")
    params = query(location)
    assert set(params) == {"status", "tx_ref", "transaction_id"}
    assert (params["status"], params["tx_ref"]) == (status, f"inv-{card}")
    data = verify(sandbox, params["transaction_id"]).json()["data"]
    assert data["id"] == int(params["transaction_id"])
    assert (data["status"], data["processor_response"]) == (status, response)
    assert (data["card"]["first_6digits"], data["card"]["last_4digits"]) == (first6, last4)


def test_cancelling_redirects_without_a_transaction_id(sandbox, callback_sink):
    r = cancel(create(sandbox, tx_ref="inv-cancel"))

    assert r.status_code == 303
    assert r.headers["location"] == f"{RETURN_URL}?status=cancelled&tx_ref=inv-cancel"
    lookup = httpx.get(
        f"{sandbox}/v3/transactions/verify_by_reference",
        params={"tx_ref": "inv-cancel"},
        headers=AUTH,
    )
    assert lookup.json() == {
        "status": "error",
        "message": "No transaction was found for this id",
        "data": None,
    }
    # A cancel sends no webhook: the next payment's webhook is the only one that arrives.
    later = paid(sandbox, tx_ref="inv-after")
    (hook,) = hooks(callback_sink, 1)
    assert hook.json["data"]["id"] == int(later["transaction_id"])


def test_a_redirect_url_with_a_query_gets_the_parameters_after_an_ampersand(sandbox):
    r = pay(
        create(
            sandbox,
            tx_ref="inv-q",
            redirect_url="https://gym.example.test/return?invoice=42&lang=sw",
        )
    )

    location = r.headers["location"]
    assert location.startswith(
        "https://gym.example.test/return?invoice=42&lang=sw&status=successful&tx_ref=inv-q&"
    )
    assert query(location)["invoice"] == "42"


def test_a_finished_checkout_shows_its_result_and_takes_no_second_payment(sandbox):
    link = create(sandbox)
    first = pay(link)

    page = httpx.get(link)
    again = pay(link, "visa_3ds")

    assert page.status_code == 200
    assert 'data-testid="checkout-status">successful<' in page.text
    assert first.headers["location"].replace("&", "&amp;") in page.text
    assert again.status_code == 409
    assert "already successful" in again.text
    assert (
        len(httpx.get(f"{sandbox}/_sandbox/flutterwave/transactions").json()["transactions"]) == 1
    )


def test_an_unknown_link_is_a_404_page(sandbox):
    assert httpx.get(f"{sandbox}/checkout/00000000000000000000").status_code == 404
    assert pay(f"{sandbox}/checkout/00000000000000000000").status_code == 404


def test_an_unknown_card_or_scenario_is_refused_on_the_page(sandbox):
    link = create(sandbox)

    bad_card = pay(link, "4111111111111111")
    bad_scenario = pay(link, "success", "explode")

    assert bad_card.status_code == 400
    assert "Unknown test card" in bad_card.text
    assert bad_scenario.status_code == 400
    assert "unknown scenario" in bad_scenario.text
    assert httpx.get(f"{sandbox}/_sandbox/flutterwave/transactions").json()["transactions"] == []


def test_without_a_redirect_url_the_page_shows_the_result(sandbox):
    body_link = httpx.post(
        f"{sandbox}/v3/payments",
        json={
            "tx_ref": "inv-nr",
            "amount": 100,
            "currency": "KES",
            "customer": {"email": "jane@example.test"},
        },
        headers=AUTH,
    ).json()["data"]["link"]

    r = pay(body_link)

    assert r.status_code == 200
    assert 'data-testid="checkout-status">successful<' in r.text


def test_in_retry_mode_a_failed_card_stays_on_the_page(sandbox):
    settings(sandbox, failed_card="retry")
    link = create(sandbox, tx_ref="inv-retry")

    failed = pay(link, "insufficient_funds")
    ok = pay(link, "success")

    assert failed.status_code == 200
    assert "Payment failed: Insufficient funds" in failed.text
    assert 'data-testid="checkout-error"' in failed.text
    assert query(ok.headers["location"])["status"] == "successful"
    txs = httpx.get(f"{sandbox}/_sandbox/flutterwave/transactions?tx_ref=inv-retry").json()[
        "transactions"
    ]
    assert [t["status"] for t in txs] == ["failed", "successful"]
    # verify_by_reference reports the successful charge, not the newest-by-accident.
    by_ref = httpx.get(
        f"{sandbox}/v3/transactions/verify_by_reference",
        params={"tx_ref": "inv-retry"},
        headers=AUTH,
    )
    assert by_ref.json()["data"]["id"] == txs[1]["id"]


def test_the_control_api_completes_a_checkout_like_the_page(sandbox, callback_sink):
    create(sandbox, tx_ref="inv-ctl")

    r = httpx.post(
        f"{sandbox}/_sandbox/flutterwave/complete", json={"tx_ref": "inv-ctl", "card": "declined"}
    )

    assert r.status_code == 200
    done = r.json()
    assert (done["status"], done["tx_ref"], done["scenario"]) == ("failed", "inv-ctl", "normal")
    assert query(done["redirect_url"]) == {
        "status": "failed",
        "tx_ref": "inv-ctl",
        "transaction_id": str(done["transaction_id"]),
    }
    (hook,) = hooks(callback_sink, 1)
    assert (hook.json["data"]["id"], hook.json["data"]["status"]) == (
        done["transaction_id"],
        "failed",
    )


def test_the_control_api_cancels_and_refuses_a_finished_checkout(sandbox):
    link = create(sandbox, tx_ref="inv-ctl")
    checkout_id = link.rsplit("/", 1)[1]

    first = httpx.post(
        f"{sandbox}/_sandbox/flutterwave/complete",
        json={"checkout_id": checkout_id, "card": "cancel"},
    )
    second = httpx.post(
        f"{sandbox}/_sandbox/flutterwave/complete", json={"checkout_id": checkout_id}
    )
    missing = httpx.post(f"{sandbox}/_sandbox/flutterwave/complete", json={"tx_ref": "nope"})

    assert first.json()["redirect_url"] == f"{RETURN_URL}?status=cancelled&tx_ref=inv-ctl"
    assert first.json()["transaction_id"] is None
    assert second.status_code == 409
    assert missing.status_code == 404


def test_a_tagged_customer_email_preselects_the_scenario(sandbox, callback_sink):
    customer = {"email": "jane+fw-duplicate@example.test", "name": "Jane Doe"}
    link = create(sandbox, customer=customer)

    html = httpx.get(link).text
    done = httpx.post(
        f"{sandbox}/_sandbox/flutterwave/complete", json={"checkout_id": link.rsplit("/", 1)[1]}
    )

    assert re.search(
        r'<option value="duplicate" data-testid="scenario-duplicate"\s+selected>', html
    )
    assert done.json()["scenario"] == "duplicate"
    assert len(hooks(callback_sink, 2)) == 2


def test_the_overview_page_lists_scenarios_cards_and_transactions(sandbox):
    tx_id = paid(sandbox)["transaction_id"]

    page = httpx.get(f"{sandbox}/_sandbox/flutterwave")

    assert page.status_code == 200
    for name in (
        "duplicate",
        "late",
        "none",
        "wrong_hash",
        "signature",
        "flat",
        "tampered",
        "verify_503",
    ):
        assert f"<code>{name}</code>" in page.text
    assert f"<td>{tx_id}</td>" in page.text
