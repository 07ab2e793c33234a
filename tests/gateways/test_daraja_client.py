"""The Daraja client against the Daraja simulator over real HTTP, with the token in PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from decimal import Decimal

import pytest

from portal.gateways import callback_urls
from portal.gateways.daraja import DarajaClient, DarajaFieldError
from portal.gateways.http import GatewayError
from portal.lib.money import Money
from tests.gateways.conftest import CALLBACK_TOKEN

SUCCESS = "254708374149"  # Safaricom's documented test MSISDN: pays at once
INTERACTIVE = "254700000010"  # waits for Accept/Decline through the control API
KES = Money(Decimal("3000"))

STK = "/mpesa/stkpush/v1/processrequest"
QUERY = "/mpesa/stkpushquery/v1/query"
REGISTER = "/mpesa/c2b/v2/registerurl"


async def push(daraja, phone=SUCCESS, amount=KES):
    return await daraja.stk_push(phone, amount, "PTF0001", "Membership",
                                 callback_urls.stk_callback_url(daraja.settings))


async def register(daraja):
    s = daraja.settings
    return await daraja.register_c2b_urls(callback_urls.c2b_confirmation_url(s),
                                          callback_urls.c2b_validation_url(s))


# -- Refused before any HTTP call ---------------------------------------------------------------


@pytest.mark.parametrize("field, args", [
    ("amount", ("0712345678", Money(Decimal("3000.50")), "PTF0001", "Membership", None)),
    ("amount", ("0712345678", Decimal("0"), "PTF0001", "Membership", None)),
    ("amount", ("0712345678", Decimal("250001"), "PTF0001", "Membership", None)),  # MPESA_MAX_AMOUNT + 1
    ("amount", ("0712345678", 3000.0, "PTF0001", "Membership", None)),
    ("phone", ("0812345678", KES, "PTF0001", "Membership", None)),
    ("phone", ("255712345678", KES, "PTF0001", "Membership", None)),
    ("account_reference", ("0712345678", KES, "PTF0001-2026-X", "Membership", None)),
    ("description", ("0712345678", KES, "PTF0001", "Annual members", None)),
    ("callback_url", ("0712345678", KES, "PTF0001", "Membership", "/mpesa/stk/{token}")),
    ("callback_url", ("0712345678", KES, "PTF0001", "Membership", "/hooks/Safaricom/{token}")),
    ("callback_url", ("0712345678", KES, "PTF0001", "Membership", "/hooks/daraja/EXE/{token}")),
    ("callback_url", ("0712345678", KES, "PTF0001", "Membership", "/hooks/Query/{token}")),
])
async def test_bad_stk_requests_are_refused_before_any_http_call(daraja, traffic, control,
                                                                 callback_sink, field, args):
    phone, amount, ref, desc, path = args
    url = (f"{callback_sink.base}{path.format(token=CALLBACK_TOKEN)}" if path
           else callback_urls.stk_callback_url(daraja.settings))
    with pytest.raises(DarajaFieldError) as exc:
        await daraja.stk_push(phone, amount, ref, desc, url)
    assert exc.value.field == field
    assert traffic.total == 0  # not even a token request
    assert await control.stk() == []
    assert (await control.get("/callbacks"))["items"] == []


async def test_bad_c2b_and_async_requests_are_refused_before_any_http_call(daraja, traffic):
    s = daraja.settings
    ok = callback_urls.result_url(s)
    with pytest.raises(DarajaFieldError) as exc:
        await daraja.register_c2b_urls("https://gym.example.com/mpesa/confirm", ok)
    assert exc.value.field == "confirmation_url"
    with pytest.raises(DarajaFieldError) as exc:
        await daraja.register_c2b_urls(ok, ok, response_type="completed")
    assert exc.value.field == "response_type"
    with pytest.raises(DarajaFieldError) as exc:
        await daraja.transaction_status("NLJ7RT61SV", ok, "https://gym.example.com/sql", "Check")
    assert exc.value.field == "timeout_url"
    with pytest.raises(DarajaFieldError) as exc:
        await daraja.reversal("NLJ7RT61SV", Decimal("10.50"), ok, ok, "Refund")
    assert exc.value.field == "amount"
    with pytest.raises(DarajaFieldError) as exc:
        await daraja.reversal("not a receipt!", KES, ok, ok, "Refund")
    assert exc.value.field == "transaction_id"
    with pytest.raises(DarajaFieldError) as exc:
        await daraja.stk_query("")
    assert exc.value.field == "checkout_request_id"
    assert traffic.total == 0


# -- STK push and query -------------------------------------------------------------------------


async def test_stk_push_is_accepted_and_the_callback_reaches_our_url(daraja, control,
                                                                     callback_sink):
    accepted = await daraja.stk_push("0708 374 149", KES, "PTF0001", "Membership",
                                     callback_urls.stk_callback_url(daraja.settings))
    assert accepted.checkout_request_id.startswith("ws_CO_")
    assert accepted.merchant_request_id
    assert accepted.customer_message == "Success. Request accepted for processing"

    seen = await control.get(f"/stk/{accepted.checkout_request_id}")
    assert (seen["phone"], seen["amount"], seen["party_b"]) == ("254708374149", 3000, "174379")
    assert (seen["account_reference"], seen["transaction_desc"]) == ("PTF0001", "Membership")

    received = await asyncio.to_thread(callback_sink.wait_for, 1)
    assert received[0].path == f"/hooks/daraja/stk/{CALLBACK_TOKEN}"
    body = json.loads(received[0].body)["Body"]["stkCallback"]
    assert body["CheckoutRequestID"] == accepted.checkout_request_id
    assert body["ResultCode"] == 0  # a number in the callback ...

    result = await daraja.stk_query(accepted.checkout_request_id)
    assert (result.status, result.result_code) == ("final", "0")  # ... a string from us


async def test_stk_query_is_pending_until_the_customer_answers(daraja, control):
    accepted = await push(daraja, INTERACTIVE)
    pending = await daraja.stk_query(accepted.checkout_request_id)
    assert (pending.status, pending.result_code) == ("pending", None)
    assert "being processed" in pending.result_desc

    await control.post(f"/stk/{accepted.checkout_request_id}/accept", {"pin": "1234"})
    final = await daraja.stk_query(accepted.checkout_request_id)
    assert (final.status, final.result_code) == ("final", "0")
    assert isinstance(final.result_code, str)


async def test_stk_query_reports_a_declined_prompt_as_a_string_code(daraja, control):
    accepted = await push(daraja, INTERACTIVE)
    await control.post(f"/stk/{accepted.checkout_request_id}/decline")
    result = await daraja.stk_query(accepted.checkout_request_id)
    assert (result.status, result.result_code) == ("final", "1032")
    assert result.result_desc == "Request cancelled by user"


async def test_a_second_push_to_a_busy_phone_is_retryable(daraja):
    await push(daraja, INTERACTIVE)
    with pytest.raises(GatewayError) as exc:
        await push(daraja, INTERACTIVE)
    assert (exc.value.status, exc.value.code, exc.value.retryable) == (500, "500.001.1001", True)
    assert "Unable to lock subscriber" in exc.value.message


async def test_wrong_passkey_is_not_retryable_although_daraja_answers_500(daraja_settings,
                                                                          token_table):
    settings = dataclasses.replace(daraja_settings, daraja_passkey="not-the-passkey")
    async with DarajaClient(settings) as client:
        with pytest.raises(GatewayError) as exc:
            await push(client)
    assert (exc.value.status, exc.value.code, exc.value.retryable) == (500, "500.001.1001", False)
    assert "Wrong credentials" in exc.value.message


async def test_unknown_checkout_request_is_a_4xx_and_not_retryable(daraja):
    with pytest.raises(GatewayError) as exc:
        await daraja.stk_query("ws_CO_000000000000000000")
    err = exc.value
    assert (err.gateway, err.status, err.code) == ("daraja", 400, "400.002.02")
    assert err.retryable is False
    assert "Invalid CheckoutRequestID" in err.message
    assert "400.002.02" in err.body


async def test_spike_arrest_is_retryable(daraja, control):
    await control.settings(spike_arrest_tps=1)
    await push(daraja, INTERACTIVE)
    with pytest.raises(GatewayError) as exc:
        await push(daraja, SUCCESS)
    assert (exc.value.code, exc.value.retryable) == ("500.003.02", True)


# -- C2B, Transaction Status, Reversal ----------------------------------------------------------


async def test_c2b_urls_are_registered_with_our_hook_urls(daraja, control):
    registered = await register(daraja)
    assert registered.originator_conversation_id  # Daraja spells it OriginatorCoversationID
    assert registered.response_description == "Success"
    [reg] = (await control.get("/c2b"))["registrations"]
    s = daraja.settings
    assert reg["short_code"] == "174379"
    assert reg["response_type"] == "Completed"
    assert reg["version"] == "v2"
    assert reg["confirmation_url"] == callback_urls.c2b_confirmation_url(s)
    assert reg["validation_url"] == callback_urls.c2b_validation_url(s)


async def paid_receipt(daraja, callback_sink) -> str:
    accepted = await push(daraja, SUCCESS)
    received = await asyncio.to_thread(callback_sink.wait_for, 1)
    body = json.loads(received[0].body)["Body"]["stkCallback"]
    assert body["CheckoutRequestID"] == accepted.checkout_request_id
    items = {i["Name"]: i.get("Value") for i in body["CallbackMetadata"]["Item"]}
    return items["MpesaReceiptNumber"]


def result_parameters(result: dict) -> dict:
    items = result["Result"]["ResultParameters"]["ResultParameter"]
    return {p["Key"]: p.get("Value") for p in items}


def results_at(callback_sink, path: str) -> list[dict]:
    return [json.loads(r.body) for r in callback_sink.received if r.path == path]


async def test_transaction_status_is_accepted_and_its_result_comes_to_our_result_url(
        daraja, callback_sink):
    s = daraja.settings
    receipt = await paid_receipt(daraja, callback_sink)
    accepted = await daraja.transaction_status(receipt, callback_urls.result_url(s),
                                               callback_urls.timeout_url(s), "Check payment")
    assert accepted.conversation_id.startswith("AG_")
    assert accepted.originator_conversation_id

    path = f"/hooks/daraja/result/{CALLBACK_TOKEN}"
    await asyncio.to_thread(callback_sink.wait_for, 2)
    [result] = results_at(callback_sink, path)
    assert result["Result"]["ConversationID"] == accepted.conversation_id
    assert result["Result"]["ResultCode"] == 0
    params = result_parameters(result)
    assert params["ReceiptNo"] == receipt


async def test_reversal_is_accepted_and_its_result_comes_to_our_result_url(daraja, callback_sink):
    s = daraja.settings
    receipt = await paid_receipt(daraja, callback_sink)
    accepted = await daraja.reversal(receipt, KES, callback_urls.result_url(s),
                                     callback_urls.timeout_url(s), "Double payment")
    assert accepted.conversation_id

    await asyncio.to_thread(callback_sink.wait_for, 2)
    [result] = results_at(callback_sink, f"/hooks/daraja/result/{CALLBACK_TOKEN}")
    assert result["Result"]["ConversationID"] == accepted.conversation_id
    assert result["Result"]["ResultCode"] == 0
    params = result_parameters(result)
    assert params["OriginalTransactionID"] == receipt


async def test_reversal_of_an_unknown_receipt_is_accepted_then_fails_in_the_result(
        daraja, callback_sink):
    s = daraja.settings
    accepted = await daraja.reversal("ZZZ0000000", KES, callback_urls.result_url(s),
                                     callback_urls.timeout_url(s), "Double payment")
    [received] = await asyncio.to_thread(callback_sink.wait_for, 1)
    result = json.loads(received.body)["Result"]
    assert result["ConversationID"] == accepted.conversation_id
    assert result["ResultCode"] == "R000002"  # a string here, a number on success (pitfall 6)


async def test_transaction_status_needs_an_initiator(daraja_settings, token_table, traffic):
    async with traffic.http_client() as http:
        client = DarajaClient(daraja_settings, http, initiator="", security_credential="x")
        with pytest.raises(GatewayError) as exc:
            await client.transaction_status("NLJ7RT61SV", callback_urls.result_url(daraja_settings),
                                            callback_urls.timeout_url(daraja_settings), "Check")
    err = exc.value
    assert (err.code, err.retryable, err.maybe_delivered) == ("config", False, False)
    assert traffic.total == 0
