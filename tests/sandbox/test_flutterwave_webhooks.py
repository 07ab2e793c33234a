"""Webhooks: exact shape and header, each delivery scenario (gateways.md §2.5, pitfalls 17-23)."""

import base64
import hashlib
import hmac
import json
import time

import httpx

from tests.support.flutterwave_helpers import SECRET_HASH, hooks, paid, settings, verify
from tests.support.servers import free_port

V3_DATA_KEYS = [
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
    "customer",
    "card",
]


def attempts(sandbox, **params):
    return httpx.get(f"{sandbox}/_sandbox/flutterwave/webhooks", params=params).json()["attempts"]


def test_a_payment_sends_a_charge_completed_webhook_with_the_secret_hash(sandbox, callback_sink):
    params = paid(sandbox, tx_ref="inv-42", amount=1500, meta={"invoice_id": 42})
    truth = verify(sandbox, params["transaction_id"]).json()["data"]

    (hook,) = hooks(callback_sink, 1)

    assert (hook.method, hook.path) == ("POST", "/hooks/flutterwave")
    assert hook.headers["verif-hash"] == SECRET_HASH
    assert hook.headers["content-type"] == "application/json"
    assert "flutterwave-signature" not in hook.headers
    assert list(hook.json) == ["event", "data", "event.type", "meta_data"]
    assert hook.json["event"] == "charge.completed"
    assert hook.json["event.type"] == "CARD_TRANSACTION"
    assert hook.json["meta_data"] == {"invoice_id": 42}
    data = hook.json["data"]
    assert list(data) == V3_DATA_KEYS
    assert data == {
        "id": int(params["transaction_id"]),
        "tx_ref": "inv-42",
        "flw_ref": truth["flw_ref"],
        "device_fingerprint": truth["device_fingerprint"],
        "amount": 1500,
        "currency": "KES",
        "charged_amount": 1500,
        "app_fee": 21,
        "merchant_fee": 0,
        "processor_response": "Approved",
        "auth_model": "PIN",
        "ip": "127.0.0.1",
        "narration": "CARD Transaction ",
        "status": "successful",
        "payment_type": "card",
        "created_at": truth["created_at"],
        "account_id": truth["account_id"],
        "customer": {
            "id": truth["customer"]["id"],
            "name": "Jane Doe",
            "phone_number": "254708374149",
            "email": "jane@example.test",
            "created_at": truth["customer"]["created_at"],
        },
        "card": {
            "first_6digits": "553188",
            "last_4digits": "2950",
            "issuer": "MASTERCARD CREDIT",
            "country": "NG",
            "type": "MASTERCARD",
            "expiry": "09/32",
        },
    }
    assert data["flw_ref"].startswith("FLW-MOCK-") and len(data["flw_ref"]) == len("FLW-MOCK-") + 32
    assert data["created_at"].endswith("Z")


def test_a_webhook_never_carries_a_full_card_number(sandbox, callback_sink):
    paid(sandbox)

    (hook,) = hooks(callback_sink, 1)

    assert b"5531886652142950" not in hook.body
    assert "token" not in hook.json["data"]["card"]


def test_a_failed_card_sends_a_failed_charge_completed(sandbox, callback_sink):
    params = paid(sandbox, card="insufficient_funds")

    (hook,) = hooks(callback_sink, 1)

    assert hook.json["event"] == "charge.completed"
    data = hook.json["data"]
    assert (data["id"], data["status"]) == (int(params["transaction_id"]), "failed")
    assert data["processor_response"] == "Insufficient funds"
    assert (data["card"]["first_6digits"], data["card"]["last_4digits"]) == ("525858", "6506")


def test_duplicate_sends_the_same_bytes_twice(sandbox, callback_sink):
    paid(sandbox, scenario="duplicate")

    first, second = hooks(callback_sink, 2)

    assert first.body == second.body
    assert first.headers["verif-hash"] == second.headers["verif-hash"] == SECRET_HASH


def test_late_arrives_after_the_redirect(sandbox, callback_sink):
    settings(sandbox, late_webhook_delay=1.0)
    started = time.monotonic()

    params = paid(sandbox, scenario="late")

    assert callback_sink.received == []
    (hook,) = hooks(callback_sink, 1)
    assert time.monotonic() - started >= 1.0
    assert hook.json["data"]["id"] == int(params["transaction_id"])


