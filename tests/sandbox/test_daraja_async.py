"""Transaction Status (§1.9) and Reversal (§1.10): acknowledgement, then Result callbacks."""

import re

from tests.sandbox.daraja_helpers import (  # noqa: F401  (daraja fixture)
    SHORTCODE,
    SUCCESS,
    body_of,
    daraja,
    received_at,
    wait_at,
)

ACK_KEYS = ["OriginatorConversationID", "ConversationID", "ResponseCode", "ResponseDescription"]


def paid_receipt(daraja, amount=1200) -> str:
    push = daraja.push_ok(SUCCESS, amount=amount)
    [cb] = wait_at(daraja.sink, "/stk/", 1)
    items = body_of(cb)["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
    assert body_of(cb)["Body"]["stkCallback"]["CheckoutRequestID"] == push["CheckoutRequestID"]
    return next(i["Value"] for i in items if i["Name"] == "MpesaReceiptNumber")


def status_body(daraja, receipt, **overrides) -> dict:
    body = {
        "Initiator": "testapi",
        "SecurityCredential": "c2VjcmV0LWJsb2I=",
        "CommandID": "TransactionStatusQuery",
        "TransactionID": receipt,
        "OriginalConversationID": "",
        "PartyA": SHORTCODE,
        "IdentifierType": "4",
        "ResultURL": f"{daraja.sink.base}/txstatus/result",
        "QueueTimeOutURL": f"{daraja.sink.base}/txstatus/timeout",
        "Remarks": "OK",
        "Occasion": "Reconcile",
    }
    body.update(overrides)
    return body


def reversal_body(daraja, receipt, **overrides) -> dict:
    body = {
        "Initiator": "testapi",
        "SecurityCredential": "c2VjcmV0LWJsb2I=",
        "CommandID": "TransactionReversal",
        "TransactionID": receipt,
        "Amount": "1200",
        "ReceiverParty": SHORTCODE,
        "RecieverIdentifierType": "11",
        "ResultURL": f"{daraja.sink.base}/reversal/result",
        "QueueTimeOutURL": f"{daraja.sink.base}/reversal/timeout",
        "Remarks": "Refund PTF0001",
    }
    body.update(overrides)
    return body


def assert_ack(r) -> dict:
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ACK_KEYS
    assert (body["ResponseCode"], body["ResponseDescription"]) == (
        "0", "Accept the service request successfully.")
    assert re.fullmatch(r"AG_[0-9]{8}_[0-9a-f]{20}", body["ConversationID"])
    return body


def test_transaction_status_of_a_paid_push(daraja):
    receipt = paid_receipt(daraja, 1200)
    ack = assert_ack(daraja.post("/mpesa/transactionstatus/v1/query", status_body(daraja, receipt)))
    [got] = wait_at(daraja.sink, "/txstatus/result", 1)
    result = body_of(got)["Result"]
    assert list(result) == ["ResultType", "ResultCode", "ResultDesc", "OriginatorConversationID",
                            "ConversationID", "TransactionID", "ResultParameters", "ReferenceData"]
    assert (result["ResultType"], result["ResultCode"]) == (0, 0)
    assert result["ResultDesc"] == "The service request is processed successfully."
    assert result["OriginatorConversationID"] == ack["OriginatorConversationID"]
    assert result["ConversationID"] == ack["ConversationID"]
    assert result["TransactionID"] == receipt
    params = result["ResultParameters"]["ResultParameter"]
    values = {p["Key"]: p.get("Value") for p in params}
    assert values["ReceiptNo"] == receipt
    assert values["TransactionStatus"] == "Completed"
    assert values["Amount"] == 1200
    assert isinstance(values["InitiatedTime"], int) and len(str(values["FinalisedTime"])) == 14
    assert values["DebitPartyName"].startswith(f"{SUCCESS} - ")
    assert values["CreditPartyName"].startswith(f"{SHORTCODE} - ")
    assert "Value" not in next(p for p in params if p["Key"] == "TransactionReason")
    assert result["ReferenceData"] == {"ReferenceItem": {"Key": "Occasion", "Value": "Reconcile"}}


def test_transaction_status_of_a_c2b_payment_and_of_an_unknown_receipt(daraja):
    daraja.register("v2", validation=None)
    daraja.simulate("v2", amount=700)
    [conf] = wait_at(daraja.sink, "/c2b/confirm/", 1)
    trans_id = body_of(conf)["TransID"]
    assert_ack(daraja.post("/mpesa/transactionstatus/v1/query",
                           status_body(daraja, trans_id, PartyA="600984")))
    assert_ack(daraja.post("/mpesa/transactionstatus/v1/query",
                           status_body(daraja, "ZZZ0000000")))
    results = [body_of(r)["Result"] for r in wait_at(daraja.sink, "/txstatus/result", 2)]
    by_code = {str(r["ResultCode"]): r for r in results}
    ok = by_code["0"]
    assert {p["Key"]: p.get("Value") for p in ok["ResultParameters"]["ResultParameter"]}[
        "Amount"] == 700
    unknown = by_code["R000002"]
    assert unknown["ResultCode"] == "R000002"  # a string, unlike the numeric 0
    assert "ResultParameters" not in unknown


def test_transaction_status_field_rules(daraja):
    cases = [
        ({"CommandID": "TransactionStatus"}, "CommandID"),
        ({"Command ID": "TransactionStatusQuery", "CommandID": None}, "CommandID"),
        ({"TransactionID": None}, "TransactionID"),
        ({"TransactionID": "NEF 61H8J60"}, "TransactionID"),
        ({"IdentifierType": "3"}, "IdentifierType"),
        ({"ResultURL": "nowhere"}, "ResultURL"),
        ({"QueueTimeOutURL": None}, "QueueTimeOutURL"),
        ({"Initiator": ""}, "Initiator"),
        ({"SecurityCredential": None}, "SecurityCredential"),
        ({"Remarks": "x" * 101}, "Remarks"),
    ]
    for override, field in cases:
        body = {k: v for k, v in status_body(daraja, "NEF61H8J60", **override).items()
                if v is not None}
        r = daraja.post("/mpesa/transactionstatus/v1/query", body)
        assert (r.status_code, r.json()["errorMessage"]) == (400, f"Bad Request - Invalid {field}"), override
    # OriginalConversationID alone identifies the transaction too.
    body = status_body(daraja, None, OriginalConversationID="7071-4170-a0e5-8345632bad442144258")
    del body["TransactionID"]
    assert_ack(daraja.post("/mpesa/transactionstatus/v1/query", body))


def test_reversal_success_then_already_reversed(daraja):
    receipt = paid_receipt(daraja, 1200)
    ack = assert_ack(daraja.post("/mpesa/reversal/v1/request", reversal_body(daraja, receipt)))
    [got] = wait_at(daraja.sink, "/reversal/result", 1)
    result = body_of(got)["Result"]
    assert (result["ResultType"], result["ResultCode"]) == (0, 0)
    assert result["ConversationID"] == ack["ConversationID"]
    assert re.fullmatch(r"[A-Z0-9]{10}", result["TransactionID"]) and result["TransactionID"] != receipt
    params = {p["Key"]: p["Value"] for p in result["ResultParameters"]["ResultParameter"]}
    assert list(params) == ["DebitAccountBalance", "Amount", "TransCompletedTime",
                            "OriginalTransactionID", "Charge", "CreditPartyPublicName",
                            "DebitPartyPublicName"]
    assert params["OriginalTransactionID"] == receipt
    assert params["Amount"] == 1200
    assert b'"Value":1200.00' in got.body and b'"Value":0.00' in got.body
    assert params["DebitAccountBalance"] == "Utility Account|KES|0.00|0.00|0.00|0.00"
    assert isinstance(params["TransCompletedTime"], int)
    assert params["CreditPartyPublicName"].startswith(SUCCESS)
    assert result["ReferenceData"]["ReferenceItem"]["Key"] == "QueueTimeoutURL"

    assert_ack(daraja.post("/mpesa/reversal/v1/request", reversal_body(daraja, receipt)))
    again = body_of(wait_at(daraja.sink, "/reversal/result", 2)[1])["Result"]
    assert again["ResultCode"] == "R000001"
    assert "ResultParameters" not in again


def test_reversal_of_an_unknown_receipt_fails_in_the_result(daraja):
    ack = assert_ack(daraja.post("/mpesa/reversal/v1/request",
                                 reversal_body(daraja, "SKC82PACB8")))
    [got] = wait_at(daraja.sink, "/reversal/result", 1)
    result = body_of(got)["Result"]
    assert result["ResultCode"] == "R000002"
    assert result["ResultDesc"] == "The OriginalTransactionID is invalid."
    assert re.fullmatch(r"[A-Z][A-L][1-9A-V]0000000", result["TransactionID"])
    assert result["ConversationID"] == ack["ConversationID"]
    assert "ResultParameters" not in result


def test_reversal_needs_the_vendor_spelling_of_reciever_identifier_type(daraja):
    body = reversal_body(daraja, "SKC82PACB8")
    body["ReceiverIdentifierType"] = body.pop("RecieverIdentifierType")
    r = daraja.post("/mpesa/reversal/v1/request", body)
    assert (r.status_code, r.json()["errorMessage"]) == (
        400, "Bad Request - Invalid RecieverIdentifierType")
    assert_ack(daraja.post("/mpesa/reversal/v1/request",
                           reversal_body(daraja, "SKC82PACB8", RecieverIdentifierType="4")))
    r = daraja.post("/mpesa/reversal/v1/request", reversal_body(daraja, "SKC82PACB8", Remarks="x"))
    assert r.json()["errorMessage"] == "Bad Request - Invalid Remarks"  # 2..100 chars


def test_queue_timeout_mode_posts_to_queue_timeout_url(daraja):
    daraja.settings(async_result_mode="queue_timeout")
    ack = assert_ack(daraja.post("/mpesa/reversal/v1/request",
                                 reversal_body(daraja, "SKC82PACB8")))
    [got] = wait_at(daraja.sink, "/reversal/timeout", 1)
    result = body_of(got)["Result"]
    assert result["ConversationID"] == ack["ConversationID"]
    assert result["OriginatorConversationID"] == ack["OriginatorConversationID"]
    assert received_at(daraja.sink, "/reversal/result") == []


def test_queue_timeout_then_result_mode_posts_the_timeout_and_then_the_result(daraja):
    """Daraja gave up waiting (QueueTimeOutURL), but M-Pesa reversed the money all the same."""
    receipt = paid_receipt(daraja, 1200)
    daraja.settings(async_result_mode="queue_timeout_then_result")
    ack = assert_ack(daraja.post("/mpesa/reversal/v1/request", reversal_body(daraja, receipt)))
    [result] = wait_at(daraja.sink, "/reversal/result", 1)
    [timeout] = received_at(daraja.sink, "/reversal/timeout")
    assert daraja.sink.received.index(timeout) < daraja.sink.received.index(result)
    assert body_of(timeout)["Result"]["ResultCode"] == 1037
    assert body_of(result)["Result"]["ResultCode"] == 0
    assert {body_of(r)["Result"]["ConversationID"] for r in (timeout, result)} == {ack["ConversationID"]}
    assert daraja.control("GET", "/ledger")["items"][0]["reversed_by"] == body_of(result)["Result"]["TransactionID"]


def test_wrong_initiator_when_one_is_configured(daraja):
    daraja.settings(initiator="gymapi")
    receipt = paid_receipt(daraja)
    assert_ack(daraja.post("/mpesa/transactionstatus/v1/query", status_body(daraja, receipt)))
    [got] = wait_at(daraja.sink, "/txstatus/result", 1)
    assert body_of(got)["Result"]["ResultCode"] == 2001
    listed = daraja.control("GET", "/async")["items"]
    assert listed[0]["result_code"] == 2001 and listed[0]["posted_to"].endswith("/txstatus/result")
