"""Gateway callbacks: Daraja, Flutterwave, and Africa's Talking's SMS delivery reports.

Exempt from CSRF and login: each is authenticated its own way (Daraja: a secret token in the
path and an optional source-address allowlist; Flutterwave: verif-hash; Africa's Talking: a
secret token in the path). The rhythm is always the same: read the body
(capped), store it raw, process it, answer what the gateway expects. Nothing here can answer a
500: whatever goes wrong after the body is stored is the sweeper's to retry.

A request that fails its hook's authentication is anyone's: it is counted (store.count_refused),
never kept whole, and an address sending too many of them gets 429 without being counted.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from litestar import Request, Response, post
from litestar.params import FromPath

from portal.callbacks import dispatch
from portal.callbacks import store as callbacks
from portal.callbacks.store import MAX_BODY, loads
from portal.gateways.africastalking import parse_delivery_report
from portal.gateways.flutterwave import parse_webhook, webhook_authentic
from portal.lib import ratelimit
from portal.payments.mpesa import c2b
from portal.web.client import client_ip

log = logging.getLogger(__name__)

DARAJA_ACK = {"ResultCode": 0, "ResultDesc": "Accepted"}
# Requests failing authentication, per minute: from one address, and from all addresses together
# (a gateway with its right token is never limited, so neither limit can hold a payment up).
REFUSED_PER_ADDRESS_PER_MINUTE = 10
REFUSED_PER_MINUTE = 300


async def refuse(request: Request, gateway: str, kind: str, raw: bytes, why: str) -> Response | None:
    """Count a request that failed its hook's authentication; the 429 to answer instead when its
    address (or everyone) has sent too many lately. Logged once per hook, address and day."""
    ip = client_ip(request)
    if not (await ratelimit.hit(f"hooks-refused:{ip}", REFUSED_PER_ADDRESS_PER_MINUTE, 60)
            and await ratelimit.hit("hooks-refused", REFUSED_PER_MINUTE, 60)):
        return Response({"error": "too many requests"}, status_code=429, headers={"retry-after": "60"})
    counted = await callbacks.count_refused(gateway, kind, raw, headers=dict(request.headers), source_ip=ip, note=why)
    if counted.new:
        log.warning("rejected %s %s callback from %s: %s (counted on callback %s)", gateway, kind, ip, why, counted.id)
    return None


async def read_body(request: Request) -> tuple[bytes, bool]:
    """The body up to MAX_BODY bytes, and whether it was cut."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            chunks.append(chunk[: max(0, MAX_BODY - (size - len(chunk)))])
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


def daraja_allowed(request: Request, token: str) -> str | None:
    """Why this request is not from Daraja, or None if it may be."""
    settings = request.app.state.settings
    expected = settings.daraja_callback_token
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        return "wrong callback token"
    allowed = settings.daraja_allowed_ips
    if allowed and client_ip(request) not in allowed:
        return f"source address {client_ip(request)} not allowed"
    return None


def _stk_checkout_id(data) -> str | None:
    try:
        value = data["Body"]["stkCallback"]["CheckoutRequestID"]
        return value if isinstance(value, str) and 0 < len(value) <= 100 else None
    except (KeyError, TypeError):
        return None


def _stk_result_code(data) -> str:
    try:
        return str(data["Body"]["stkCallback"]["ResultCode"])[:10]
    except (KeyError, TypeError):
        return "?"


def _c2b_trans_id(data) -> str | None:
    try:
        value = data["TransID"]
        return value if isinstance(value, str) and 0 < len(value) <= 40 else None
    except (KeyError, TypeError):
        return None


def _async_result_id(data) -> str | None:
    try:
        value, conversation = data["Result"]["OriginatorConversationID"], data["Result"]["ConversationID"]
    except (KeyError, TypeError):
        return None
    ok = isinstance(value, str) and 0 < len(value) <= 60 and len(str(conversation)) <= 50
    return f"{value}:{conversation}" if ok else None


ID_READERS = {"stk": _stk_checkout_id, "c2b_confirmation": _c2b_trans_id, "c2b_validation": _c2b_trans_id,
              "result": _async_result_id, "timeout": _async_result_id}


@dataclass(frozen=True)
class Received:
    outcome: str
    data: object = None  # the parsed body
    too_many: Response | None = None  # a refused request over its limit: answered with this


async def receive_daraja(request: Request, kind: str, token: str) -> Received:
    """Store a Daraja callback, then process it (a refused one is only counted)."""
    raw, cut = await read_body(request)
    refused = daraja_allowed(request, token)
    if refused:
        return Received("rejected", too_many=await refuse(request, "daraja", kind, raw, refused))
    data, external_id, note, outcome, dedupe_extra = None, None, "", "stored", ""
    if cut:
        outcome, note = "malformed", f"body over {MAX_BODY} bytes, cut"
    else:
        try:
            data = loads(raw)
            external_id = ID_READERS[kind](data)
            if kind == "stk" and external_id:
                # The same result sent again is one callback; a different result for the same
                # request is kept as its own row (and the state machine decides what it means).
                dedupe_extra = _stk_result_code(data)
        except (ValueError, UnicodeDecodeError) as e:
            outcome, note = "malformed", f"not JSON: {e}"[:300]
    stored = await callbacks.store("daraja", kind, raw, headers=dict(request.headers), source_ip=client_ip(request),
                                   external_id=external_id, outcome=outcome, note=note, dedupe_extra=dedupe_extra)
    if outcome == "malformed" and stored.new:
        await callbacks.alert("malformed", f"Daraja {kind} callback could not be read: {note}", callback_id=stored.id)
    if outcome != "stored":
        return Received(outcome, data)
    return Received(await dispatch.process(stored.id, data), data)