def test_none_sends_nothing(sandbox, callback_sink):
    silent = paid(sandbox, tx_ref="inv-silent", scenario="none")
    loud = paid(sandbox, tx_ref="inv-loud")

    (hook,) = hooks(callback_sink, 1)

    assert hook.json["data"]["id"] == int(loud["transaction_id"])
    assert attempts(sandbox, transaction_id=silent["transaction_id"]) == []
    assert verify(sandbox, silent["transaction_id"]).json()["data"]["status"] == "successful"


def test_wrong_hash_sends_another_verif_hash(sandbox, callback_sink):
    paid(sandbox, scenario="wrong_hash")

    (hook,) = hooks(callback_sink, 1)

    assert hook.headers["verif-hash"] != SECRET_HASH
    assert hook.json["event"] == "charge.completed"


def test_signature_sends_an_hmac_of_the_raw_body_instead_of_verif_hash(sandbox, callback_sink):
    paid(sandbox, scenario="signature")

    (hook,) = hooks(callback_sink, 1)

    assert "verif-hash" not in hook.headers
    expected = base64.b64encode(
        hmac.new(SECRET_HASH.encode(), hook.body, hashlib.sha256).digest()
    ).decode()
    assert hook.headers["flutterwave-signature"] == expected
    # Pitfall 17: the HMAC covers the raw bytes; Python's default re-serialisation differs.
    assert json.dumps(hook.json).encode() != hook.body


def test_flat_sends_the_legacy_shape(sandbox, callback_sink):
    params = paid(sandbox, tx_ref="inv-flat", scenario="flat")
    truth = verify(sandbox, params["transaction_id"]).json()["data"]

    (hook,) = hooks(callback_sink, 1)

    assert hook.headers["verif-hash"] == SECRET_HASH
    body = hook.json
    assert list(body) == [
        "id",
        "txRef",
        "flwRef",
        "orderRef",
        "amount",
        "charged_amount",
        "status",
        "IP",
        "currency",
        "appfee",
        "customer",
        "entity",
        "event.type",
    ]
    assert (body["id"], body["txRef"], body["flwRef"]) == (
        int(params["transaction_id"]),
        "inv-flat",
        truth["flw_ref"],
    )
    assert body["orderRef"].startswith("URF_")
    assert (body["amount"], body["charged_amount"], body["currency"], body["appfee"]) == (
        1500,
        1500,
        "KES",
        21,
    )
    assert (body["status"], body["IP"], body["event.type"]) == (
        "successful",
        "127.0.0.1",
        "CARD_TRANSACTION",
    )
    assert body["customer"] == {
        "id": truth["customer"]["id"],
        "phone": "254708374149",
        "fullName": "Jane Doe",
        "email": "jane@example.test",
    }
    assert body["entity"] == {"card6": "553188", "card_last4": "2950"}


def test_tampered_claims_more_than_verify_reports(sandbox, callback_sink):
    params = paid(sandbox, amount=1500, scenario="tampered")

    (hook,) = hooks(callback_sink, 1)
    truth = verify(sandbox, params["transaction_id"]).json()["data"]

    assert params["status"] == "successful"
    assert params["amount"] == "1500"
    assert (hook.json["data"]["amount"], hook.json["data"]["charged_amount"]) == (1500, 1500)
    assert (truth["amount"], truth["charged_amount"], truth["status"]) == (150, 150, "successful")


def test_wrong_currency_claims_the_requested_currency(sandbox, callback_sink):
    params = paid(sandbox, currency="KES", scenario="wrong_currency")

    (hook,) = hooks(callback_sink, 1)

    assert hook.json["data"]["currency"] == "KES"
    assert verify(sandbox, params["transaction_id"]).json()["data"]["currency"] == "NGN"


def test_scenarios_combine(sandbox, callback_sink):
    paid(sandbox, scenario="duplicate+flat")

    first, second = hooks(callback_sink, 2)

    assert first.body == second.body
    assert "txRef" in first.json


def test_the_control_api_resends_a_webhook_n_times(sandbox, callback_sink):
    params = paid(sandbox)
    hooks(callback_sink, 1)

    r = httpx.post(
        f"{sandbox}/_sandbox/flutterwave/transactions/{params['transaction_id']}/webhook",
        json={"times": 3},
    )

    assert r.status_code == 200
    assert [a["status_code"] for a in r.json()["attempts"]] == [200, 200, 200]
    received = hooks(callback_sink, 4)
    assert len({h.body for h in received}) == 1
    assert len(attempts(sandbox, transaction_id=params["transaction_id"])) == 4


