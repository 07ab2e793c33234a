"""Hostile bodies on every gateway hook, over real HTTP (issue 12, "No 500"): a NUL byte (raw, or
JSON's \\u0000), ids longer than any column, amounts no payment can hold. Each is answered with the
ack the gateway expects, never a 5xx, is stored, and credits nothing."""

import json

import httpx
import pytest

from tables.billing import Payment
from tables.gateway import GatewayCallback
from tables.ledger import LedgerLeg
from tests.billing.helpers import assert_books_agree

DARAJA_ACK = {"ResultCode": 0, "ResultDesc": "Accepted"}
C2B_ACK = {"ResultCode": 0, "ResultDesc": "Success"}
C2B_REJECT_AMOUNT = {"ResultCode": "C2B00013", "ResultDesc": "Rejected"}
C2B_REJECT_OTHER = {"ResultCode": "C2B00016", "ResultDesc": "Rejected"}


def c2b(amount="3000", **fields) -> bytes:
    body = {"TransactionType": "Pay Bill", "TransID": "TKH0000001", "TransTime": "20261126101500",
            "TransAmount": amount, "BusinessShortCode": "174379", "BillRefNumber": "PTF-0001", "InvoiceNumber": None,
            "OrgAccountBalance": "", "ThirdPartyTransID": None, "MSISDN": "2547 ***** 149", "FirstName": "JOHN",
            "MiddleName": "", "LastName": ""}
    return json.dumps({**body, **fields}).encode()


def stk(amount=3000, checkout="ws_CO_HOSTILE1", receipt="HST0000001") -> bytes:
    return json.dumps({"Body": {"stkCallback": {
        "MerchantRequestID": "m-1", "CheckoutRequestID": checkout, "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.", "CallbackMetadata": {"Item": [
            {"Name": "Amount", "Value": amount}, {"Name": "MpesaReceiptNumber", "Value": receipt},
            {"Name": "TransactionDate", "Value": 20261126101500}, {"Name": "PhoneNumber", "Value": 254712000001}]}}}}
    ).encode()


def result(originator="AG_20261126_0000hostile", conversation="AG_20261126_conv") -> bytes:
    return json.dumps({"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "The service request is processed.",
                                  "OriginatorConversationID": originator, "ConversationID": conversation,
                                  "TransactionID": "HST0000002"}}).encode()


def raw_nul(body: bytes) -> bytes:
    """A NUL byte in the middle of the body (breaks the JSON, and PostgreSQL text with it)."""
    return body[:20] + b"\x00" + body[20:]


LONG = "A" * 200
# (hook, case) -> body, the answer the gateway expects, and the outcome of its row (right token).
DARAJA = {
    ("stk", "raw NUL"): (raw_nul(stk()), DARAJA_ACK, "malformed"),
    ("stk", "JSON NUL in the id"): (stk(checkout="ws_CO_\u0000x"), DARAJA_ACK, "malformed"),
    ("stk", "JSON NUL in the receipt"): (stk(receipt="HST\u00000001"), DARAJA_ACK, "malformed"),
    ("stk", "Amount 99999999999"): (stk(amount=99999999999), DARAJA_ACK, "malformed"),
    ("stk", "Amount 1e30"): (b'{"Body": {"stkCallback": {"MerchantRequestID": "m-1", "CheckoutRequestID": "ws_CO_H2", '
                             b'"ResultCode": 0, "ResultDesc": "ok", "CallbackMetadata": {"Item": [{"Name": "Amount", '
                             b'"Value": 1e30}, {"Name": "MpesaReceiptNumber", "Value": "HST0000003"}]}}}}', DARAJA_ACK, "malformed"),
    ("c2b/confirmation", "raw NUL"): (raw_nul(c2b()), C2B_ACK, "malformed"),
    ("c2b/confirmation", "JSON NUL"): (c2b(BillRefNumber="PTF\u00000001", FirstName="\u0000"), C2B_ACK, "malformed"),
    ("c2b/confirmation", "amount 99999999999"): (c2b("99999999999"), C2B_ACK, "malformed"),
    ("c2b/confirmation", "amount 1e30"): (c2b("1e30"), C2B_ACK, "malformed"),
    ("c2b/confirmation", "amount 1e30 as a number"): (c2b("0").replace(b'"TransAmount": "0"', b'"TransAmount": 1e30'),
                                                      C2B_ACK, "malformed"),
    ("c2b/validation", "raw NUL"): (raw_nul(c2b()), C2B_REJECT_OTHER, "malformed"),
    ("c2b/validation", "JSON NUL"): (c2b(TransID="TKH\u0000001"), C2B_REJECT_OTHER, "malformed"),
    ("c2b/validation", "amount 99999999999"): (c2b("99999999999"), C2B_REJECT_AMOUNT, "applied"),
    ("c2b/validation", "amount 1e30"): (c2b("1e30"), C2B_REJECT_AMOUNT, "applied"),
    ("result", "200-character OriginatorConversationID"): (result(LONG), DARAJA_ACK, "stored"),
    ("result", "200-character ConversationID"): (result(conversation=LONG), DARAJA_ACK, "stored"),
    ("result", "JSON NUL"): (result("AG_\u0000"), DARAJA_ACK, "malformed"),
    ("result", "raw NUL"): (raw_nul(result()), DARAJA_ACK, "malformed"),
    ("timeout", "200-character OriginatorConversationID"): (result(LONG), DARAJA_ACK, "stored"),
}


