"""GET /v3/transactions/{id}/verify and verify_by_reference (gateways.md §2.4, pitfalls 21, 23)."""

import re
import time

import httpx
import pytest

from tests.support.flutterwave_helpers import AUTH, paid, settings, verify

NOT_FOUND = {"status": "error", "message": "No transaction was found for this id", "data": None}
VERIFY_KEYS = [
    "id",
    "tx_ref",
    "flw_ref",
    "device_fingerprint",
    "amount",
    "currency",
    "charged_amount",
    "app_fee",
    "merchant_fee",
    "processor_response",
    "auth_model",
    "ip",
    "narration",
    "status",
    "payment_type",
    "created_at",
    "account_id",
    "card",
    "meta",
    "amount_settled",
    "customer",
]


def by_ref(sandbox, tx_ref, headers=AUTH):
    return httpx.get(
        f"{sandbox}/v3/transactions/verify_by_reference", params={"tx_ref": tx_ref}, headers=headers
    )


def test_verify_by_id_reports_the_transaction(sandbox):
    params = paid(sandbox, tx_ref="inv-42", amount=1500, card="visa_3ds")

    r = verify(sandbox, params["transaction_id"])

    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["status", "message", "data"]
    assert (body["status"], body["message"]) == ("success", "Transaction fetched successfully")
    data = body["data"]
    assert list(data) == VERIFY_KEYS
    assert data["id"] == int(params["transaction_id"])
    assert (data["tx_ref"], data["status"], data["payment_type"]) == (
        "inv-42",
        "successful",
        "card",
    )
    assert (data["amount"], data["currency"], data["charged_amount"]) == (1500, "KES", 1500)
    assert (data["app_fee"], data["merchant_fee"], data["amount_settled"]) == (21, 0, 1479)
    assert (data["processor_response"], data["auth_model"], data["narration"]) == (
        "Approved",
        "VBVSECURECODE",
        "CARD Transaction ",
    )
    assert re.fullmatch(r"FLW-MOCK-[0-9a-f]{32}", data["flw_ref"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["created_at"])
    assert data["card"]["first_6digits"] == "418742" and data["card"]["last_4digits"] == "4246"
    assert (data["card"]["type"], data["card"]["expiry"], data["card"]["country"]) == (
        "VISA",
        "09/32",
        "NG",
    )
    assert re.fullmatch(r"flw-t1nf-[0-9a-f]{32}-m03k", data["card"]["token"])
    assert data["meta"] is None
    customer = data["customer"]
    assert list(customer) == ["id", "name", "phone_number", "email", "created_at"]
    assert (customer["name"], customer["email"], customer["phone_number"]) == (
        "Jane Doe",
        "jane@example.test",
        "254708374149",
    )


def test_a_customer_without_a_phone_reads_na(sandbox):
    params = paid(sandbox, customer={"email": "jane@example.test"})

    customer = verify(sandbox, params["transaction_id"]).json()["data"]["customer"]

    assert (customer["phone_number"], customer["name"]) == ("N/A", "Anonymous customer")


def test_a_failed_charge_verifies_as_failed(sandbox):
    params = paid(sandbox, card="declined")

    body = verify(sandbox, params["transaction_id"]).json()

    assert body["status"] == "success"
    assert (body["data"]["status"], body["data"]["processor_response"]) == ("failed", "Declined")
    assert body["data"]["amount_settled"] == 0


def test_verify_by_reference_matches_verify_by_id(sandbox):
    params = paid(sandbox, tx_ref="inv-ref")

    r = by_ref(sandbox, "inv-ref")

    assert r.status_code == 200
    assert r.json() == verify(sandbox, params["transaction_id"]).json()


@pytest.mark.parametrize(
    "tx_id",
    ["99999999", "inv-42", "FLW-MOCK-3b10a512c4dae649e580a7e5747cfd2c"],
    ids=["unknown-id", "tx_ref-as-id", "flw_ref-as-id"],
)
def test_an_unknown_id_is_not_found(sandbox, tx_id):
    paid(sandbox, tx_ref="inv-42")

    r = verify(sandbox, tx_id)

    assert r.status_code == 400
    assert r.json() == NOT_FOUND


def test_an_unknown_reference_is_not_found(sandbox):
    r = by_ref(sandbox, "inv-nobody")

    assert r.status_code == 400
    assert r.json() == NOT_FOUND


def test_verify_by_reference_needs_a_tx_ref(sandbox):
    r = httpx.get(f"{sandbox}/v3/transactions/verify_by_reference", headers=AUTH)

    assert r.status_code == 400
    assert r.json() == {"status": "error", "message": "tx_ref is required", "data": None}


def test_the_not_found_status_code_is_a_knob(sandbox):
    settings(sandbox, not_found_status=200)

    r = verify(sandbox, 12345)

    assert r.status_code == 200
    assert r.json() == NOT_FOUND


def test_verify_needs_the_secret_key(sandbox):
    params = paid(sandbox, tx_ref="inv-auth")
    wrong = {"Authorization": "Bearer FLWSECK_TEST-other"}

    for r in (
        httpx.get(f"{sandbox}/v3/transactions/{params['transaction_id']}/verify", headers=wrong),
        by_ref(sandbox, "inv-auth", headers={}),
    ):
        assert r.status_code == 401
        assert r.json() == {"status": "error", "message": "Invalid authorization key", "data": None}


def test_verify_503_answers_503_after_a_delay_then_recovers(sandbox):
    settings(sandbox, delay_503=0.3, verify_503_count=2)
    params = paid(sandbox, tx_ref="inv-503", scenario="verify_503")

    started = time.monotonic()
    first = verify(sandbox, params["transaction_id"])
    elapsed = time.monotonic() - started
    second = by_ref(sandbox, "inv-503")
    third = verify(sandbox, params["transaction_id"])

    assert elapsed >= 0.3
    for r in (first, second):
        assert r.status_code == 503
        assert r.json() == {
            "status": "error",
            "message": "An error occurred. Please contact support",
            "data": None,
        }
    assert third.status_code == 200
    assert third.json()["data"]["status"] == "successful"
