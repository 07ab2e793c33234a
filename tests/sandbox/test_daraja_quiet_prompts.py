# ruff: noqa: F811  (tests take the imported `daraja` fixture as their argument)
"""The "quiet" STK scenarios: no callback ever, STK Query "being processed" for ever; only
Transaction Status by OriginalConversationID (the push's MerchantRequestID) knows the outcome, and
its Result can come late and more than once (status_result_delay, status_result_times)."""

import time

from tests.sandbox.daraja_helpers import body_of, daraja, received_at, wait_at  # noqa: F401  (the `daraja` fixture)
from tests.sandbox.test_daraja_async import assert_ack, status_body

QUIET = "254700000020"


def _quiet_push(daraja, scenario: str, amount=1500) -> dict:
    daraja.control("POST", "/scenarios", {"phone": QUIET, "scenario": scenario})
    return daraja.push_ok(QUIET, amount=amount)


def test_a_quiet_paid_prompt_is_told_only_by_transaction_status(daraja):
    daraja.settings(status_result_times=2)
    push = _quiet_push(daraja, "quiet")
    time.sleep(0.3)
    assert received_at(daraja.sink, "/stk/") == []  # no callback
    q = daraja.query(push["CheckoutRequestID"])
    assert q.status_code == 500 and q.json()["errorMessage"] == "The transaction is being processed"
    receipt = daraja.stk_state(push["CheckoutRequestID"])["receipt"]
    ack = assert_ack(daraja.post("/mpesa/transactionstatus/v1/query", status_body(
        daraja, "", TransactionID=None, OriginalConversationID=push["MerchantRequestID"])))
    results = wait_at(daraja.sink, "/txstatus/result", 2)
    assert body_of(results[0]) == body_of(results[1])  # the same Result, twice
    result = body_of(results[0])["Result"]
    assert (result["ResultCode"], result["OriginatorConversationID"], result["TransactionID"]) == (
        0, ack["OriginatorConversationID"], receipt)
    values = {p["Key"]: p.get("Value") for p in result["ResultParameters"]["ResultParameter"]}
    assert (values["ReceiptNo"], values["TransactionStatus"], values["Amount"]) == (receipt, "Completed", 1500)


def test_a_quiet_cancelled_prompt_and_an_unknown_id(daraja):
    push = _quiet_push(daraja, "quiet_cancelled")
    assert daraja.query(push["CheckoutRequestID"]).status_code == 500
    assert_ack(daraja.post("/mpesa/transactionstatus/v1/query", status_body(
        daraja, "", TransactionID=None, OriginalConversationID=push["CheckoutRequestID"])))  # either id
    [got] = wait_at(daraja.sink, "/txstatus/result", 1)
    assert (body_of(got)["Result"]["ResultCode"], body_of(got)["Result"]["ResultDesc"]) == (1032, "Request cancelled by user")
    assert_ack(daraja.post("/mpesa/transactionstatus/v1/query", status_body(
        daraja, "", TransactionID=None, OriginalConversationID="no-such-request")))
    results = wait_at(daraja.sink, "/txstatus/result", 2)
    assert body_of(results[1])["Result"]["ResultCode"] == "R000002"


def test_a_late_result(daraja):
    daraja.settings(status_result_delay=0.6)
    push = _quiet_push(daraja, "quiet")
    assert_ack(daraja.post("/mpesa/transactionstatus/v1/query", status_body(
        daraja, "", TransactionID=None, OriginalConversationID=push["MerchantRequestID"])))
    time.sleep(0.3)
    assert received_at(daraja.sink, "/txstatus/result") == []
    assert len(wait_at(daraja.sink, "/txstatus/result", 1)) == 1
