"""The Flutterwave client against the simulated Flutterwave over real HTTP (gateways.md §2).

The sandbox is driven only through its HTTP control API; webhooks are checked on the exact
bytes and headers the sandbox delivered to the callback sink.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import httpx
import pytest

from portal.gateways.flutterwave import (
    FlutterwaveClient,
    Verdict,
    Verified,
    check_verified,
    parse_webhook,
    webhook_authentic,
)
from portal.gateways.http import GatewayError
from portal.lib.money import Money
from portal.settings import get_settings
from tests.support.flutterwave_helpers import SECRET_HASH, SECRET_KEY, hooks
from tests.support.servers import free_port

RETURN_URL = "https://gym.example.test/pay/return"
JANE = {"email": "jane@example.test", "phone": "254708374149", "name": "Jane Doe"}
KES_1500 = Money(Decimal("1500"), "KES")
SUCCESS_CARDS = {
    "success": ("MASTERCARD", "2950"),
    "visa_3ds": ("VISA", "4246"),
    "mastercard_3ds": ("MASTERCARD", "0229"),
    "verve": ("VERVE", "4667"),
}
FAILING_CARDS = {"insufficient_funds": "Insufficient funds", "declined": "Declined"}


def fw_settings(base_url: str, **overrides):
    return replace(
        get_settings(),
        flutterwave_base_url=base_url,
        flutterwave_secret_key=SECRET_KEY,
        flutterwave_secret_hash=SECRET_HASH,
        currency="KES",
        **overrides,
    )


@pytest.fixture
async def fw(sandbox):
    async with FlutterwaveClient(fw_settings(f"{sandbox}/v3")) as client:
        yield client


def fw_control(sandbox: str, path: str, body: dict | None = None) -> dict:
    url = f"{sandbox}/_sandbox/flutterwave/{path}"
    r = httpx.post(url, json=body) if body is not None else httpx.get(url)
    assert r.status_code == 200, r.text
    return r.json()


def complete(sandbox: str, link: str, card: str = "success", scenario: str | None = None) -> dict:
    """Pay the checkout behind a hosted link with a test card, as the customer would."""
    body = {"checkout_id": link.rsplit("/", 1)[-1], "card": card}
    if scenario:
        body["scenario"] = scenario
    return fw_control(sandbox, "complete", body)


async def pay(fw, sandbox, tx_ref="inv-42-1", amount=KES_1500, card="success", scenario=None,
              **kw) -> int:
    link = await fw.create_payment(tx_ref, amount, RETURN_URL, JANE, "Mazoezi Gym",
                                   "Invoice 42", **kw)
    return complete(sandbox, link, card, scenario)["transaction_id"]


# --- create payment --------------------------------------------------------------------------


async def test_create_payment_returns_the_hosted_link_and_sends_kes_explicitly(fw, sandbox):
    link = await fw.create_payment("inv-42-1", Money(Decimal("1500.50")), RETURN_URL, JANE,
                                   "Mazoezi Gym", "Invoice 42", meta={"invoice_id": 42})

    assert link.startswith(f"{sandbox}/checkout/")
    assert httpx.get(link).status_code == 200  # the page a member opens
    (checkout,) = fw_control(sandbox, "checkouts")["checkouts"]
    assert checkout["link"] == link
    assert (checkout["tx_ref"], checkout["amount"], checkout["currency"]) == ("inv-42-1", 1500.5, "KES")
    assert (checkout["redirect_url"], checkout["customer_email"]) == (RETURN_URL, "jane@example.test")


async def test_the_customer_name_and_phone_reach_flutterwave(fw, sandbox):
    tx_id = await pay(fw, sandbox)

    verified = await fw.verify(tx_id)

    customer = verified.raw["customer"]
    assert (customer["name"], customer["phone_number"], customer["email"]) == (
        "Jane Doe", "254708374149", "jane@example.test")


async def test_create_payment_refuses_what_flutterwave_would_misread(fw):
    with pytest.raises(TypeError):
        await fw.create_payment("inv-1", Decimal("1500"), RETURN_URL, JANE, "t", "d")
    with pytest.raises(ValueError):
        await fw.create_payment("inv-1", Money(Decimal("0")), RETURN_URL, JANE, "t", "d")
    with pytest.raises(ValueError):
        await fw.create_payment("inv-1", KES_1500, RETURN_URL, {"name": "No Email"}, "t", "d")


async def test_a_rejected_create_is_not_retryable(fw, sandbox):
    await pay(fw, sandbox, tx_ref="inv-dup")

    with pytest.raises(GatewayError) as e:
        await fw.create_payment("inv-dup", KES_1500, RETURN_URL, JANE, "t", "d")

    assert (e.value.status, e.value.retryable, e.value.gateway) == (400, False, "flutterwave")
    assert "Duplicate transaction reference" in e.value.message


async def test_a_503_on_create_is_retryable_but_says_verify_first(fw, sandbox):
    fw_control(sandbox, "settings", {"create_503_next": 1, "delay_503": 0.05})

    with pytest.raises(GatewayError) as e:
        await fw.create_payment("inv-503", KES_1500, RETURN_URL, JANE, "t", "d")

    assert (e.value.status, e.value.retryable, e.value.code) == (503, True, "maybe_created")
    assert "verify" in e.value.message
    # Pitfall 23: the checkout exists although we only saw a 503; nothing was charged yet.
    assert [c["tx_ref"] for c in fw_control(sandbox, "checkouts")["checkouts"]] == ["inv-503"]
    assert await fw.verify_by_reference("inv-503") is None


async def test_a_wrong_secret_key_is_unauthorized_and_not_retryable(sandbox):
    settings = replace(fw_settings(f"{sandbox}/v3"), flutterwave_secret_key="FLWSECK_TEST-wrong")
    async with FlutterwaveClient(settings) as client:
        with pytest.raises(GatewayError) as e:
            await client.create_payment("inv-1", KES_1500, RETURN_URL, JANE, "t", "d")

    assert (e.value.status, e.value.code, e.value.retryable) == (401, "unauthorized", False)


# --- verify ----------------------------------------------------------------------------------


@pytest.mark.parametrize("card", list(SUCCESS_CARDS))
async def test_each_successful_test_card_verifies_in_full(fw, sandbox, card):
    tx_id = await pay(fw, sandbox, card=card)

    verified = await fw.verify(tx_id)

    assert isinstance(verified, Verified)
    assert (verified.id, verified.tx_ref, verified.status) == (tx_id, "inv-42-1", "successful")
    assert verified.amount == KES_1500 and verified.charged_amount == KES_1500
    assert verified.app_fee == Money(Decimal("21"), "KES")
    assert verified.currency == "KES"
    assert (verified.card_brand, verified.card_last4) == SUCCESS_CARDS[card]
    assert verified.raw["flw_ref"].startswith("FLW-MOCK-")
    assert check_verified(verified, "inv-42-1", KES_1500) == Verdict(ok=True, full=True, problems=[])


@pytest.mark.parametrize("card", list(FAILING_CARDS))
async def test_a_failed_card_verifies_as_failed_and_is_not_ok(fw, sandbox, card):
    tx_id = await pay(fw, sandbox, card=card)

    verified = await fw.verify(tx_id)
    verdict = check_verified(verified, "inv-42-1", KES_1500)

    assert verified.status == "failed"
    assert verified.raw["processor_response"] == FAILING_CARDS[card]
    assert (verdict.ok, verdict.full) == (False, False)
    assert verdict.problems == ["status is 'failed', not 'successful'"]


async def test_verify_by_reference_finds_the_same_transaction(fw, sandbox):
    tx_id = await pay(fw, sandbox, tx_ref="inv-ref")

    by_ref = await fw.verify_by_reference("inv-ref")

    assert by_ref == await fw.verify(tx_id)
    assert by_ref.raw == (await fw.verify(tx_id)).raw


async def test_verify_by_reference_of_an_unknown_ref_is_none(fw, sandbox):
    assert await fw.verify_by_reference("inv-nobody") is None
    fw_control(sandbox, "settings", {"not_found_status": 200})  # the real status is [U]
    assert await fw.verify_by_reference("inv-nobody") is None


@pytest.mark.parametrize("not_found_status", [400, 404, 200])
async def test_verify_of_an_unknown_id_is_not_found_and_not_retryable(fw, sandbox, not_found_status):
    fw_control(sandbox, "settings", {"not_found_status": not_found_status})

    with pytest.raises(GatewayError) as e:
        await fw.verify(99999999)

    assert (e.value.code, e.value.retryable, e.value.status) == ("not_found", False, not_found_status)


async def test_a_tx_ref_is_never_sent_to_the_id_route(fw):
    with pytest.raises(ValueError, match="verify_by_reference"):
        await fw.verify("inv-42-1")


async def test_a_503_on_verify_is_retryable_and_the_next_verify_answers(fw, sandbox):
    fw_control(sandbox, "settings", {"delay_503": 0.05})
    tx_id = await pay(fw, sandbox, scenario="verify_503")

    with pytest.raises(GatewayError) as e:
        await fw.verify(tx_id)

    assert (e.value.status, e.value.retryable) == (503, True)
    assert (await fw.verify(tx_id)).status == "successful"


async def test_a_tampered_checkout_is_ok_but_not_full(fw, sandbox, callback_sink):
    tx_id = await pay(fw, sandbox, scenario="tampered")
    (hook,) = hooks(callback_sink, 1)

    claim = parse_webhook(hook.body)
    verified = await fw.verify(tx_id)
    verdict = check_verified(verified, "inv-42-1", KES_1500)

    assert claim.amount == Decimal("1500")  # the webhook claims what was asked...
    assert verified.amount == Money(Decimal("150"), "KES")  # ...verify reports what was charged
    assert (verdict.ok, verdict.full) == (True, False)
    assert verdict.problems == ["amount KES 150 is less than the expected KES 1,500"]


async def test_a_wrong_currency_is_flagged(fw, sandbox, callback_sink):
    tx_id = await pay(fw, sandbox, scenario="wrong_currency")
    (hook,) = hooks(callback_sink, 1)

    verified = await fw.verify(tx_id)
    verdict = check_verified(verified, "inv-42-1", KES_1500)

    assert parse_webhook(hook.body).currency == "KES"
    assert (verified.currency, verified.amount) == ("NGN", Money(Decimal("1500"), "NGN"))
    assert (verdict.ok, verdict.full) == (False, False)
    assert verdict.problems == ["currency is NGN, expected KES"]


async def test_check_verified_catches_another_tx_ref_and_reports_an_excess(fw, sandbox):
    verified = await fw.verify(await pay(fw, sandbox))

    other = check_verified(verified, "inv-99-1", KES_1500)
    less_expected = check_verified(verified, "inv-42-1", Money(Decimal("1000")))

    assert (other.ok, other.full) == (False, False)
    assert other.problems == ["tx_ref is 'inv-42-1', expected 'inv-99-1'"]
    assert (less_expected.ok, less_expected.full, less_expected.problems) == (True, True, [])
    assert less_expected.excess == Money(Decimal("500"))


# --- refunds ---------------------------------------------------------------------------------


async def test_a_full_refund(fw, sandbox):
    tx_id = await pay(fw, sandbox)

    result = await fw.refund(tx_id)

    assert (result.status, result.amount) == ("completed", KES_1500)
    assert result.id > 0 and result.raw["tx_id"] == tx_id


async def test_partial_refunds_then_an_over_refund_is_refused(fw, sandbox):
    tx_id = await pay(fw, sandbox)

    first = await fw.refund(tx_id, Money(Decimal("500.50")))
    with pytest.raises(GatewayError) as too_much:
        await fw.refund(tx_id, Money(Decimal("1000")))
    rest = await fw.refund(tx_id)
    with pytest.raises(GatewayError) as again:
        await fw.refund(tx_id, Money(Decimal("1")))

    assert (first.amount, rest.amount) == (Money(Decimal("500.50")), Money(Decimal("999.50")))
    assert first.id != rest.id
    assert (too_much.value.status, too_much.value.retryable) == (400, False)
    assert "cannot be greater than the refundable amount" in too_much.value.message
    assert (again.value.status, again.value.retryable) == (400, False)
    (tx,) = fw_control(sandbox, "transactions?tx_ref=inv-42-1")["transactions"]
    assert tx["refunded"] == 1500


async def test_a_failed_payment_cannot_be_refunded(fw, sandbox):
    tx_id = await pay(fw, sandbox, card="declined")

    with pytest.raises(GatewayError) as e:
        await fw.refund(tx_id)

    assert (e.value.status, e.value.retryable) == (400, False)


async def test_a_refund_amount_must_be_positive_money(fw):
    with pytest.raises(ValueError):
        await fw.refund(1, Money(Decimal("0")))
    with pytest.raises(TypeError):
        await fw.refund(1, Decimal("10"))


# --- webhooks: authenticity on the bytes the sandbox sent ---------------------------------------


async def test_a_verif_hash_webhook_is_authentic_only_with_the_right_secret(fw, sandbox, callback_sink):
    await pay(fw, sandbox)
    (hook,) = hooks(callback_sink, 1)

    assert "verif-hash" in hook.headers
    assert webhook_authentic(hook.headers, hook.body, SECRET_HASH) is True
    assert webhook_authentic(hook.headers, hook.body, "another-hash") is False
    assert webhook_authentic(hook.headers, hook.body, "") is False
    without = {k: v for k, v in hook.headers.items() if k != "verif-hash"}
    assert webhook_authentic(without, hook.body, SECRET_HASH) is False
    # Header names are case-insensitive; raw ASGI header pairs work too.
    assert webhook_authentic({"Verif-Hash": SECRET_HASH}, hook.body, SECRET_HASH) is True
    assert webhook_authentic([(b"verif-hash", SECRET_HASH.encode())], hook.body, SECRET_HASH) is True


async def test_a_wrong_verif_hash_is_refused(fw, sandbox, callback_sink):
    await pay(fw, sandbox, scenario="wrong_hash")
    (hook,) = hooks(callback_sink, 1)

    assert hook.headers["verif-hash"] != SECRET_HASH
    assert webhook_authentic(hook.headers, hook.body, SECRET_HASH) is False


async def test_the_signature_scheme_is_checked_over_the_raw_bytes(fw, sandbox, callback_sink):
    await pay(fw, sandbox, scenario="signature")
    (hook,) = hooks(callback_sink, 1)
    reserialised = json.dumps(json.loads(hook.body)).encode()  # pitfall 17
    tampered = hook.body.replace(b'"amount":1500', b'"amount":15000')

    assert "verif-hash" not in hook.headers and "flutterwave-signature" in hook.headers
    assert webhook_authentic(hook.headers, hook.body, SECRET_HASH) is True
    assert webhook_authentic(hook.headers, bytearray(hook.body), SECRET_HASH) is True
    assert webhook_authentic(hook.headers, hook.body, "another-hash") is False
    assert reserialised != hook.body
    assert webhook_authentic(hook.headers, reserialised, SECRET_HASH) is False
    assert tampered != hook.body
    assert webhook_authentic(hook.headers, tampered, SECRET_HASH) is False
    assert webhook_authentic({"flutterwave-signature": "not base64!"}, hook.body, SECRET_HASH) is False


# --- webhooks: parsing ------------------------------------------------------------------------


async def test_parse_webhook_reads_the_v3_envelope(fw, sandbox, callback_sink):
    tx_id = await pay(fw, sandbox, meta={"invoice_id": 42})
    (hook,) = hooks(callback_sink, 1)

    claim = parse_webhook(hook.body)

    assert (claim.event, claim.shape) == ("charge.completed", "v3")
    assert (claim.transaction_id, claim.tx_ref, claim.status) == (tx_id, "inv-42-1", "successful")
    assert (claim.amount, claim.currency) == (Decimal("1500"), "KES")
    assert parse_webhook(hook.body.decode()) == claim


async def test_parse_webhook_reads_the_legacy_flat_shape(fw, sandbox, callback_sink):
    tx_id = await pay(fw, sandbox, amount=Money(Decimal("1500.50")), scenario="flat")
    (hook,) = hooks(callback_sink, 1)

    claim = parse_webhook(hook.body)

    assert "txRef" in hook.json and "data" not in hook.json
    assert (claim.event, claim.shape) == ("charge.completed", "flat")
    assert (claim.transaction_id, claim.tx_ref, claim.status) == (tx_id, "inv-42-1", "successful")
    assert (claim.amount, claim.currency) == (Decimal("1500.5"), "KES")


async def test_parse_webhook_reads_a_failed_charge(fw, sandbox, callback_sink):
    tx_id = await pay(fw, sandbox, card="insufficient_funds")
    (hook,) = hooks(callback_sink, 1)

    claim = parse_webhook(hook.body)

    assert (claim.transaction_id, claim.status, claim.event) == (tx_id, "failed", "charge.completed")


async def test_parse_webhook_reads_the_refund_notification(fw, sandbox, callback_sink):
    fw_control(sandbox, "settings", {"refund_webhooks": True})
    tx_id = await pay(fw, sandbox)
    await fw.refund(tx_id, Money(Decimal("500")))

    charge, refund = hooks(callback_sink, 2)
    claim = parse_webhook(refund.body)

    assert webhook_authentic(refund.headers, refund.body, SECRET_HASH)
    assert (claim.event, claim.shape) == ("refund", "refund")
    assert (claim.transaction_id, claim.tx_ref, claim.amount) == (tx_id, "inv-42-1", Decimal("500"))
    assert parse_webhook(charge.body).shape == "v3"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe{}",
        b"[]",
        b'"charge.completed"',
        b"null",
        b"{}",
        b'{"event": "charge.completed"}',
        b'{"data": {"id": 1, "tx_ref": "inv-1"}}',
        b'{"event": "charge.completed", "data": {"status": "successful"}}',
        b'{"event": 42, "data": {"id": 1}}',
        b'{"event": "charge.completed", "data": {"id": "chg_abc123", "tx_ref": "inv-1"}}',
        b'{"event": "charge.completed", "data": {"id": -5}}',
        b'{"event": "charge.completed", "data": {"id": 1, "amount": "lots"}}',
        b'{"event": "charge.completed", "data": {"id": 1, "amount": true}}',
        b'{"event": "charge.completed", "data": {"id": 1, "tx_ref": {"nested": 1}}}',
        b'{"event": "charge.completed", "data": {"id": 1, "status": ["successful"]}}',
        b'{"txRef": "inv-1", "id": 1.5}',
        b'{"event": "charge.completed", "data": {"id": 1, "amount": NaN}}',
        b'{"event": "charge.completed", "data": {"id": ' + b"9" * 5000 + b"}}",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_parse_webhook_refuses_malformed_bodies_with_a_value_error(body):
    with pytest.raises(ValueError):
        parse_webhook(body)


def test_parse_webhook_refuses_non_bytes_with_a_value_error():
    with pytest.raises(ValueError):
        parse_webhook({"event": "charge.completed"})  # type: ignore[arg-type]


# --- transport failures ----------------------------------------------------------------------


async def test_a_refused_connection_is_retryable_and_cannot_have_created_anything():
    settings = fw_settings(f"http://127.0.0.1:{free_port()}/v3")
    async with FlutterwaveClient(settings) as client:
        with pytest.raises(GatewayError) as create:
            await client.create_payment("inv-1", KES_1500, RETURN_URL, JANE, "t", "d")
        with pytest.raises(GatewayError) as verify:
            await client.verify(1)

    assert (create.value.retryable, create.value.maybe_delivered) == (True, False)
    assert create.value.code != "maybe_created"
    assert verify.value.retryable is True


async def test_an_unreadable_answer_is_a_gateway_error(callback_sink):
    callback_sink.reply = b"<html>Bad gateway</html>"
    settings = fw_settings(f"{callback_sink.base}/v3")
    async with FlutterwaveClient(settings) as client:
        with pytest.raises(GatewayError) as malformed:
            await client.verify(1)
        callback_sink.status = 429
        with pytest.raises(GatewayError) as limited:
            await client.verify(1)

    assert (malformed.value.status, malformed.value.retryable) == (200, False)
    assert (limited.value.status, limited.value.retryable) == (429, True)
    assert callback_sink.received[0].headers["authorization"] == f"Bearer {SECRET_KEY}"


async def test_an_injected_http_client_is_used_and_left_open(sandbox):
    seen = []

    async def record(request):
        seen.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        async with FlutterwaveClient(fw_settings(f"{sandbox}/v3"), http_client=http) as client:
            await client.create_payment("inv-7", KES_1500, RETURN_URL, JANE, "Gym", "Invoice 7")
        assert not http.is_closed

    (request,) = seen
    body = json.loads(request.content)
    assert request.url == f"{sandbox}/v3/payments"
    assert request.headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert body == {
        "tx_ref": "inv-7",
        "amount": "1500",
        "currency": "KES",
        "redirect_url": RETURN_URL,
        "customer": {"email": "jane@example.test", "name": "Jane Doe", "phonenumber": "254708374149"},
        "customizations": {"title": "Gym", "description": "Invoice 7"},
        "payment_options": "card",
    }
