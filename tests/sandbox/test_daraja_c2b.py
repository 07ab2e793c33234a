"""C2B: register URLs (banned words), simulate with the validation round trip, payloads (§1.8)."""

import hashlib
import re
import time
from datetime import datetime

from tests.sandbox.daraja_helpers import (  # noqa: F401  (fixtures)
    NAIROBI,
    body_of,
    daraja,
    received_at,
    slow_sink,
    wait_at,
)
from tests.support.servers import free_port

C2B_FIELDS = ["TransactionType", "TransID", "TransTime", "TransAmount", "BusinessShortCode",
              "BillRefNumber", "InvoiceNumber", "OrgAccountBalance", "ThirdPartyTransID", "MSISDN",
              "FirstName", "MiddleName", "LastName"]


def test_register_response_shape_v1_and_v2(daraja):
    for version in ("v1", "v2"):
        r = daraja.register(version)
        assert r.status_code == 200, r.text
        body = r.json()
        assert list(body) == ["OriginatorCoversationID", "ResponseCode", "ResponseDescription"]
        assert (body["ResponseCode"], body["ResponseDescription"]) == ("0", "Success")
    regs = daraja.control("GET", "/c2b")["registrations"]
    assert [(r["short_code"], r["version"], r["response_type"]) for r in regs] == [
        ("600984", "v2", "Completed")]  # re-registering in the sandbox replaces


def test_banned_words_in_urls_are_rejected_in_any_case(daraja):
    words = ["mpesa", "M-Pesa", "SAFARICOM", "exe", "Exec", "cmd", "sql", "QUERY"]
    for word in words:
        for field, kwargs in (
            ("ConfirmationURL", {"confirmation": f"/hooks/{word}/confirm"}),
            ("ValidationURL", {"validation": f"/hooks/validate?x={word}"}),
        ):
            for version in ("v1", "v2"):
                r = daraja.register(version, **kwargs)
                assert r.status_code == 400, (word, field, version)
                assert r.json()["errorCode"] == "400.002.02"
                assert r.json()["errorMessage"] == f"Bad Request - Invalid {field}", (word, field)
    assert daraja.control("GET", "/c2b")["registrations"] == []
    # The same words are fine in an STK CallBackURL (the rule is C2B's).
    assert daraja.push("254700000001", CallBackURL=f"{daraja.sink.base}/mpesa/stk").status_code == 200


def test_register_field_rules(daraja):
    cases = [
        ({"ResponseType": "completed"}, "ResponseType"),
        ({"ResponseType": "Accepted"}, "ResponseType"),
        ({"ShortCode": "60"}, "ShortCode"),
        ({"ConfirmationURL": "not a url"}, "ConfirmationURL"),
        ({"ConfirmationURL": None}, "ConfirmationURL"),
    ]
    for override, field in cases:
        r = daraja.register(**override)
        assert (r.status_code, r.json()["errorMessage"]) == (400, f"Bad Request - Invalid {field}"), override


def test_register_once_like_production(daraja):
    daraja.settings(c2b_register_once=True)
    assert daraja.register().status_code == 200
    r = daraja.register()
    assert r.status_code == 500
    assert (r.json()["errorCode"], r.json()["errorMessage"]) == (
        "500.003.1001", "Urls are already registered")


