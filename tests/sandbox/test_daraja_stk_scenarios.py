"""STK outcome scenarios: callback bodies (§1.5), ResultCodes (§1.6), query (§1.7), timing."""

import re
import time
from datetime import datetime

import httpx

from tests.sandbox.daraja_helpers import (  # noqa: F401  (daraja fixture)
    CANCELLED,
    CONTRADICTS,
    EXPIRED,
    FIRST,
    INSUFFICIENT,
    INTERACTIVE,
    LATE,
    NAIROBI,
    NO_CALLBACK,
    SHORTCODE,
    SUCCESS,
    TEST_MSISDN,
    TIMEOUT,
    TWICE,
    WRONG_PIN,
    body_of,
    daraja,
    received_at,
    wait_at,
)
from tests.support.servers import free_port


def stk(received) -> dict:
    return body_of(received)["Body"]["stkCallback"]


def assert_failure_callback(cb: dict, push: dict, code: int, desc: str) -> None:
    assert list(cb) == ["MerchantRequestID", "CheckoutRequestID", "ResultCode", "ResultDesc"]
    assert cb["MerchantRequestID"] == push["MerchantRequestID"]
    assert cb["CheckoutRequestID"] == push["CheckoutRequestID"]
    assert type(cb["ResultCode"]) is int and cb["ResultCode"] == code
    assert cb["ResultDesc"] == desc


def assert_success_callback(cb: dict, push: dict, amount: int, phone: str) -> str:
    assert list(cb) == ["MerchantRequestID", "CheckoutRequestID", "ResultCode", "ResultDesc",
                        "CallbackMetadata"]
    assert cb["MerchantRequestID"] == push["MerchantRequestID"]
    assert cb["CheckoutRequestID"] == push["CheckoutRequestID"]
    assert type(cb["ResultCode"]) is int and cb["ResultCode"] == 0
    assert cb["ResultDesc"] == "The service request is processed successfully."
    items = cb["CallbackMetadata"]["Item"]
    assert [i["Name"] for i in items] == ["Amount", "MpesaReceiptNumber", "Balance",
                                         "TransactionDate", "PhoneNumber"]
    by = {i["Name"]: i for i in items}
    assert by["Amount"]["Value"] == amount
    assert "Value" not in by["Balance"]  # valueless, as in real traffic
    receipt = by["MpesaReceiptNumber"]["Value"]
    assert re.fullmatch(r"[A-Z0-9]{10}", receipt)
    now = datetime.now(NAIROBI)
    assert receipt[0] == chr(ord("N") + now.year - 2019)  # 2019=N ... 2025=T
    assert receipt[1] == chr(ord("A") + now.month - 1)
    tdate = by["TransactionDate"]["Value"]
    assert type(tdate) is int and len(str(tdate)) == 14
    when = datetime.strptime(str(tdate), "%Y%m%d%H%M%S").replace(tzinfo=NAIROBI)
    assert abs((now - when).total_seconds()) < 60  # Nairobi time, not UTC
    assert type(by["PhoneNumber"]["Value"]) is int and by["PhoneNumber"]["Value"] == int(phone)
    return receipt


def test_success_callback_is_exactly_the_documented_shape(daraja, callback_sink):
    push = daraja.push_ok(SUCCESS, amount=3000)
    [got] = wait_at(callback_sink, "/stk/cb-s3cr3t", 1)
    assert got.method == "POST"
    assert got.headers["content-type"] == "application/json"
    assert "authorization" not in got.headers  # Daraja callbacks carry no auth or signature
    assert list(body_of(got)) == ["Body"] and list(body_of(got)["Body"]) == ["stkCallback"]
    assert_success_callback(stk(got), push, 3000, SUCCESS)
    assert b'{"Name":"Amount","Value":3000.00}' in got.body  # a number with decimals, as 1.00


def test_documented_test_msisdn_succeeds(daraja, callback_sink):
    push = daraja.push_ok(TEST_MSISDN, amount=1)
    [got] = wait_at(callback_sink, "/stk/", 1)
    assert_success_callback(stk(got), push, 1, TEST_MSISDN)


