"""POST /v3/payments: link, auth, validation, defaults, re-used tx_refs (gateways.md §2.1-2)."""

import re

import httpx
import pytest

from tests.support.flutterwave_helpers import (
    AUTH,
    create,
    paid,
    pay,
    payment,
    query,
    settings,
    verify,
)


def test_it_returns_a_hosted_link(sandbox):
    r = httpx.post(f"{sandbox}/v3/payments", json=payment(), headers=AUTH)

    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"status", "message", "data"}
    assert (body["status"], body["message"], set(body["data"])) == (
        "success",
        "Hosted Link",
        {"link"},
    )
    assert re.fullmatch(rf"{re.escape(sandbox)}/checkout/[0-9a-f]{{20}}", body["data"]["link"])


def test_the_link_opens_the_hosted_page(sandbox):
    page = httpx.get(create(sandbox, amount=1500))

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "KES 1,500.00" in page.text
    assert "inv-42-1718000000" in page.text
    assert "Mazoezi Gym" in page.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer FLWSECK_TEST-wrong"},
        {"Authorization": AUTH["Authorization"].replace("Bearer ", "Basic ")},
        {"Authorization": AUTH["Authorization"].removeprefix("Bearer ")},
    ],
    ids=["missing", "wrong-key", "wrong-scheme", "no-scheme"],
)
def test_it_refuses_a_missing_or_wrong_secret_key(sandbox, headers):
    r = httpx.post(f"{sandbox}/v3/payments", json=payment(), headers=headers)

    assert r.status_code == 401
    assert r.json() == {"status": "error", "message": "Invalid authorization key", "data": None}
    assert httpx.get(f"{sandbox}/_sandbox/flutterwave/checkouts").json() == {"checkouts": []}


INVALID = [
    ({"tx_ref": None}, "tx_ref is required"),
    ({"tx_ref": "  "}, "tx_ref is required"),
    ({"amount": None}, "amount is required"),
    ({"amount": "abc"}, "Invalid amount"),
    ({"amount": 0}, "Invalid amount"),
    ({"amount": -100}, "Invalid amount"),
    ({"amount": 10.001}, "Invalid amount"),
    ({"amount": True}, "Invalid amount"),
    ({"currency": "kes"}, "Invalid currency"),
    ({"currency": "XYZ"}, "Invalid currency"),
    ({"redirect_url": "gym.example.test/return"}, "Invalid redirect_url"),
    ({"redirect_url": "javascript:alert(1)"}, "Invalid redirect_url"),
    ({"customer": None}, "customer.email is required"),
    ({"customer": {"name": "Jane"}}, "customer.email is required"),
    ({"customer": {"email": "not-an-email"}}, "Invalid customer email"),
]


def test_it_validates_the_body(sandbox):
    for overrides, message in INVALID:
        body = {k: v for k, v in payment(**overrides).items() if v is not None}

        r = httpx.post(f"{sandbox}/v3/payments", json=body, headers=AUTH)

        assert r.status_code == 400, overrides
        assert r.json() == {"status": "error", "message": message, "data": None}, overrides
    assert httpx.get(f"{sandbox}/_sandbox/flutterwave/checkouts").json() == {"checkouts": []}


def test_it_refuses_a_body_that_is_not_a_json_object(sandbox):
    for content in (b"tx_ref=1&amount=5", b"[1, 2]"):
        r = httpx.post(
            f"{sandbox}/v3/payments",
            content=content,
            headers={**AUTH, "content-type": "application/json"},
        )
        assert r.status_code == 400
        assert r.json() == {"status": "error", "message": "Invalid JSON body", "data": None}


def test_amount_is_in_major_units_and_may_be_a_numeric_string(sandbox):
    link = create(sandbox, amount="1500.50")

    assert "KES 1,500.50" in httpx.get(link).text
    tx = verify(sandbox, query(pay(link).headers["location"])["transaction_id"]).json()["data"]
    assert (tx["amount"], tx["charged_amount"], tx["currency"]) == (1500.5, 1500.5, "KES")