def test_simulate_with_validation_accept_then_confirmation(daraja, callback_sink):
    daraja.register("v2")
    r = daraja.simulate("v2", amount=3000, msisdn=254708374149, bill_ref="PTF0001")
    assert r.status_code == 200
    assert r.json() | {"OriginatorCoversationID": ""} == {
        "OriginatorCoversationID": "", "ResponseCode": "0",
        "ResponseDescription": "Accept the service request successfully."}
    [validation] = wait_at(callback_sink, "/c2b/validate/s3cr3t", 1)
    [confirmation] = wait_at(callback_sink, "/c2b/confirm/s3cr3t", 1)
    v, c = body_of(validation), body_of(confirmation)
    assert list(v) == C2B_FIELDS and list(c) == C2B_FIELDS
    assert all(isinstance(x, str) for x in c.values())  # every value a string
    assert c["TransactionType"] == "Pay Bill"
    assert re.fullmatch(r"[A-Z0-9]{10}", c["TransID"]) and c["TransID"] == v["TransID"]
    assert re.fullmatch(r"[0-9]{14}", c["TransTime"])
    when = datetime.strptime(c["TransTime"], "%Y%m%d%H%M%S").replace(tzinfo=NAIROBI)
    assert abs((datetime.now(NAIROBI) - when).total_seconds()) < 60
    assert c["TransAmount"] == "3000.00"
    assert c["BusinessShortCode"] == "600984"
    assert c["BillRefNumber"] == "PTF0001"
    assert (c["InvoiceNumber"], c["ThirdPartyTransID"]) == ("", "")
    assert v["OrgAccountBalance"] == ""  # empty on validation
    assert c["OrgAccountBalance"] == "3000.00"  # the utility balance after the payment
    assert c["MSISDN"] == "2547 ***** 149"  # v2 masks
    assert c["FirstName"] and c["MiddleName"] == "" and c["LastName"] == ""
    payment = daraja.control("GET", "/c2b")["payments"][0]
    assert (payment["state"], payment["validation"]) == ("completed", "accepted")


def test_v1_sends_a_sha256_of_the_msisdn(daraja, callback_sink):
    daraja.register("v1", validation=None)
    daraja.simulate("v1", amount=10, msisdn="254712345678")
    [confirmation] = wait_at(callback_sink, "/c2b/confirm/", 1)
    c = body_of(confirmation)
    assert c["MSISDN"] == hashlib.sha256(b"254712345678").hexdigest()
    assert c["TransAmount"] == "10.00"
    assert received_at(callback_sink, "/c2b/validate/") == []  # no ValidationURL, no validation


def test_validation_reject_means_no_confirmation(daraja, callback_sink):
    callback_sink.reply = b'{"ResultCode": "C2B00012", "ResultDesc": "Rejected"}'
    daraja.register("v2")
    daraja.simulate("v2", bill_ref="NOSUCHACC")
    wait_at(callback_sink, "/c2b/validate/", 1)
    deadline = time.monotonic() + 5
    while (p := daraja.control("GET", "/c2b")["payments"][0])["state"] == "processing":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert (p["state"], p["validation"], p["validation_result_code"]) == (
        "rejected", "rejected", "C2B00012")
    time.sleep(0.2)
    assert received_at(callback_sink, "/c2b/confirm/") == []
    assert daraja.control("GET", "/ledger")["items"] == []  # no money moved


def test_third_party_trans_id_from_validation_is_echoed(daraja, callback_sink):
    callback_sink.reply = b'{"ResultCode": "0", "ResultDesc": "Accepted", "ThirdPartyTransID": "GYM-77"}'
    daraja.register("v2")
    daraja.simulate("v2")
    [confirmation] = wait_at(callback_sink, "/c2b/confirm/", 1)
    assert body_of(confirmation)["ThirdPartyTransID"] == "GYM-77"