def test_failure_scenarios_have_their_codes_and_no_metadata(daraja, callback_sink):
    expected = {
        CANCELLED: (1032, "Request cancelled by user"),
        TIMEOUT: (1037, "DS timeout user cannot be reached"),
        WRONG_PIN: (2001, "The initiator information is invalid."),
        INSUFFICIENT: (1, "The balance is insufficient for the transaction."),
        EXPIRED: (1019, "Transaction has expired"),
    }
    pushes = {phone: daraja.push_ok(phone, amount=500) for phone in expected}
    got = {stk(r)["CheckoutRequestID"]: stk(r)
           for r in wait_at(callback_sink, "/stk/", len(expected))}
    for phone, (code, desc) in expected.items():
        push = pushes[phone]
        assert_failure_callback(got[push["CheckoutRequestID"]], push, code, desc)
        # STK Query reports the same outcome, with ResultCode as a string.
        q = daraja.query(push["CheckoutRequestID"])
        assert q.status_code == 200
        assert q.json()["ResultCode"] == str(code)
        assert q.json()["ResultDesc"] == desc


def test_stk_query_of_a_resolved_push(daraja, callback_sink):
    push = daraja.push_ok(SUCCESS)
    wait_at(callback_sink, "/stk/", 1)
    r = daraja.query(push["CheckoutRequestID"])
    assert r.status_code == 200
    assert r.json() == {
        "ResponseCode": "0",
        "ResponseDescription": "The service request has been accepted successfully",
        "MerchantRequestID": push["MerchantRequestID"],
        "CheckoutRequestID": push["CheckoutRequestID"],
        "ResultCode": "0",
        "ResultDesc": "The service request is processed successfully.",
    }
    # No receipt, amount or phone in a query answer.
    daraja.settings(query_description_typo=True)
    r = daraja.query(push["CheckoutRequestID"])
    assert r.json()["ResponseDescription"] == "The service request has been accepted successsfully"


def test_stk_query_rules(daraja):
    push = daraja.push_ok(SUCCESS)
    r = daraja.query("ws_CO_01012024000000000700000001")
    assert (r.status_code, r.json()["errorMessage"]) == (400, "Bad Request - Invalid CheckoutRequestID")
    r = daraja.query(push["CheckoutRequestID"], Timestamp="2024")
    assert r.json()["errorMessage"] == "Bad Request - Invalid Timestamp"
    r = daraja.query(push["CheckoutRequestID"], Password="d3Jvbmc=")
    assert (r.status_code, r.json()["errorMessage"]) == (500, "Wrong credentials")


def test_query_pending_then_accept_via_control_api(daraja, callback_sink):
    push = daraja.push_ok(INTERACTIVE, amount=3000)
    checkout = push["CheckoutRequestID"]
    r = daraja.query(checkout)
    assert r.status_code == 500
    assert r.json() == {"requestId": checkout, "errorCode": "500.001.1001",
                        "errorMessage": "The transaction is being processed"}
    assert daraja.stk_state(checkout)["state"] == "pending"
    time.sleep(0.1)
    assert received_at(callback_sink, "/stk/") == []  # nothing until the person answers

    answered = daraja.control("POST", f"/stk/{checkout}/accept", {"pin": "4321"})
    assert answered["state"] == "resolved" and answered["result_code"] == 0
    [got] = wait_at(callback_sink, "/stk/", 1)
    assert_success_callback(stk(got), push, 3000, INTERACTIVE)
    assert daraja.query(checkout).json()["ResultCode"] == "0"


