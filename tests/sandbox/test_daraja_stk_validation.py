"""STK push request validation: the 400.002.02 family, credentials, subscriber lock (§1.2, §1.4).

Each sandbox costs ~0.5 s to start and stop, so the field tables run inside one test each and
name the failing case in the assertion message.
"""

import re

import pytest

from tests.sandbox.daraja_helpers import (  # noqa: F401  (daraja fixture)
    CFG,
    INTERACTIVE,
    PASSKEY,
    SHORTCODE,
    SUCCESS,
    daraja,
    password,
    timestamp,
)

OFFICIAL_SHORTCODE = "174379"
OFFICIAL_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
OFFICIAL_TIMESTAMP = "20210628092408"
OFFICIAL_PASSWORD = (
    "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGExZWQy"
    "YzkxOTIwMjEwNjI4MDkyNDA4"
)
SECOND_TIMESTAMP = "20160216165627"
SECOND_PASSWORD = (
    "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGExZWQy"
    "YzkxOTIwMTYwMjE2MTY1NjI3"
)

needs_official_credentials = pytest.mark.skipif(
    (SHORTCODE, PASSKEY) != (OFFICIAL_SHORTCODE, OFFICIAL_PASSKEY),
    reason="DARAJA_SHORTCODE/DARAJA_PASSKEY overridden in the environment",
)


def assert_invalid(r, field, case=""):
    assert r.status_code == 400, f"{case}: {r.status_code} {r.text}"
    body = r.json()
    assert set(body) == {"requestId", "errorCode", "errorMessage"}, case
    assert body["errorCode"] == "400.002.02", case
    assert body["errorMessage"] == f"Bad Request - Invalid {field}", f"{case}: {body}"


@needs_official_credentials
def test_official_password_test_vector_is_accepted(daraja):
    body = daraja.stk_body(SUCCESS, Timestamp=OFFICIAL_TIMESTAMP, Password=OFFICIAL_PASSWORD)
    r = daraja.post("/mpesa/stkpush/v1/processrequest", body)
    assert r.status_code == 200, r.text
    assert r.json()["ResponseCode"] == "0"


@needs_official_credentials
def test_second_published_vector_is_accepted_by_stk_query(daraja):
    checkout = daraja.push_ok(SUCCESS)["CheckoutRequestID"]
    r = daraja.query(checkout, Timestamp=SECOND_TIMESTAMP, Password=SECOND_PASSWORD)
    assert r.status_code == 200, r.text


def test_success_response_shape(daraja):
    r = daraja.push(SUCCESS)
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["MerchantRequestID", "CheckoutRequestID", "ResponseCode",
                          "ResponseDescription", "CustomerMessage"]
    assert body["ResponseCode"] == "0"
    assert body["ResponseDescription"] == "Success. Request accepted for processing"
    assert body["CustomerMessage"] == "Success. Request accepted for processing"
    assert re.fullmatch(r"[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}[0-9]{6}",
                        body["MerchantRequestID"])
    # ws_CO_ + DDMMYYYYHHmmss + millis + the 9-digit subscriber number
    assert re.fullmatch(r"ws_CO_[0-9]{17}" + SUCCESS[3:], body["CheckoutRequestID"])


def test_string_and_number_forms_are_both_accepted(daraja):
    body = daraja.stk_body(SUCCESS, BusinessShortCode=SHORTCODE, Amount="5", PartyA=SUCCESS,
                           PartyB=SHORTCODE, PhoneNumber=SUCCESS)
    assert daraja.post("/mpesa/stkpush/v1/processrequest", body).status_code == 200


def test_2541_numbers_are_safaricom_numbers(daraja):
    r = daraja.push("254110000001")
    assert r.status_code == 200, r.text