def test_validation_timeout_applies_response_type(daraja, callback_sink, slow_sink):
    daraja.settings(c2b_validation_timeout=0.3)
    slow_sink.delay = 0.8
    slow = f"{slow_sink.base}/c2b/validate/slow"
    # Completed: the payment goes through and is confirmed.
    daraja.register("v2", shortcode="600984", validation=slow, response_type="Completed")
    daraja.simulate("v2", shortcode="600984", amount=100)
    [conf] = wait_at(callback_sink, "/c2b/confirm/", 1)
    assert body_of(conf)["TransAmount"] == "100.00"
    # Cancelled: the payment is dropped, no confirmation.
    daraja.register("v2", shortcode="600985", validation=slow, response_type="Cancelled")
    daraja.simulate("v2", shortcode="600985", amount=200)
    deadline = time.monotonic() + 5
    while True:
        states = {p["short_code"]: p for p in daraja.control("GET", "/c2b")["payments"]}
        if states.get("600985", {}).get("state") not in (None, "processing"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert (states["600984"]["state"], states["600984"]["validation"]) == ("completed", "timeout")
    assert (states["600985"]["state"], states["600985"]["validation"]) == ("cancelled", "timeout")
    assert len(received_at(callback_sink, "/c2b/confirm/")) == 1


def test_unreachable_validation_url_applies_response_type(daraja, callback_sink):
    dead = f"http://127.0.0.1:{free_port()}/c2b/validate"
    daraja.register("v2", validation=dead, response_type="Completed")
    daraja.simulate("v2", amount=42)
    [conf] = wait_at(callback_sink, "/c2b/confirm/", 1)
    assert body_of(conf)["TransAmount"] == "42.00"
    p = daraja.control("GET", "/c2b")["payments"][0]
    assert (p["state"], p["validation"]) == ("completed", "unreachable")


def test_simulate_without_registration_still_answers_but_nobody_is_told(daraja, callback_sink):
    r = daraja.simulate("v2", shortcode="600999")
    assert r.status_code == 200
    deadline = time.monotonic() + 5
    while daraja.control("GET", "/c2b")["payments"][0]["state"] == "processing":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert callback_sink.received == []


def test_simulate_field_rules(daraja):
    cases = [
        ({"CommandID": "PayBill"}, "CommandID"),
        ({"Amount": 0}, "Amount"),
        ({"Amount": "12.5"}, "Amount"),
        ({"Msisdn": "0708374149"}, "Msisdn"),
        ({"ShortCode": "12"}, "ShortCode"),
        ({"BillRefNumber": "X" * 21}, "BillRefNumber"),
    ]
    for override, field in cases:
        r = daraja.simulate("v2", **override)
        assert (r.status_code, r.json()["errorMessage"]) == (400, f"Bad Request - Invalid {field}"), override


def test_buy_goods_has_empty_bill_ref_and_null_mode(daraja, callback_sink):
    daraja.settings(c2b_empty_as_null=True)
    daraja.register("v2", shortcode="600966", validation=None)
    daraja.simulate("v2", shortcode="600966", CommandID="CustomerBuyGoodsOnline", bill_ref=None)
    [conf] = wait_at(callback_sink, "/c2b/confirm/", 1)
    c = body_of(conf)
    assert c["TransactionType"] == "Buy Goods"
    assert c["BillRefNumber"] == ""
    assert c["InvoiceNumber"] is None and c["ThirdPartyTransID"] is None


def test_paybill_page_goes_through_the_same_c2b_path(daraja, callback_sink):
    daraja.register("v2")
    page = daraja.http.get("/paybill")
    for testid in ("paybill-form", "paybill-phone", "paybill-amount", "paybill-account",
                   "paybill-shortcode", "paybill-submit"):
        assert f'data-testid="{testid}"' in page.text
    assert 'value="600984"' in page.text  # the registered shortcode is offered
    r = daraja.http.post("/paybill", data={"shortcode": "600984", "account": "PTF0009",
                                           "amount": "1500", "phone": "0712 345 678"})
    assert r.status_code == 303
    trans_id = r.headers["location"].split("sent=")[1]
    [v] = wait_at(callback_sink, "/c2b/validate/", 1)
    [c] = wait_at(callback_sink, "/c2b/confirm/", 1)
    assert body_of(v)["TransID"] == body_of(c)["TransID"] == trans_id
    assert (body_of(c)["BillRefNumber"], body_of(c)["TransAmount"], body_of(c)["MSISDN"]) == (
        "PTF0009", "1500.00", "2547 ***** 678")
    shown = daraja.http.get(f"/paybill?sent={trans_id}").text
    assert trans_id in shown and "completed" in shown
    # The paying phone's history shows it too.
    assert trans_id in daraja.http.get("/phone?msisdn=254712345678").text


def test_paybill_page_rejects_bad_input(daraja, callback_sink):
    r = daraja.http.post("/paybill", data={"shortcode": "600984", "account": "A",
                                           "amount": "0", "phone": "0712345678"})
    assert r.status_code == 400 and 'data-testid="paybill-error"' in r.text
    assert "Invalid Amount" in r.text
    r = daraja.http.post("/paybill", data={"shortcode": "600984", "account": "A",
                                           "amount": "10", "phone": "12345"})
    assert r.status_code == 400 and "Invalid Phone number" in r.text
    assert daraja.control("GET", "/c2b")["payments"] == []