def test_interactive_decline_and_wrong_pin_via_control_api(daraja, callback_sink):
    declined = daraja.push_ok(INTERACTIVE)
    wrong = daraja.push_ok("254799000001")  # any ordinary number is interactive by default
    daraja.control("POST", f"/stk/{declined['CheckoutRequestID']}/decline")
    daraja.control("POST", f"/stk/{wrong['CheckoutRequestID']}/accept", {"pin": "0000"})
    got = {stk(r)["CheckoutRequestID"]: stk(r) for r in wait_at(callback_sink, "/stk/", 2)}
    assert_failure_callback(got[declined["CheckoutRequestID"]], declined, 1032,
                            "Request cancelled by user")
    assert_failure_callback(got[wrong["CheckoutRequestID"]], wrong, 2001,
                            "The initiator information is invalid.")
    # A settled prompt cannot be answered again.
    r = daraja.http.post(f"/_sandbox/daraja/stk/{declined['CheckoutRequestID']}/accept", json={})
    assert r.status_code == 409


def test_unanswered_prompt_times_out_with_1037(daraja, callback_sink):
    daraja.settings(prompt_timeout=0.5)
    started = time.monotonic()
    push = daraja.push_ok(INTERACTIVE)
    assert daraja.query(push["CheckoutRequestID"]).status_code == 500  # still processing
    [got] = wait_at(callback_sink, "/stk/", 1)
    assert time.monotonic() - started >= 0.45
    assert_failure_callback(stk(got), push, 1037, "DS timeout user cannot be reached")
    assert daraja.query(push["CheckoutRequestID"]).json()["ResultCode"] == "1037"


def test_accept_on_the_phone_page(daraja, callback_sink):
    push = daraja.push_ok(INTERACTIVE, amount=3000)
    checkout = push["CheckoutRequestID"]
    page = daraja.http.get("/phone", params={"msisdn": "0700 000 010"})  # local format
    assert page.status_code == 200
    html = page.text
    assert "Pay KES 3,000 to 174379 account PTF0001? Enter PIN" in html
    assert 'data-testid="accept-button"' in html and 'data-testid="decline-button"' in html
    assert 'data-testid="pin-input"' in html and 'data-testid="phone-input"' in html
    assert f'action="/phone/prompts/{checkout}/accept"' in html
    assert "<script src" not in html and "http-equiv=\"refresh\"" in html  # no external JS

    r = daraja.http.post(f"/phone/prompts/{checkout}/accept", data={"pin": "1234"})
    assert r.status_code == 303
    assert r.headers["location"] == f"/phone?msisdn={INTERACTIVE}"
    [got] = wait_at(callback_sink, "/stk/", 1)
    receipt = assert_success_callback(stk(got), push, 3000, INTERACTIVE)
    after = daraja.http.get("/phone", params={"msisdn": INTERACTIVE}).text
    assert 'data-testid="no-prompts"' in after and receipt in after
    assert daraja.stk_state(checkout)["resolved_by"] == "phone"


def test_decline_and_wrong_pin_on_the_phone_page(daraja, callback_sink):
    a = daraja.push_ok("254711000001")
    b = daraja.push_ok("254711000002")
    r = daraja.http.post(f"/phone/prompts/{a['CheckoutRequestID']}/decline")
    assert r.status_code == 303
    r = daraja.http.post(f"/phone/prompts/{b['CheckoutRequestID']}/accept", data={"pin": "0000"})
    assert r.status_code == 303
    got = {stk(x)["CheckoutRequestID"]: stk(x) for x in wait_at(callback_sink, "/stk/", 2)}
    assert got[a["CheckoutRequestID"]]["ResultCode"] == 1032
    assert got[b["CheckoutRequestID"]]["ResultCode"] == 2001
    # Accept without a PIN is refused by the page and leaves the prompt open.
    c = daraja.push_ok("254711000003")
    r = daraja.http.post(f"/phone/prompts/{c['CheckoutRequestID']}/accept", data={"pin": ""})
    assert r.status_code == 303 and "error=" in r.headers["location"]
    assert daraja.stk_state(c["CheckoutRequestID"])["state"] == "pending"


def test_callback_before_the_push_response(daraja, callback_sink):
    push = daraja.push_ok(FIRST, amount=50)
    # The callback was POSTed and answered before processrequest answered us: no waiting here.
    got = received_at(callback_sink, "/stk/")
    assert len(got) == 1
    assert_success_callback(stk(got[0]), push, 50, FIRST)
    [attempt] = daraja.deliveries(ref=push["CheckoutRequestID"])
    assert attempt["ok"] and attempt["status_code"] == 200


