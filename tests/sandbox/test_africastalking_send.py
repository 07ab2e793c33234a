"""POST /version1/messaging: 201 body, auth, per-recipient statuses, part counting.

gateways.md §3.1 and pitfalls 24-27.
"""

import re

import httpx
import pytest

from tests.support.africastalking_helpers import (
    API_KEY,
    HEADERS,
    USERNAME,
    messages,
    recipients,
    send,
)

MESSAGE_ID = re.compile(r"ATXid_[0-9a-f]{32}")


def test_it_answers_201_with_the_sms_message_data(sandbox):
    r = send(sandbox, "+254711222333", "Your receipt RCP-42 is ready")

    assert r.status_code == 201
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    message_id = body["SMSMessageData"]["Recipients"][0]["messageId"]
    assert MESSAGE_ID.fullmatch(message_id)
    assert body == {
        "SMSMessageData": {
            "Message": "Sent to 1/1 Total Cost: KES 0.8000",
            "Recipients": [
                {
                    "statusCode": 101,
                    "number": "+254711222333",
                    "status": "Success",
                    "cost": "KES 0.8000",
                    "messageId": message_id,
                }
            ],
        }
    }
    assert list(body["SMSMessageData"]["Recipients"][0]) == [
        "statusCode",
        "number",
        "status",
        "cost",
        "messageId",
    ]


def test_the_api_key_header_name_is_case_insensitive(sandbox):
    r = send(sandbox, "+254711222333", headers={"apikey": API_KEY, "accept": "application/json"})

    assert r.status_code == 201


@pytest.mark.parametrize(
    "headers, username",
    [
        ({"Accept": "application/json"}, USERNAME),
        ({"apiKey": "wrong-key", "Accept": "application/json"}, USERNAME),
        ({"apiKey": API_KEY, "Accept": "application/json"}, USERNAME + "-live"),
    ],
    ids=["no-key", "wrong-key", "wrong-username"],
)
def test_bad_credentials_get_401_in_plain_text(sandbox, headers, username):
    r = httpx.post(
        f"{sandbox}/version1/messaging",
        headers=headers,
        data={"username": username, "to": "+254711222333", "message": "hi"},
    )

    assert r.status_code == 401
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == "The supplied authentication is invalid"
    assert messages(sandbox) == []


@pytest.mark.parametrize("missing", ["username", "to", "message"])
def test_a_missing_field_is_a_400(sandbox, missing):
    data = {"username": USERNAME, "to": "+254711222333", "message": "hi"}
    del data[missing]

    r = httpx.post(f"{sandbox}/version1/messaging", headers=HEADERS, data=data)

    assert r.status_code == 400
    assert r.text == f"Request is missing required form field '{missing}'"


def test_a_json_body_is_not_read_as_the_form(sandbox):
    r = httpx.post(
        f"{sandbox}/version1/messaging",
        headers=HEADERS,
        json={"username": USERNAME, "to": "+254711222333", "message": "hi"},
    )

    assert r.status_code == 400


def test_without_accept_json_the_answer_is_xml(sandbox):
    r = send(sandbox, "+254711222333", headers={"apiKey": API_KEY})

    assert r.status_code == 201
    assert r.headers["content-type"].startswith("application/xml")
    assert "<Message>Sent to 1/1 Total Cost: KES 0.8000</Message>" in r.text
    assert re.search(
        r"<Recipient><number>\+254711222333</number><cost>KES 0.8000</cost><status>Success</status>"
        r"<statusCode>101</statusCode><messageId>ATXid_[0-9a-f]{32}</messageId></Recipient>",
        r.text,
    )


STATUS_BY_NUMBER = [
    ("+254711222333", 101, "Success"),  # Safaricom
    ("+254733222333", 101, "Success"),  # Airtel
    ("+254110222333", 101, "Success"),  # Safaricom 011x
    ("+256772123456", 101, "Success"),  # another country
    ("0711222333", 403, "InvalidPhoneNumber"),
    ("254711222333", 403, "InvalidPhoneNumber"),
    ("+2547112223", 403, "InvalidPhoneNumber"),
    ("+254811222333", 403, "InvalidPhoneNumber"),
    ("not-a-number", 403, "InvalidPhoneNumber"),
    ("+254202222333", 404, "UnsupportedNumberType"),
    ("+254700000100", 100, "Processed"),
    ("+254700000102", 102, "Queued"),
    ("+254700000401", 401, "RiskHold"),
    ("+254700000402", 402, "InvalidSenderId"),
    ("+254700000403", 403, "InvalidPhoneNumber"),
    ("+254700000404", 404, "UnsupportedNumberType"),
    ("+254700000405", 405, "InsufficientBalance"),
    ("+254700000406", 406, "UserInBlacklist"),
    ("+254700000407", 407, "CouldNotRoute"),
    ("+254700000409", 409, "DoNotDisturbRejection"),
    ("+254700000500", 500, "InternalServerError"),
    ("+254700000501", 501, "GatewayError"),
    ("+254700000502", 502, "RejectedByGateway"),
    ("+254700000909", 101, "Success"),  # accepted; fails later in the delivery report
]