def test_the_control_api_can_resend_in_another_shape(sandbox, callback_sink):
    params = paid(sandbox)
    hooks(callback_sink, 1)

    httpx.post(
        f"{sandbox}/_sandbox/flutterwave/transactions/{params['transaction_id']}/webhook",
        json={"scenario": "flat+wrong_hash"},
    )

    resent = hooks(callback_sink, 2)[1]
    assert resent.json["txRef"] == params["tx_ref"]
    assert resent.headers["verif-hash"] != SECRET_HASH


def test_delivery_attempts_are_listed(sandbox, callback_sink):
    params = paid(sandbox, tx_ref="inv-list")
    (hook,) = hooks(callback_sink, 1)

    (attempt,) = attempts(sandbox, tx_ref="inv-list")

    assert attempt["kind"] == "charge.completed"
    assert attempt["transaction_id"] == int(params["transaction_id"])
    assert attempt["url"] == f"{callback_sink.base}/hooks/flutterwave"
    assert attempt["status_code"] == 200 and attempt["delivered"] and attempt["error"] is None
    assert attempt["headers"]["verif-hash"] == SECRET_HASH
    assert attempt["body"] == hook.json


def test_an_unreachable_webhook_url_is_recorded_not_fatal(sandbox):
    settings(sandbox, webhook_url=f"http://127.0.0.1:{free_port()}/hooks/flutterwave")

    params = paid(sandbox)

    attempt = wait_for_attempt(sandbox, params["transaction_id"])
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("ConnectError")
    assert httpx.get(f"{sandbox}/healthz").status_code == 200


def test_a_refused_delivery_is_retried_when_retries_are_on(sandbox, callback_sink):
    callback_sink.status = 500
    settings(sandbox, webhook_retries=2, webhook_retry_interval=0.05)

    params = paid(sandbox)

    received = hooks(callback_sink, 3)
    assert len({h.body for h in received}) == 1
    done = wait_for_attempt(sandbox, params["transaction_id"], count=3)
    assert [(a["attempt"], a["status_code"]) for a in done] == [(1, 500), (2, 500), (3, 500)]


def test_without_retries_a_refused_delivery_is_tried_once(sandbox, callback_sink):
    callback_sink.status = 302  # even a redirect counts as a failed delivery
    first = paid(sandbox, tx_ref="inv-a")
    second = paid(sandbox, tx_ref="inv-b")

    hooks(callback_sink, 2)
    wait_for_attempt(sandbox, second["transaction_id"])

    assert [
        a["status_code"] for a in attempts(sandbox, transaction_id=first["transaction_id"])
    ] == [302]
    assert len(callback_sink.received) == 2


def test_reset_cancels_pending_webhooks(sandbox, callback_sink):
    settings(sandbox, late_webhook_delay=0.5)
    paid(sandbox, scenario="late")

    httpx.post(f"{sandbox}/_sandbox/flutterwave/reset")
    time.sleep(0.8)  # past the moment the late webhook would have gone out

    assert callback_sink.received == []
    assert attempts(sandbox) == []


def wait_for_attempt(sandbox, tx_id, count=1, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = attempts(sandbox, transaction_id=tx_id)
        if len(found) >= count and all(a["status_code"] or a["error"] for a in found):
            return found[0] if count == 1 else found
        time.sleep(0.05)
    raise AssertionError(f"no {count} finished attempt(s) for {tx_id}")


def test_the_webhook_url_follows_the_config_unless_overridden(sandbox, callback_sink):
    url = f"{callback_sink.base}/hooks/flutterwave"

    def current():
        return httpx.get(f"{sandbox}/_sandbox/flutterwave/settings").json()["settings"]

    default_delay = current()["late_webhook_delay"]
    assert current()["webhook_url"] == url
    other = "http://elsewhere.test/hook"
    assert settings(sandbox, webhook_url=other)["webhook_url"] == other
    assert settings(sandbox, webhook_url=None)["webhook_url"] == url
    settings(sandbox, webhook_url=other, late_webhook_delay=default_delay + 1)
    httpx.post(f"{sandbox}/_sandbox/flutterwave/reset")
    assert (current()["webhook_url"], current()["late_webhook_delay"]) == (url, default_delay)


def test_unknown_or_mistyped_settings_are_refused(sandbox):
    for knobs in (
        {"nope": 1},
        {"late_webhook_delay": "soon"},
        {"duplicate_tx_ref": "maybe"},
        {"refund_webhooks": 1},
    ):
        r = httpx.post(f"{sandbox}/_sandbox/flutterwave/settings", json=knobs)
        assert r.status_code == 400, knobs
        assert "error" in r.json()