def test_transaction_desc_is_optional_and_buy_goods_needs_no_account_reference(daraja):
    body = daraja.stk_body("254722000001")
    del body["TransactionDesc"]
    assert daraja.post("/mpesa/stkpush/v1/processrequest", body).status_code == 200
    body = daraja.stk_body("254722000002", TransactionType="CustomerBuyGoodsOnline",
                           PartyB=5123456)
    del body["AccountReference"]
    assert daraja.post("/mpesa/stkpush/v1/processrequest", body).status_code == 200


FIELD_CASES = [
    # (field, bad value or MISSING)
    ("BusinessShortCode", "MISSING"),
    ("BusinessShortCode", "1743"),
    ("BusinessShortCode", "17437900"),
    ("BusinessShortCode", "17437A"),
    ("BusinessShortCode", True),
    ("Password", "MISSING"),
    ("Password", ""),
    ("Password", 12345),
    ("Timestamp", "MISSING"),
    ("Timestamp", "2021-06-28 09:24:08"),
    ("Timestamp", "2021062809240"),
    ("Timestamp", "20211328092408"),  # month 13
    ("TransactionType", "MISSING"),
    ("TransactionType", "CustomerPaybillOnline"),  # wrong case
    ("TransactionType", "BusinessPayment"),
    ("Amount", "MISSING"),
    ("Amount", 0),
    ("Amount", -5),
    ("Amount", 10.5),
    ("Amount", "10.50"),
    ("Amount", "ten"),
    ("Amount", int(CFG.daraja_max_amount) + 1),
    ("Amount", None),
    ("PartyA", "MISSING"),
    ("PartyA", "0708374149"),
    ("PartyA", "+254708374149"),
    ("PartyA", 254208374149),
    ("PartyA", "25470837414"),
    ("PartyB", "MISSING"),
    ("PartyB", "12"),
    ("PhoneNumber", "MISSING"),
    ("PhoneNumber", "0708374149"),
    ("PhoneNumber", "2547083741490"),
    ("PhoneNumber", 254308374149),
    ("CallBackURL", "MISSING"),
    ("CallBackURL", "example.test/cb"),
    ("CallBackURL", "ftp://example.test/cb"),
    ("CallBackURL", " https://example.test/cb"),
    ("CallBackURL", "https://example.test/cb "),
    ("CallBackURL", "https://example.test/c b"),
    ("CallBackURL", "https://"),
    ("AccountReference", "MISSING"),
    ("AccountReference", ""),
    ("AccountReference", "ABCDEFGHIJKLM"),  # 13 > 12
    ("TransactionDesc", "Fourteen chars"),  # 14 > 13
    ("TransactionDesc", ["x"]),
]


def test_every_field_rule_gives_bad_request_invalid_field(daraja):
    for i, (field, value) in enumerate(FIELD_CASES):
        # A distinct phone per case so no subscriber lock can interfere.
        body = daraja.stk_body(f"2547220{i:05d}")
        if value == "MISSING":
            del body[field]
        else:
            body[field] = value
        r = daraja.post("/mpesa/stkpush/v1/processrequest", body)
        assert_invalid(r, field, f"{field}={value!r}")


def test_boundaries_that_are_valid(daraja):
    ok_cases = [
        ("Amount", 1), ("Amount", int(CFG.daraja_max_amount)), ("Amount", "100"),
        ("Amount", 100.0), ("AccountReference", "ABCDEFGHIJKL"), ("TransactionDesc", "Thirteen char"),
        ("BusinessShortCode", int(SHORTCODE)),
    ]
    for i, (field, value) in enumerate(ok_cases):
        body = daraja.stk_body(f"2547230{i:05d}")
        body[field] = value
        r = daraja.post("/mpesa/stkpush/v1/processrequest", body)
        assert r.status_code == 200, f"{field}={value!r}: {r.text}"


def test_fractional_amount_truncated_when_configured(daraja):
    daraja.settings(fractional_amounts="truncate", default_scenario="success")
    checkout = daraja.push_ok("254722111111", amount=10.75)["CheckoutRequestID"]
    assert daraja.stk_state(checkout)["amount"] == 10