def test_each_recipient_gets_a_status_from_its_number(sandbox):
    # One request with every case: one entry per number, in request order.
    got = recipients(send(sandbox, ",".join(number for number, _, _ in STATUS_BY_NUMBER)))

    assert [(x["number"], x["statusCode"], x["status"]) for x in got] == STATUS_BY_NUMBER
    for recipient in got:
        if recipient["statusCode"] in (100, 101, 102):
            assert recipient["cost"] == "KES 0.8000", recipient
            assert MESSAGE_ID.fullmatch(recipient["messageId"]), recipient
        else:
            assert (recipient["cost"], recipient["messageId"]) == ("0", "None"), recipient


def test_a_201_can_hold_failed_recipients(sandbox):
    r = send(sandbox, "+254711222333, 0722000111 ,+254700000405,+254722000111")

    body = r.json()["SMSMessageData"]
    assert r.status_code == 201
    assert body["Message"] == "Sent to 2/4 Total Cost: KES 1.6000"
    assert [(x["number"], x["statusCode"]) for x in body["Recipients"]] == [
        ("+254711222333", 101),
        ("0722000111", 403),
        ("+254700000405", 405),
        ("+254722000111", 101),
    ]


def test_nobody_reached_costs_nothing(sandbox):
    r = send(sandbox, "0711222333")

    assert r.status_code == 201
    assert r.json()["SMSMessageData"]["Message"] == "Sent to 0/1 Total Cost: 0"


PARTS = [
    ("a" * 160, "GSM-7", 1),
    ("a" * 161, "GSM-7", 2),
    ("a" * 306, "GSM-7", 2),
    ("a" * 307, "GSM-7", 3),
    ("Karibu! Malipo yamepokelewa @ Ksh 1,500 ÄÖÑÜ§¿éè", "GSM-7", 1),
    ("€" * 80, "GSM-7", 1),  # extension characters take two septets
    ("€" * 81, "GSM-7", 2),
    ("[" + "a" * 159, "GSM-7", 2),
    ("ш" * 70, "UCS-2", 1),
    ("ш" * 71, "UCS-2", 2),
    ("ш" * 134, "UCS-2", 2),
    ("ш" * 135, "UCS-2", 3),
    ("Asante 🙂" + "a" * 61, "UCS-2", 1),  # the emoji is two UTF-16 units: 70 in all
    ("Asante 🙂" + "a" * 62, "UCS-2", 2),
]


def test_parts_are_counted_like_gsm_and_billed_per_part(sandbox):
    for text, encoding, parts in PARTS:
        r = send(sandbox, "+254711222333", text)

        (recipient,) = recipients(r)
        case = f"{text[:12]!r}... ({len(text)} chars)"
        assert recipient["cost"] == f"KES {0.8 * parts:.4f}", case
        assert (
            r.json()["SMSMessageData"]["Message"]
            == f"Sent to 1/1 Total Cost: KES {0.8 * parts:.4f}"
        ), case
        stored = messages(sandbox)[-1]
        assert (stored["encoding"], stored["parts"], stored["message"]) == (
            encoding,
            parts,
            text,
        ), case


def test_the_total_cost_adds_parts_over_recipients(sandbox):
    r = send(sandbox, "+254711222333,+254733222333,+254771222333", "a" * 200)

    assert r.json()["SMSMessageData"]["Message"] == "Sent to 3/3 Total Cost: KES 4.8000"


def test_from_defaults_to_africastkng(sandbox):
    send(sandbox, "+254711222333")

    assert messages(sandbox)[0]["from"] == "AFRICASTKNG"


def test_an_unregistered_sender_id_fails_each_recipient(sandbox):
    httpx.post(f"{sandbox}/_sandbox/at/settings", json={"sender_ids": ["MAZOEZI"]})

    ok = recipients(send(sandbox, "+254711222333", **{"from": "MAZOEZI"}))
    bad = recipients(send(sandbox, "+254711222333,+254722000111", **{"from": "OTHERGYM"}))

    assert ok[0]["statusCode"] == 101
    assert [(x["statusCode"], x["status"], x["cost"], x["messageId"]) for x in bad] == [
        (402, "InvalidSenderId", "0", "None")
    ] * 2


def test_an_unregistered_sender_id_can_be_a_401(sandbox):
    httpx.post(
        f"{sandbox}/_sandbox/at/settings", json={"sender_ids": ["MAZOEZI"], "invalid_sender": "401"}
    )

    r = send(sandbox, "+254711222333", **{"from": "OTHERGYM"})

    assert (r.status_code, r.text) == (401, "The supplied authentication is invalid")