async def _ack(request: Request, kind: str, token: str, answer: dict) -> Response:
    received = await receive_daraja(request, kind, token)
    return received.too_many or Response(answer)


@post("/hooks/daraja/stk/{token:str}", status_code=200)
async def daraja_stk(request: Request, token: FromPath[str]) -> Response:
    return await _ack(request, "stk", token, DARAJA_ACK)


@post("/hooks/daraja/c2b/confirmation/{token:str}", status_code=200)
async def daraja_c2b_confirmation(request: Request, token: FromPath[str]) -> Response:
    return await _ack(request, "c2b_confirmation", token, {"ResultCode": 0, "ResultDesc": "Success"})


@post("/hooks/daraja/c2b/validation/{token:str}", status_code=200)
async def daraja_c2b_validation(request: Request, token: FromPath[str]) -> Response:
    """Accept or reject a Paybill payment before M-Pesa takes the money (answer within ~8 s)."""
    received = await receive_daraja(request, "c2b_validation", token)
    if received.too_many:
        return received.too_many
    if received.outcome in ("rejected", "malformed") or not isinstance(received.data, dict):
        return Response({"ResultCode": "C2B00016", "ResultDesc": "Rejected"})
    code = await c2b.validation_answer(received.data)
    return Response({"ResultCode": code, "ResultDesc": "Accepted" if code == "0" else "Rejected"})


@post("/hooks/daraja/result/{token:str}", status_code=200)
async def daraja_result(request: Request, token: FromPath[str]) -> Response:
    return await _ack(request, "result", token, DARAJA_ACK)


@post("/hooks/daraja/timeout/{token:str}", status_code=200)
async def daraja_timeout(request: Request, token: FromPath[str]) -> Response:
    return await _ack(request, "timeout", token, DARAJA_ACK)


@post("/hooks/flutterwave", status_code=200)
async def flutterwave_webhook(request: Request) -> Response:
    """Accepted only with the right verif-hash (constant-time); even then nothing is credited
    until Flutterwave's verify endpoint confirms it (portal.payments.cards.checkout)."""
    raw, cut = await read_body(request)
    settings = request.app.state.settings
    outcome, note, external_id, claim = "stored", "", None, None
    # Authenticated first: a body too long to keep is only worth an alert when Flutterwave sent it.
    if not webhook_authentic(request.headers, raw, settings.flutterwave_secret_hash):
        return await refuse(request, "flutterwave", "webhook", raw, "missing or wrong verif-hash") or Response(
            {"status": "success"})
    if cut:
        outcome, note = "malformed", f"body over {MAX_BODY} bytes, cut"
    else:
        try:
            claim = parse_webhook(raw)
            external_id = f"{claim.transaction_id or claim.tx_ref}:{claim.status}"
        except ValueError as e:
            outcome, note = "malformed", str(e)[:300]
    stored = await callbacks.store("flutterwave", "webhook", raw, headers=dict(request.headers),
                                   source_ip=client_ip(request), external_id=external_id, outcome=outcome, note=note)
    if outcome == "stored":
        await dispatch.process(stored.id, claim)
    elif outcome == "malformed" and stored.new:
        await callbacks.alert("malformed", f"Flutterwave webhook could not be read: {note}", callback_id=stored.id)
    return Response({"status": "success"})


@post("/hooks/sms/delivery/{token:str}", status_code=200)
async def sms_delivery_report(request: Request, token: FromPath[str]) -> Response:
    """An Africa's Talking delivery report (form-encoded, gateways.md §3.2). Always answered 200
    once stored: a refusal would only make AT send it again."""
    raw, cut = await read_body(request)
    expected = request.app.state.settings.at_callback_token
    outcome, note, external_id, status, report = "stored", "", None, "", None
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        return await refuse(request, "africastalking", "delivery", raw, "wrong callback token") or Response(
            "OK", media_type="text/plain")
    if cut:
        outcome, note = "malformed", f"body over {MAX_BODY} bytes, cut"
    else:
        try:
            report = parse_delivery_report(raw)
            # One row per (message, status): Buffered then Success are two reports; the same
            # report sent twice is one.
            external_id, status = report.message_id, report.status
        except ValueError as e:
            outcome, note = "malformed", str(e)[:300]
    stored = await callbacks.store("africastalking", "delivery", raw, headers=dict(request.headers),
                                   source_ip=client_ip(request), external_id=external_id, outcome=outcome, note=note,
                                   dedupe_extra=status)
    if outcome == "stored":
        await dispatch.process(stored.id, report)  # a repeat of a processed report is a no-op there
    elif outcome == "malformed" and stored.new:
        await callbacks.alert("malformed", f"SMS delivery report could not be read: {note}", callback_id=stored.id)
    return Response("OK", media_type="text/plain")


routes = [daraja_stk, daraja_c2b_confirmation, daraja_c2b_validation, daraja_result, daraja_timeout,
          flutterwave_webhook, sms_delivery_report]
