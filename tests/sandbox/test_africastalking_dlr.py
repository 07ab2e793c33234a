"""Delivery reports, the SMS inbox page and the control API (gateways.md §3.2)."""

import time

import httpx

from tests.support.africastalking_helpers import form, messages, recipients, send
from tests.support.servers import free_port


def deliveries(sandbox, message_id=None):
    params = {"message_id": message_id} if message_id else None
    return httpx.get(f"{sandbox}/_sandbox/at/deliveries", params=params).json()["deliveries"]


def test_a_delivered_sms_gets_a_form_encoded_success_report(sandbox, callback_sink):
    (recipient,) = recipients(send(sandbox, "+254711222333"))

    (report,) = callback_sink.wait_for(1)

    assert (report.method, report.path) == ("POST", "/hooks/sms/delivery")
    assert report.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(report) == [
        ("id", recipient["messageId"]),
        ("status", "Success"),
        ("phoneNumber", "+254711222333"),
        ("networkCode", "63902"),
        ("retryCount", "0"),
    ]


def test_the_network_code_follows_the_prefix(sandbox, callback_sink):
    numbers = {
        "+254711222333": "63902",
        "+254733222333": "63903",
        "+254771222333": "63907",
        "+254763222333": "63999",
        "+256772123456": "99999",
    }
    send(sandbox, ",".join(numbers))

    reports = [dict(form(r)) for r in callback_sink.wait_for(len(numbers))]

    assert {r["phoneNumber"]: r["networkCode"] for r in reports} == numbers


def test_magic_numbers_fail_later_with_a_reason(sandbox, callback_sink):
    expected = {
        "+254700000901": ("Failed", "InsufficientCredit", "0"),
        "+254700000904": ("Failed", "UserInBlackList", "0"),
        "+254700000908": ("Failed", "UserDoesNotExist", "0"),
        "+254700000909": ("Failed", "DeliveryFailure", "2"),
        "+254700000910": ("Rejected", "UserInBlackList", "0"),
    }
    sent = {r["number"]: r for r in recipients(send(sandbox, ",".join(expected)))}

    reports = callback_sink.wait_for(len(expected))

    assert all(r["statusCode"] == 101 for r in sent.values())
    for report in reports:
        fields = form(report)
        assert [k for k, _ in fields] == [
            "id",
            "status",
            "phoneNumber",
            "networkCode",
            "failureReason",
            "retryCount",
        ]
        f = dict(fields)
        assert f["id"] == sent[f["phoneNumber"]]["messageId"]
        assert (f["status"], f["failureReason"], f["retryCount"]) == expected[f["phoneNumber"]]


def test_a_buffered_report_comes_before_the_final_one(sandbox, callback_sink):
    (recipient,) = recipients(send(sandbox, "+254700000990"))

    first, second = callback_sink.wait_for(2)

    assert dict(form(first)) == {
        "id": recipient["messageId"],
        "status": "Buffered",
        "phoneNumber": "+254700000990",
        "networkCode": "63902",
        "retryCount": "0",
    }
    assert (dict(form(second))["status"], dict(form(second))["retryCount"]) == ("Success", "1")


def test_refused_recipients_and_the_silent_number_get_no_report(sandbox, callback_sink):
    send(sandbox, "+254700000999,0711222333,+254700000405")
    (normal,) = recipients(send(sandbox, "+254722000111"))

    (report,) = callback_sink.wait_for(1)

    assert dict(form(report))["id"] == normal["messageId"]
    assert [d["message_id"] for d in deliveries(sandbox)] == [normal["messageId"]]
    silent = messages(sandbox, "+254700000999")[0]
    assert (silent["statusCode"], silent["dlr_status"], silent["deliveries"]) == (101, None, [])


def test_the_control_api_resends_a_report(sandbox, callback_sink):
    (recipient,) = recipients(send(sandbox, "+254700000909"))
    callback_sink.wait_for(1)
    mid = recipient["messageId"]

    same = httpx.post(f"{sandbox}/_sandbox/at/messages/{mid}/dlr")
    other = httpx.post(
        f"{sandbox}/_sandbox/at/messages/{mid}/dlr", json={"status": "Success", "retryCount": 3}
    )
    missing = httpx.post(f"{sandbox}/_sandbox/at/messages/ATXid_nope/dlr")

    first, again, override = callback_sink.wait_for(3)
    assert again.body == first.body
    assert same.json()["delivery"]["status_code"] == other.json()["delivery"]["status_code"] == 200
    assert dict(form(override)) == {
        "id": mid,
        "status": "Success",
        "phoneNumber": "+254700000909",
        "networkCode": "63902",
        "retryCount": "3",
    }
    assert missing.status_code == 404
    assert len(deliveries(sandbox, mid)) == 3


def test_an_unreachable_report_url_is_recorded_not_fatal(sandbox):
    httpx.post(
        f"{sandbox}/_sandbox/at/settings",
        json={"delivery_report_url": f"http://127.0.0.1:{free_port()}/hooks/sms/delivery"},
    )

    (recipient,) = recipients(send(sandbox, "+254711222333"))

    deadline = time.monotonic() + 5
    while not (found := deliveries(sandbox, recipient["messageId"])) or not found[0]["error"]:
        assert time.monotonic() < deadline, "no failed delivery attempt recorded"
        time.sleep(0.05)
    assert found[0]["error"].startswith("ConnectError")
    assert found[0]["status_code"] is None
    assert httpx.get(f"{sandbox}/healthz").status_code == 200


def test_the_inbox_shows_each_phones_messages_newest_first(sandbox, callback_sink):
    send(sandbox, "+254711222333", "First: invoice INV-1 is due")
    send(sandbox, "+254711222333,+254733222333", "Second: payment received")
    send(sandbox, "0711222333", "Never sent")
    callback_sink.wait_for(3)

    page = httpx.get(f"{sandbox}/sms")
    mine = httpx.get(f"{sandbox}/sms?phone=+254711222333")  # '+' unencoded, as people type it

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.text.count('data-testid="sms-message"') == 4
    assert 'data-phone="0711222333"' in page.text and "InvalidPhoneNumber" in page.text
    assert mine.text.count('data-testid="sms-message"') == 2
    assert mine.text.index("Second: payment received") < mine.text.index(
        "First: invoice INV-1 is due"
    )
    assert 'data-testid="sms-dlr-status" data-status="Success">delivery: Success<' in mine.text
    assert "+254733222333" not in mine.text


def test_the_inbox_escapes_message_text(sandbox):
    send(sandbox, "+254711222333", "<b>bold</b>")

    assert "&lt;b&gt;bold&lt;/b&gt;" in httpx.get(f"{sandbox}/sms").text


def test_messages_are_listed_and_reset_forgets_them(sandbox, callback_sink):
    (recipient,) = recipients(send(sandbox, "+254711222333", "Hi", **{"from": "MAZOEZI"}))
    callback_sink.wait_for(1)

    (listed,) = messages(sandbox)
    reset = httpx.post(f"{sandbox}/_sandbox/at/reset")

    assert listed["messageId"] == recipient["messageId"]
    assert (listed["number"], listed["message"], listed["from"], listed["status"]) == (
        "+254711222333",
        "Hi",
        "MAZOEZI",
        "Success",
    )
    assert (listed["parts"], listed["encoding"], listed["cost"], listed["networkCode"]) == (
        1,
        "GSM-7",
        "KES 0.8000",
        "63902",
    )
    assert listed["dlr_status"] == "Success"
    assert reset.json() == {"reset": True}
    assert messages(sandbox) == []
    assert deliveries(sandbox) == []