def test_currency_defaults_to_ngn_when_omitted(sandbox):
    body = payment()
    del body["currency"]
    link = httpx.post(f"{sandbox}/v3/payments", json=body, headers=AUTH).json()["data"]["link"]

    assert "NGN 1,500.00" in httpx.get(link).text
    tx_id = query(pay(link).headers["location"])["transaction_id"]
    assert verify(sandbox, tx_id).json()["data"]["currency"] == "NGN"


@pytest.mark.parametrize("spelling", ["phonenumber", "phone_number"])
def test_it_accepts_both_customer_phone_spellings(sandbox, spelling):
    customer = {"email": "jane@example.test", "name": "Jane Doe", spelling: "254708374149"}

    tx_id = paid(sandbox, customer=customer)["transaction_id"]

    assert verify(sandbox, tx_id).json()["data"]["customer"]["phone_number"] == "254708374149"


def test_meta_is_stored_with_the_transaction(sandbox):
    tx_id = paid(sandbox, meta={"invoice_id": 42})["transaction_id"]

    assert verify(sandbox, tx_id).json()["data"]["meta"] == {"invoice_id": 42}


def test_an_unpaid_tx_ref_may_ask_for_a_new_link(sandbox):
    first = create(sandbox, tx_ref="inv-7")
    second = create(sandbox, tx_ref="inv-7")

    assert first != second


def test_a_paid_tx_ref_is_refused_by_default(sandbox):
    paid(sandbox, tx_ref="inv-7")

    r = httpx.post(f"{sandbox}/v3/payments", json=payment(tx_ref="inv-7"), headers=AUTH)

    assert r.status_code == 400
    assert r.json() == {
        "status": "error",
        "message": "Duplicate transaction reference",
        "data": None,
    }


def test_a_second_open_link_for_a_paid_tx_ref_cannot_be_paid(sandbox):
    spare = create(sandbox, tx_ref="inv-7")
    paid(sandbox, tx_ref="inv-7")

    r = pay(spare)

    assert r.status_code == 409
    assert "already paid" in r.text
    assert (
        len(httpx.get(f"{sandbox}/_sandbox/flutterwave/transactions").json()["transactions"]) == 1
    )


def test_reject_mode_refuses_any_reused_tx_ref(sandbox):
    settings(sandbox, duplicate_tx_ref="reject")
    create(sandbox, tx_ref="inv-7")

    r = httpx.post(f"{sandbox}/v3/payments", json=payment(tx_ref="inv-7"), headers=AUTH)

    assert r.status_code == 400
    assert r.json()["message"] == "Duplicate transaction reference"


def test_allow_mode_lets_a_tx_ref_be_paid_twice(sandbox):
    settings(sandbox, duplicate_tx_ref="allow")

    first = paid(sandbox, tx_ref="inv-7")["transaction_id"]
    second = paid(sandbox, tx_ref="inv-7")["transaction_id"]

    assert first != second


def test_a_503_on_create_may_still_have_created_the_checkout(sandbox):
    settings(sandbox, create_503_next=1, delay_503=0.2)

    r = httpx.post(f"{sandbox}/v3/payments", json=payment(tx_ref="inv-503"), headers=AUTH)

    assert r.status_code == 503
    assert r.json() == {
        "status": "error",
        "message": "An error occurred. Please contact support",
        "data": None,
    }
    checkouts = httpx.get(f"{sandbox}/_sandbox/flutterwave/checkouts").json()["checkouts"]
    assert [c["tx_ref"] for c in checkouts] == ["inv-503"]
    # Only the next create was affected.
    assert (
        httpx.post(
            f"{sandbox}/v3/payments", json=payment(tx_ref="inv-503"), headers=AUTH
        ).status_code
        == 200
    )
