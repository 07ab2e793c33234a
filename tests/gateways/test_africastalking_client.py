"""The Africa's Talking client against the simulated AT over real HTTP (gateways.md §3), SMS part
counting, and delivery reports parsed from what the sandbox posted to the callback sink."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from urllib.parse import parse_qs

import httpx
import pytest

from portal.gateways.africastalking import (
    AfricasTalkingClient,
    DeliveryReport,
    gsm7_safe,
    parse_delivery_report,
    sms_parts,
)
from portal.gateways.http import GatewayError, make_http_client
from portal.settings import get_settings
from tests.support.africastalking_helpers import API_KEY, USERNAME, form, messages
from tests.support.servers import free_port


def at_settings(base_url: str, **overrides):
    values = {"at_base_url": base_url, "at_username": USERNAME, "at_api_key": API_KEY,
              "at_sender_id": "", **overrides}
    return replace(get_settings(), **values)


@pytest.fixture
async def at(sandbox):
    async with AfricasTalkingClient(at_settings(sandbox)) as client:
        yield client


def at_control(sandbox: str, path: str, body: dict) -> dict:
    r = httpx.post(f"{sandbox}/_sandbox/at/{path}", json=body)
    assert r.status_code == 200, r.text
    return r.json()


# --- sending ---------------------------------------------------------------------------------


async def test_a_send_reports_each_recipient(at, sandbox):
    (result,) = await at.send_sms(["+254711222333"], "Your receipt RCP-42 is ready")

    assert (result.number, result.status, result.status_code) == ("+254711222333", "Success", 101)
    assert result.message_id.startswith("ATXid_") and len(result.message_id) == 6 + 32
    assert result.cost == "KES 0.8000"
    assert result.accepted and not result.retryable
    (sent,) = messages(sandbox)
    assert (sent["message"], sent["messageId"], sent["from"]) == (
        "Your receipt RCP-42 is ready", result.message_id, "AFRICASTKNG")


async def test_numbers_stored_as_2547_get_their_plus(at, sandbox):
    results = await at.send_sms(["254711222333", " 254112345678 "], "Hi")

    assert [(r.number, r.status_code) for r in results] == [
        ("+254711222333", 101), ("+254112345678", 101)]
    assert [m["number"] for m in messages(sandbox)] == ["+254711222333", "+254112345678"]


async def test_failed_recipients_are_reported_not_raised(at, sandbox):
    results = await at.send_sms(["+254711222333", "0712345678", "+254700000405", "+254700000500"],
                                "Reminder: your membership ends Friday")

    assert [(r.number, r.status, r.status_code) for r in results] == [
        ("+254711222333", "Success", 101),
        ("0712345678", "InvalidPhoneNumber", 403),
        ("+254700000405", "InsufficientBalance", 405),
        ("+254700000500", "InternalServerError", 500),
    ]
    assert [r.accepted for r in results] == [True, False, False, False]
    assert [r.retryable for r in results] == [False, False, True, True]
    assert [r.message_id for r in results[1:]] == [None, None, None]
    assert [r.cost for r in results[1:]] == ["0", "0", "0"]


async def test_the_request_is_form_encoded_with_the_documented_fields_and_headers(sandbox):
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request)

    async with make_http_client(event_hooks={"request": [record]}) as http:
        client = AfricasTalkingClient(at_settings(sandbox, at_sender_id="PTFGYM"), http_client=http)
        message = "Habari & karibu: 100% = 3,000 KES?"
        (result,) = await client.send_sms(["254711222333"], message)
        await client.aclose()
        assert not http.is_closed  # an injected client belongs to its owner

    (request,) = seen
    assert request.method == "POST" and request.url == f"{sandbox}/version1/messaging"
    assert request.headers["apikey"] == API_KEY
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "username": [USERNAME], "to": ["+254711222333"], "message": [message], "from": ["PTFGYM"]}
    assert result.status_code == 101
    assert messages(sandbox)[0]["message"] == message


async def test_many_recipients_go_in_one_comma_separated_request(at, sandbox):
    numbers = ["+254711222333", "+254733222333", "+256772123456"]

    results = await at.send_sms(numbers, "Gym closed on Monday")

    assert [r.number for r in results] == numbers
    assert len({r.message_id for r in results}) == 3


async def test_an_unregistered_sender_id_fails_per_recipient_or_as_401(sandbox):
    at_control(sandbox, "settings", {"sender_ids": ["PTFGYM"]})
    async with AfricasTalkingClient(at_settings(sandbox, at_sender_id="PTFGYM")) as ok, \
            AfricasTalkingClient(at_settings(sandbox, at_sender_id="OTHER")) as other:
        (registered,) = await ok.send_sms(["+254711222333"], "Hi")
        (unregistered,) = await other.send_sms(["+254711222333"], "Hi")
        at_control(sandbox, "settings", {"invalid_sender": "401"})
        with pytest.raises(GatewayError) as e:
            await other.send_sms(["+254711222333"], "Hi")

    assert (registered.status_code, registered.status) == (101, "Success")
    assert (unregistered.status_code, unregistered.status) == (402, "InvalidSenderId")
    assert (e.value.status, e.value.retryable) == (401, False)


@pytest.mark.parametrize("field", ["at_api_key", "at_username"])
async def test_wrong_credentials_are_a_401_that_no_retry_fixes(sandbox, field):
    async with AfricasTalkingClient(at_settings(sandbox, **{field: "wrong"})) as client:
        with pytest.raises(GatewayError) as e:
            await client.send_sms(["+254711222333"], "Hi")

    err = e.value
    assert (err.gateway, err.status, err.code, err.retryable) == (
        "africastalking", 401, "unauthorized", False)
    assert "The supplied authentication is invalid" in err.message
    assert messages(sandbox) == []


async def test_nothing_is_sent_without_recipients_or_text(at, sandbox):
    for to, text in [([], "Hi"), ([""], "Hi"), (["+254711222333,+254733222333"], "Hi"),
                     (["+254711222333"], "  ")]:
        with pytest.raises(ValueError):
            await at.send_sms(to, text)
    assert messages(sandbox) == []


async def test_a_refused_connection_is_retryable():
    async with AfricasTalkingClient(at_settings(f"http://127.0.0.1:{free_port()}")) as client:
        with pytest.raises(GatewayError) as e:
            await client.send_sms(["+254711222333"], "Hi")

    assert (e.value.gateway, e.value.retryable, e.value.maybe_delivered) == (
        "africastalking", True, False)


@pytest.mark.parametrize(
    ("status", "reply", "retryable"),
    [
        (500, b"Internal Server Error", True),
        (503, b"Service Unavailable", True),
        (429, b"Too Many Requests", True),
        (400, b"Request is missing required form field 'to'", False),
        (201, b"<?xml version='1.0'?><AfricasTalkingResponse/>", False),  # pitfall 25
        (201, b'{"SMSMessageData": {"Recipients": "nobody"}}', False),
    ],
)
async def test_other_answers_become_gateway_errors(callback_sink, status, reply, retryable):
    callback_sink.status, callback_sink.reply = status, reply
    async with AfricasTalkingClient(at_settings(callback_sink.base)) as client:
        with pytest.raises(GatewayError) as e:
            await client.send_sms(["+254711222333"], "Hi")

    assert (e.value.status, e.value.retryable) == (status, retryable)
    (request,) = callback_sink.received
    assert request.path == "/version1/messaging"


async def test_a_200_with_the_usual_body_is_accepted_too(callback_sink):
    callback_sink.reply = (b'{"SMSMessageData": {"Message": "Sent to 1/1", "Recipients": [{"statusCode": '
                           b'"101", "number": "+254711222333", "status": "Success", "cost": "KES 0.8000",'
                           b' "messageId": "ATXid_1"}]}}')
    async with AfricasTalkingClient(at_settings(callback_sink.base)) as client:
        (result,) = await client.send_sms(["+254711222333"], "Hi")

    assert (result.status_code, result.message_id) == (101, "ATXid_1")


# --- counting parts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("GSM-7", 1)),
        ("a" * 160, ("GSM-7", 1)),
        ("a" * 161, ("GSM-7", 2)),
        ("a" * 306, ("GSM-7", 2)),
        ("a" * 307, ("GSM-7", 3)),
        ("€" * 80, ("GSM-7", 1)),  # extension characters take two septets
        ("€" * 81, ("GSM-7", 2)),
        ("[KES 3,000] ~ {paid} | ^\\", ("GSM-7", 1)),
        ("a" * 152 + "€" + "a" * 152, ("GSM-7", 3)),  # 306 septets, but the escape is not split
        ("Karibu! £5 @ Café Ñoño: ÆØÅ ß", ("GSM-7", 1)),
        ("Nandú", ("UCS-2", 1)),  # ú is not in GSM-7 (ù is)
        ("ж" * 70, ("UCS-2", 1)),
        ("ж" * 71, ("UCS-2", 2)),
        ("ж" * 134, ("UCS-2", 2)),
        ("ж" * 135, ("UCS-2", 3)),
        ("Habari 😀", ("UCS-2", 1)),
        ("😀" * 35, ("UCS-2", 1)),  # 70 UTF-16 units
        ("😀" * 36, ("UCS-2", 2)),
        ("It’s paid", ("UCS-2", 1)),  # one curly quote makes the whole message UCS-2
        ("a" * 100 + "’", ("UCS-2", 2)),
    ],
)
def test_sms_parts(text, expected):
    assert sms_parts(text) == expected


async def test_the_part_count_agrees_with_what_the_sandbox_billed(at, sandbox):
    texts = ["Short", "x" * 200, "Receipt {RCP-42} ~ KES 3,000 " * 8, "Asante 🙏 " * 10]

    for text in texts:
        (result,) = await at.send_sms(["+254711222333"], text)
        (sent,) = messages(sandbox, phone="+254711222333")[-1:]
        encoding, parts = sms_parts(text)
        assert (sent["encoding"], sent["parts"]) == (encoding, parts), text
        assert result.cost == f"KES {Decimal('0.8000') * parts}"


def test_gsm7_safe_keeps_a_message_in_one_gsm_part():
    text = "Paul’s Gym – “Mazoezi” renewal…\u00a0KES\u202f3,000 — see you\u200b!\tAsante"
    safe = gsm7_safe(text)

    assert safe == "Paul's Gym - \"Mazoezi\" renewal... KES 3,000 - see you! Asante"
    assert sms_parts(text) == ("UCS-2", 1)
    assert sms_parts(safe) == ("GSM-7", 1)
    long = "‘Quoted’ – " * 14
    assert (sms_parts(long)[1], sms_parts(gsm7_safe(long))[1]) == (3, 1)


def test_gsm7_safe_leaves_everything_else_alone():
    assert gsm7_safe("Asante 🙏 — ok") == "Asante 🙏 - ok"
    assert gsm7_safe("Plain GSM: £5 @ 10% {x}") == "Plain GSM: £5 @ 10% {x}"
    assert gsm7_safe("") == ""


# --- delivery reports ------------------------------------------------------------------------


async def test_delivery_reports_the_sandbox_posts_are_parsed(at, sandbox, callback_sink):
    numbers = ["+254711222333", "+254700000909", "+254700000910", "+254700000901"]
    sent = {r.number: r.message_id for r in await at.send_sms(numbers, "Hi")}

    reports = [parse_delivery_report(dict(form(r))) for r in callback_sink.wait_for(4)]
    by_phone = {r.phone: r for r in reports}

    assert {r.message_id for r in reports} == set(sent.values())
    assert by_phone["+254711222333"] == DeliveryReport(
        sent["+254711222333"], "Success", True, None, "+254711222333", "63902", 0)
    assert by_phone["+254711222333"].delivered
    failed = by_phone["+254700000909"]
    assert (failed.status, failed.final, failed.failure_reason, failed.retry_count) == (
        "Failed", True, "DeliveryFailure", 2)
    rejected = by_phone["+254700000910"]
    assert (rejected.status, rejected.final, rejected.failure_reason) == (
        "Rejected", True, "UserInBlackList")
    assert by_phone["+254700000901"].failure_reason == "InsufficientCredit"
    assert not any(r.delivered for r in (failed, rejected))


async def test_a_buffered_report_is_not_final(at, sandbox, callback_sink):
    (result,) = await at.send_sms(["+254700000990"], "Hi")

    first, second = (parse_delivery_report(r.body) for r in callback_sink.wait_for(2))

    assert (first.message_id, first.status, first.final, first.retry_count) == (
        result.message_id, "Buffered", False, 0)
    assert (second.status, second.final, second.retry_count) == ("Success", True, 1)


async def test_a_resent_report_parses_the_same_as_the_first(at, sandbox, callback_sink):
    (result,) = await at.send_sms(["+254711222333"], "Hi")
    (first,) = callback_sink.wait_for(1)
    at_control(sandbox, f"messages/{result.message_id}/dlr", {})

    _, again = callback_sink.wait_for(2)

    assert parse_delivery_report(again.body) == parse_delivery_report(first.body)


def test_delivery_reports_are_read_liberally():
    as_lists = parse_delivery_report({"id": ["ATXid_1"], "status": ["failed"],
                                      "failureReason": ["UserIsInactive"], "retryCount": ["x"]})
    unknown = parse_delivery_report(b"id=ATXid_2&status=Expired&phoneNumber=%2B254711222333")
    submitted = parse_delivery_report("id=ATXid_3&status=Submitted&retryCount=")

    assert (as_lists.status, as_lists.final, as_lists.failure_reason, as_lists.retry_count) == (
        "Failed", True, "UserIsInactive", None)
    assert (unknown.status, unknown.final, unknown.phone) == ("Expired", False, "+254711222333")
    assert (submitted.status, submitted.final, submitted.retry_count) == ("Submitted", False, None)


@pytest.mark.parametrize(
    "report",
    [
        {},
        {"id": "", "status": "Success"},
        {"id": "ATXid_1"},
        {"status": "Success"},
        {"id": "ATXid_1", "status": {"nested": "x"}},
        {"id": "ATXid_1\x00<script>", "status": "Success"},
        {"id": "A" * 500, "status": "Success"},
        b"\xff\xfe",
        b"",
        "not a form",
        ["id", "status"],
        None,
        42,
    ],
)
def test_malformed_delivery_reports_raise_value_error(report):
    with pytest.raises(ValueError):
        parse_delivery_report(report)