async def _nothing_credited() -> None:
    assert await Payment.count() == 0
    assert await LedgerLeg.count() == 0
    await assert_books_agree()


@pytest.mark.parametrize("wrong_token", [False, True], ids=["right token", "wrong token"])
@pytest.mark.parametrize("hook,case", list(DARAJA), ids=[f"{h}: {c}" for h, c in DARAJA])
async def test_daraja_hooks_ack_store_and_credit_nothing(live, hook, case, wrong_token):
    body, ack, outcome = DARAJA[(hook, case)]
    url = live.hook(hook)
    if wrong_token:
        url = url.replace(live.settings.daraja_callback_token, "guessed-token")
        ack = C2B_REJECT_OTHER if hook == "c2b/validation" else ack
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(url, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text[:300]
    assert r.json() == ack
    [row] = await GatewayCallback.select()
    assert row["gateway"] == "daraja" and row["kind"] == hook.replace("/", "_")
    assert "\x00" not in row["body"] and row["body"]
    if wrong_token:
        assert row["outcome"] == "rejected"
    else:
        assert row["outcome"] == outcome, row["note"]
    await _nothing_credited()


SMS = {
    "raw NUL": b"id=ATXid_hostile1&status=Success\x00&phoneNumber=%2B254711000333&networkCode=63902&retryCount=0",
    "encoded NUL in the status": b"id=ATXid_hostile2&status=Succ%00ess&phoneNumber=%2B254711000333",
    "encoded NUL in the id": b"id=ATXid_%00x&status=Success",
    "encoded NUL in the reason": b"id=ATXid_hostile3&status=Failed&failureReason=User%00InBlackList",
    "huge values": ("id=ATXid_hostile4&status=" + "S" * 5000 + "&failureReason=" + "R" * 20000 + "&networkCode="
                    + "9" * 5000 + "&retryCount=" + "9" * 5000 + "&phoneNumber=%2B" + "2" * 5000).encode(),
    "huge status": ("id=ATXid_hostile5&status=" + "Failed" * 2000).encode(),
}


@pytest.mark.parametrize("wrong_token", [False, True], ids=["right token", "wrong token"])
@pytest.mark.parametrize("case", list(SMS))
async def test_sms_delivery_reports_ack_and_store(live, case, wrong_token):
    token = "guessed-token" if wrong_token else live.settings.at_callback_token
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(f"{live.portal}/hooks/sms/delivery/{token}", content=SMS[case],
                            headers={"content-type": "application/x-www-form-urlencoded"})
    assert (r.status_code, r.text) == (200, "OK")
    [row] = await GatewayCallback.select()
    assert row["gateway"] == "africastalking" and "\x00" not in row["body"] and row["body"]
    assert row["outcome"] == "rejected" if wrong_token else row["outcome"] in ("malformed", "rejected", "stored")
    await _nothing_credited()


FLUTTERWAVE = {
    "raw NUL": b'{"event": "charge.completed", "data": {"id": 1\x00, "tx_ref": "PTF-1"}}',
    "JSON NUL": b'{"event": "charge.completed", "data": {"id": 11, "tx_ref": "PTF-\\u0000", "status": "successful"}}',
    "huge amount": b'{"event": "charge.completed", "data": {"id": 12, "tx_ref": "PTF-X", "status": "successful", '
                   b'"amount": 1e30, "currency": "KES"}}',
}


@pytest.mark.parametrize("wrong_hash", [False, True], ids=["right hash", "wrong hash"])
@pytest.mark.parametrize("case", list(FLUTTERWAVE))
async def test_flutterwave_webhooks_ack_and_store(live, case, wrong_hash):
    secret = "guessed" if wrong_hash else live.settings.flutterwave_secret_hash
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(f"{live.portal}/hooks/flutterwave", content=FLUTTERWAVE[case],
                            headers={"content-type": "application/json", "verif-hash": secret})
    assert (r.status_code, r.json()) == (200, {"status": "success"})
    [row] = await GatewayCallback.select()
    assert row["gateway"] == "flutterwave" and "\x00" not in row["body"] and row["body"]
    assert row["outcome"] == "rejected" if wrong_hash else row["outcome"] != "applied"
    await _nothing_credited()


@pytest.mark.parametrize("query", [
    "tx_ref=PTF-%00&status=successful", "tx_ref=PTF-1&status=succ%00essful&transaction_id=1%00",
    "tx_ref=%00&transaction_id=%00", "%00=%00", "tx_ref=" + "A" * 5000 + "%00",
])
@pytest.mark.parametrize("path", ["/pay/card/return", "/pay/some-token/card/return"])
async def test_card_return_with_nul_parameters_is_not_a_500(live, query, path):
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.get(f"{live.portal}{path}?{query}")
    assert r.status_code < 500, r.text[:300]
    await _nothing_credited()