def test_callback_delivered_twice(daraja, callback_sink):
    daraja.settings(duplicate_callback_gap=0.05)
    push = daraja.push_ok(TWICE)
    first, second = wait_at(callback_sink, "/stk/", 2)
    assert first.body == second.body
    assert_success_callback(stk(first), push, 1, TWICE)
    assert len(daraja.deliveries(ref=push["CheckoutRequestID"])) == 2


def test_no_callback_only_query_knows(daraja, callback_sink):
    push = daraja.push_ok(NO_CALLBACK)
    r = daraja.query(push["CheckoutRequestID"])
    assert r.status_code == 200 and r.json()["ResultCode"] == "0"
    time.sleep(0.3)
    assert received_at(callback_sink, "/stk/") == []
    assert daraja.deliveries(ref=push["CheckoutRequestID"]) == []
    assert daraja.stk_state(push["CheckoutRequestID"])["receipt"]


def test_late_callback_arrives_after_query_is_final(daraja, callback_sink):
    daraja.settings(late_callback_delay=0.6)
    started = time.monotonic()
    push = daraja.push_ok(LATE)
    assert daraja.query(push["CheckoutRequestID"]).json()["ResultCode"] == "0"
    assert received_at(callback_sink, "/stk/") == []
    [got] = wait_at(callback_sink, "/stk/", 1)
    assert time.monotonic() - started >= 0.55
    assert_success_callback(stk(got), push, 1, LATE)


def test_callback_delay_is_honoured(daraja, callback_sink):
    daraja.settings(callback_delay=0.4)
    started = time.monotonic()
    daraja.push_ok(SUCCESS)
    wait_at(callback_sink, "/stk/", 1)
    assert time.monotonic() - started >= 0.35


def test_query_can_contradict_the_callback(daraja, callback_sink):
    push = daraja.push_ok(CONTRADICTS)
    [got] = wait_at(callback_sink, "/stk/", 1)
    assert stk(got)["ResultCode"] == 0
    q = daraja.query(push["CheckoutRequestID"]).json()
    assert (q["ResultCode"], q["ResultDesc"]) == ("1032", "Request cancelled by user")


def test_magic_amounts_and_wallet_balance(daraja, callback_sink):
    cases = {1032: 1032, 1037: 1037, 2001: 2001, 1019: 1019}
    pushes = {}
    for i, (amount, code) in enumerate(cases.items()):
        pushes[daraja.push_ok(f"25479900010{i}", amount=amount)["CheckoutRequestID"]] = code
    rich = daraja.push_ok(SUCCESS, amount=150001)  # above the simulated customers' balance
    pushes[rich["CheckoutRequestID"]] = 1
    got = {stk(r)["CheckoutRequestID"]: stk(r) for r in wait_at(callback_sink, "/stk/", 5)}
    assert {k: v["ResultCode"] for k, v in got.items()} == pushes
    assert "CallbackMetadata" not in got[rich["CheckoutRequestID"]]


def test_scenario_binding_via_control_api(daraja, callback_sink):
    listing = daraja.control("GET", "/scenarios")
    assert listing["magic_phones"][CANCELLED] == "cancelled"
    daraja.control("POST", "/scenarios", {"phone": "254799123456", "scenario": "wrong_pin"})
    daraja.push_ok("254799123456")
    [got] = wait_at(callback_sink, "/stk/", 1)
    assert stk(got)["ResultCode"] == 2001
    daraja.control("POST", "/scenarios", {"phone": "254799123456", "scenario": None})
    push = daraja.push_ok("254799123456")
    assert daraja.stk_state(push["CheckoutRequestID"])["scenario"] == "interactive"
    r = daraja.http.post("/_sandbox/daraja/scenarios", json={"phone": "1", "scenario": "nope"})
    assert r.status_code == 400