def test_missing_content_type_is_invalid_business_short_code(daraja):
    """FAQ 9: no Content-Type: application/json -> Invalid BusinessShortCode."""
    import json

    r = daraja.http.post("/mpesa/stkpush/v1/processrequest",
                         content=json.dumps(daraja.stk_body()),
                         headers={"Authorization": f"Bearer {daraja.token}",
                                  "Content-Type": "text/plain"})
    assert_invalid(r, "BusinessShortCode")


def test_malformed_body_is_invalid_request_payload(daraja):
    for content in (b"{not json", b"[1, 2]", b'"text"'):
        r = daraja.http.post("/mpesa/stkpush/v1/processrequest", content=content,
                             headers={"Authorization": f"Bearer {daraja.token}",
                                      "Content-Type": "application/json"})
        assert r.status_code == 400
        assert r.json()["errorCode"] == "400.002.05", content
        assert r.json()["errorMessage"] == "Invalid Request Payload"


def test_wrong_password_is_wrong_credentials(daraja):
    ts = timestamp()
    for bad in (password(ts, passkey="x" * 64), password("20200101000000"),
                password(ts, shortcode="600984")):
        r = daraja.push(SUCCESS, Timestamp=ts, Password=bad)
        assert r.status_code == 500
        assert r.json()["errorCode"] == "500.001.1001"
        assert r.json()["errorMessage"] == "Wrong credentials"


def test_unknown_shortcode_is_merchant_does_not_exist(daraja):
    ts = timestamp()
    r = daraja.push(SUCCESS, BusinessShortCode=600984, Password=password(ts, "600984"),
                    Timestamp=ts)
    assert r.status_code == 500
    assert r.json() | {"requestId": "x"} == {
        "requestId": "x", "errorCode": "500.001.1001", "errorMessage": "Merchant does not exist"}


def test_timestamp_window_when_enforced(daraja):
    daraja.settings(timestamp_window=600)
    assert daraja.push(SUCCESS).status_code == 200
    # A client that formats UTC instead of Nairobi time is three hours behind.
    from datetime import datetime, timezone

    utc = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    r = daraja.push("254722333333", Timestamp=utc, Password=password(utc))
    assert_invalid(r, "Timestamp")


def test_rapid_repeat_push_to_same_phone_is_unable_to_lock_subscriber(daraja):
    first = daraja.push_ok(INTERACTIVE)
    r = daraja.push(INTERACTIVE, amount=2)
    assert r.status_code == 500
    body = r.json()
    assert body["errorCode"] == "500.001.1001"
    assert body["errorMessage"] == ("Unable to lock subscriber, a transaction is already in "
                                    "process for the current subscriber")
    # Another subscriber is unaffected; once the prompt is answered the phone is free again.
    assert daraja.push("254700000099").status_code == 200
    daraja.control("POST", f"/stk/{first['CheckoutRequestID']}/decline")
    assert daraja.push(INTERACTIVE, amount=3).status_code == 200


def test_spike_arrest_when_configured(daraja):
    daraja.settings(spike_arrest_tps=2)
    answers = [daraja.query("ws_CO_unknown") for _ in range(4)]
    assert [r.json()["errorCode"] for r in answers] == [
        "400.002.02", "400.002.02", "500.003.02", "500.003.02"]
    assert answers[0].json()["errorMessage"] == "Bad Request - Invalid CheckoutRequestID"
    assert answers[2].status_code == 500
    assert answers[2].json()["errorMessage"] == "Spike Arrest Violation"


def test_back_to_back_pushes_to_a_settled_phone_get_distinct_ids(daraja):
    pushes = [daraja.push_ok(SUCCESS) for _ in range(5)]  # each settles at once
    assert len({p["CheckoutRequestID"] for p in pushes}) == 5
    assert len({p["MerchantRequestID"] for p in pushes}) == 5
