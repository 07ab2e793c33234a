"""POST /v3/transactions/{id}/refund: full, partial, too much, webhooks (gateways.md §2.5-6)."""

import re

import httpx

from tests.support.flutterwave_helpers import AUTH, SECRET_HASH, hooks, paid, settings

REFUND_KEYS = [
    "id",
    "account_id",
    "tx_id",
    "flw_ref",
    "wallet_id",
    "amount_refunded",
    "status",
    "destination",
    "meta",
    "created_at",
]


def refund(sandbox, tx_id, body=None, headers=AUTH):
    return httpx.post(f"{sandbox}/v3/transactions/{tx_id}/refund", json=body, headers=headers)


def refunds_of(sandbox, tx_ref):
    (tx,) = httpx.get(
        f"{sandbox}/_sandbox/flutterwave/transactions", params={"tx_ref": tx_ref}
    ).json()["transactions"]
    return tx["refunded"], tx["refunds"]


def test_without_an_amount_the_whole_payment_is_refunded(sandbox):
    tx_id = paid(sandbox, tx_ref="inv-r", amount=1500)["transaction_id"]

    r = refund(sandbox, tx_id)

    assert r.status_code == 200
    body = r.json()
    assert (body["status"], body["message"]) == ("success", "Transaction refund initiated")
    data = body["data"]
    assert list(data) == REFUND_KEYS
    assert (data["tx_id"], data["amount_refunded"], data["status"]) == (
        int(tx_id),
        1500,
        "completed",
    )
    assert (data["destination"], data["meta"]) == ("payment_source", {"source": "availablebalance"})
    assert re.fullmatch(r"URF_\d{13}_\d{7}", data["flw_ref"])
    assert refunds_of(sandbox, "inv-r")[0] == 1500


def test_partial_refunds_add_up_to_the_payment_and_no_further(sandbox):
    tx_id = paid(sandbox, tx_ref="inv-r", amount=1500)["transaction_id"]

    first = refund(sandbox, tx_id, {"amount": 500, "comments": "Class cancelled"})
    rest = refund(sandbox, tx_id)
    more = refund(sandbox, tx_id, {"amount": 1})

    assert first.json()["data"]["amount_refunded"] == 500
    assert rest.json()["data"]["amount_refunded"] == 1000
    assert more.status_code == 400
    assert more.json() == {
        "status": "error",
        "message": "Transaction has already been fully refunded",
        "data": None,
    }
    assert refunds_of(sandbox, "inv-r")[0] == 1500


def test_refunding_more_than_was_paid_is_refused(sandbox):
    tx_id = paid(sandbox, tx_ref="inv-r", amount=1500)["transaction_id"]
    refund(sandbox, tx_id, {"amount": 1000})

    r = refund(sandbox, tx_id, {"amount": 500.01})

    assert r.status_code == 400
    assert r.json() == {
        "status": "error",
        "message": "Refund amount cannot be greater than the refundable amount (500)",
        "data": None,
    }
    assert refunds_of(sandbox, "inv-r")[0] == 1000


def test_a_tampered_payment_refunds_only_what_was_really_charged(sandbox):
    tx_id = paid(sandbox, tx_ref="inv-t", amount=1500, scenario="tampered")["transaction_id"]

    over = refund(sandbox, tx_id, {"amount": 1500})
    full = refund(sandbox, tx_id)

    assert over.status_code == 400
    assert full.json()["data"]["amount_refunded"] == 150


def test_a_failed_charge_cannot_be_refunded(sandbox):
    tx_id = paid(sandbox, card="insufficient_funds")["transaction_id"]

    r = refund(sandbox, tx_id)

    assert r.status_code == 400
    assert r.json() == {
        "status": "error",
        "message": "Only successful transactions can be refunded",
        "data": None,
    }


def test_refund_checks_id_amount_and_key(sandbox):
    tx_id = paid(sandbox)["transaction_id"]

    unknown = refund(sandbox, "inv-42-1718000000")
    bad_amount = refund(sandbox, tx_id, {"amount": -5})
    no_key = refund(sandbox, tx_id, headers={})

    assert (unknown.status_code, unknown.json()["message"]) == (
        400,
        "No transaction was found for this id",
    )
    assert (bad_amount.status_code, bad_amount.json()["message"]) == (400, "Invalid amount")
    assert (no_key.status_code, no_key.json()["message"]) == (401, "Invalid authorization key")


def test_refund_webhooks_are_off_by_default(sandbox, callback_sink):
    tx_id = paid(sandbox, tx_ref="inv-a")["transaction_id"]
    refund(sandbox, tx_id)
    paid(sandbox, tx_ref="inv-b")

    received = hooks(callback_sink, 2)

    assert [h.json["data"]["tx_ref"] for h in received] == ["inv-a", "inv-b"]


def test_when_enabled_a_refund_sends_a_flat_pascal_case_webhook(sandbox, callback_sink):
    settings(sandbox, refund_webhooks=True)
    tx_id = paid(sandbox, tx_ref="inv-r")["transaction_id"]
    hooks(callback_sink, 1)

    data = refund(sandbox, tx_id, {"amount": 400, "comments": "Overpaid"}).json()["data"]
    hook = hooks(callback_sink, 2)[1]

    assert hook.headers["verif-hash"] == SECRET_HASH
    body = hook.json
    assert "event" not in body and "data" not in body
    assert (body["id"], body["TransactionId"], body["TxRef"]) == (data["id"], int(tx_id), "inv-r")
    assert (body["AmountRefunded"], body["status"], body["comments"]) == (
        400,
        "completed",
        "Overpaid",
    )
    assert body["FlwRef"].startswith("FLW-MOCK-")
    assert isinstance(body["meta"], str) and '"source":"availablebalance"' in body["meta"]