def test_resend_callback_n_times(daraja, callback_sink):
    push = daraja.push_ok(SUCCESS)
    [original] = wait_at(callback_sink, "/stk/", 1)
    out = daraja.control("POST", f"/stk/{push['CheckoutRequestID']}/resend", {"times": 3})
    assert [a["ok"] for a in out["attempts"]] == [True, True, True]
    got = wait_at(callback_sink, "/stk/", 4)
    assert all(r.body == original.body for r in got)
    assert daraja.stk_state(push["CheckoutRequestID"])["callbacks_sent"] == 4
    # Nothing to resend while the prompt is open.
    pending = daraja.push_ok(INTERACTIVE)
    r = daraja.http.post(f"/_sandbox/daraja/stk/{pending['CheckoutRequestID']}/resend",
                         json={"times": 1})
    assert r.status_code == 409


def test_failing_callback_urls_are_recorded_and_do_not_crash(daraja, callback_sink):
    dead = f"http://127.0.0.1:{free_port()}/stk/cb"
    push = daraja.push_ok(SUCCESS, CallBackURL=dead)
    deadline = time.monotonic() + 5
    while not (attempts := daraja.deliveries(ref=push["CheckoutRequestID"])) or \
            attempts[0]["finished_at"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert attempts[0]["ok"] is False and attempts[0]["status_code"] is None
    assert attempts[0]["error"] and attempts[0]["url"] == dead
    # A listener answering 500 is recorded too.
    callback_sink.status = 500
    push2 = daraja.push_ok("254700000001")
    wait_at(callback_sink, "/stk/", 1)
    deadline = time.monotonic() + 5
    while not (a2 := daraja.deliveries(ref=push2["CheckoutRequestID"])) or a2[0]["finished_at"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert (a2[0]["status_code"], a2[0]["ok"]) == (500, False)
    # The sandbox carries on.
    assert daraja.push("254700000005").status_code == 200
    assert httpx.get(f"{daraja.base}/healthz").status_code == 200


def test_paybill_push_naming_another_party_b_fails_with_2028(daraja, callback_sink):
    push = daraja.push_ok(SUCCESS, PartyB=600984)
    [got] = wait_at(callback_sink, "/stk/", 1)
    assert_failure_callback(stk(got), push, 2028,
                            "The request is not permitted according to product assignment")


def test_stk_payment_is_also_confirmed_over_c2b_when_urls_are_registered(daraja, callback_sink):
    assert daraja.register(shortcode=SHORTCODE, validation=None).status_code == 200
    push = daraja.push_ok(SUCCESS, amount=2500, AccountReference="PTF0042")
    [cb] = wait_at(callback_sink, "/stk/", 1)
    [conf] = wait_at(callback_sink, "/c2b/confirm/", 1)
    receipt = assert_success_callback(stk(cb), push, 2500, SUCCESS)
    c2b = body_of(conf)
    assert c2b["TransID"] == receipt  # the same money, twice: de-duplicate on the receipt
    assert (c2b["TransAmount"], c2b["BillRefNumber"], c2b["BusinessShortCode"]) == (
        "2500.00", "PTF0042", SHORTCODE)
    assert received_at(callback_sink, "/c2b/validate/") == []  # no validation for STK money


def test_control_listing_and_reset(daraja, callback_sink):
    daraja.push_ok(SUCCESS)
    pending = daraja.push_ok(INTERACTIVE)
    listed = daraja.control("GET", "/stk?state=pending")["items"]
    assert [r["checkout_request_id"] for r in listed] == [pending["CheckoutRequestID"]]
    assert daraja.control("GET", f"/stk?phone={SUCCESS}")["items"][0]["phone"] == SUCCESS
    token = daraja.token
    daraja.control("POST", "/reset")
    assert daraja.control("GET", "/stk")["items"] == []
    r = daraja.post("/mpesa/stkpush/v1/processrequest", daraja.stk_body(), token=token)
    assert r.json()["errorCode"] == "404.001.03"  # tokens are forgotten too
