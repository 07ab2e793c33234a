"""Daraja's wire API: OAuth, STK push/query, C2B register/simulate, Transaction Status, Reversal.

Paths, field names, error envelopes and HTTP statuses follow ../shared/gateways.md §1.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import secrets
import time
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, get, post, route
from litestar.enums import MediaType
from litestar.params import FromPath
from litestar.response import Response

from portal.sandbox.daraja_engine import (
    query_result_code,
    result_desc,
    start_async,
    start_c2b_payment,
    submit_stk,
)
from portal.sandbox.daraja_state import (
    EAT,
    SCENARIOS,
    C2BRegistration,
    DarajaStore,
    StkRequest,
    make_checkout_request_id,
    make_request_id,
    make_token,
    now_eat,
    stk_password,
)

BANNED_URL_WORDS = ("mpesa", "m-pesa", "safaricom", "exe", "exec", "cmd", "sql", "query")
UNABLE_TO_LOCK = ("Unable to lock subscriber, a transaction is already in process for the "
                  "current subscriber")
ACCEPTED = "Accept the service request successfully."


def store_of(request: Request) -> DarajaStore:
    return request.app.state.daraja


def daraja_error(status: int, code: str, message: str, request_id: str | None = None) -> Response:
    return Response(
        content={"requestId": request_id or make_request_id(), "errorCode": code,
                 "errorMessage": message},
        status_code=status,
        media_type=MediaType.JSON,
    )


def invalid(field: str) -> Response:
    return daraja_error(400, "400.002.02", f"Bad Request - Invalid {field}")


def ok(content: dict) -> Response:
    return Response(content=content, status_code=200, media_type=MediaType.JSON)


# --------------------------------------------------------------------------------------------
# OAuth


@get("/oauth/v1/generate")
async def oauth_generate(request: Request) -> Response:
    store = store_of(request)
    cfg = store.config
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    try:
        if scheme.lower() != "basic":
            raise ValueError
        key, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        if not sep:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return daraja_error(400, "400.008.01", "Invalid Authentication passed")
    if request.query_params.get("grant_type") != "client_credentials":
        return daraja_error(400, "400.008.02", "Invalid grant type passed")
    if not (secrets.compare_digest(key, cfg.daraja_consumer_key)
            and secrets.compare_digest(secret, cfg.daraja_consumer_secret)):
        return daraja_error(400, "400.008.01", "Invalid Authentication passed")
    s = store.settings
    token = make_token()
    if s.new_token_revokes_old:
        store.tokens.clear()
    store.tokens[token] = time.monotonic() + s.token_ttl
    expires_in: Any = str(s.token_ttl) if s.expires_in_as_string else s.token_ttl
    return ok({"access_token": token, "expires_in": expires_in})


def check_bearer(store: DarajaStore, request: Request, api: str) -> Response | None:
    """None if the bearer token is live; otherwise the documented error."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return daraja_error(404, "404.001.04", "Invalid Authentication Header")
    expiry = store.tokens.get(token)
    if expiry is None or expiry <= time.monotonic():
        if store.settings.invalid_token_style == "per_api" and api in ("c2b", "status"):
            return daraja_error(400, "400.003.01", "Invalid Access Token")
        return daraja_error(404, "404.001.03", "Invalid Access Token")
    limit = store.settings.spike_arrest_tps
    if limit > 0:
        now = time.monotonic()
        calls = store.recent_calls
        while calls and calls[0] < now - 1.0:
            calls.popleft()
        if len(calls) >= limit:
            return daraja_error(500, "500.003.02", "Spike Arrest Violation")
        calls.append(now)
    return None


async def read_json(request: Request, first_field: str) -> dict | Response:
    # FAQ 9: without Content-Type: application/json Daraja complains about the first field.
    if "application/json" not in request.headers.get("content-type", "").lower():
        return invalid(first_field)
    try:
        data = json.loads(await request.body())
    except ValueError:
        return daraja_error(400, "400.002.05", "Invalid Request Payload")
    if not isinstance(data, dict):
        return daraja_error(400, "400.002.05", "Invalid Request Payload")
    return data


async def begin(request: Request, api: str, first_field: str) -> tuple[DarajaStore, dict] | Response:
    store = store_of(request)
    if (err := check_bearer(store, request, api)) is not None:
        return err
    data = await read_json(request, first_field)
    if isinstance(data, Response):
        return data
    return store, data


# --------------------------------------------------------------------------------------------
# Field rules


class Invalid(Exception):
    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def _present(data: dict, name: str) -> bool:
    return data.get(name) not in (None, "")


def f_digits(data: dict, name: str, lo: int, hi: int) -> str:
    v = data.get(name)
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise Invalid(name)
    s = str(v)
    if not re.fullmatch(rf"[0-9]{{{lo},{hi}}}", s):
        raise Invalid(name)
    return s


def f_msisdn(data: dict, name: str) -> str:
    v = data.get(name)
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise Invalid(name)
    s = str(v)
    if not re.fullmatch(r"254[17][0-9]{8}", s):
        raise Invalid(name)
    return s


def f_text(data: dict, name: str, max_len: int, required: bool = True, min_len: int = 1,
           allow_number: bool = False) -> str:
    v = data.get(name)
    if v is None or v == "":
        if required:
            raise Invalid(name)
        return ""
    if allow_number and isinstance(v, int) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str) or not (min_len <= len(v) <= max_len):
        raise Invalid(name)
    return v


def f_choice(data: dict, name: str, choices: set[str], allow_number: bool = False) -> str:
    v = data.get(name)
    if allow_number and isinstance(v, int) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str) or v not in choices:
        raise Invalid(name)
    return v


def f_amount(store: DarajaStore, data: dict, name: str = "Amount") -> int:
    v = data.get(name)
    if isinstance(v, bool):
        raise Invalid(name)
    try:
        if isinstance(v, int):
            d = Decimal(v)
        elif isinstance(v, float):
            d = Decimal(repr(v))
        elif isinstance(v, str) and re.fullmatch(r"[0-9]+(\.[0-9]+)?", v):
            d = Decimal(v)
        else:
            raise Invalid(name)
    except InvalidOperation:
        raise Invalid(name) from None
    if d != d.to_integral_value():
        if store.settings.fractional_amounts != "truncate":
            raise Invalid(name)
        d = d.to_integral_value(rounding=ROUND_DOWN)
    n = int(d)
    if n < 1 or n > store.settings.max_amount:
        raise Invalid(name)
    return n


def f_url(store: DarajaStore, data: dict, name: str, required: bool = True,
          banned_words: bool = False) -> str:
    v = data.get(name)
    if v is None or v == "":
        if required:
            raise Invalid(name)
        return ""
    if not isinstance(v, str) or re.search(r"\s", v):
        raise Invalid(name)
    try:
        parts = urlsplit(v)
    except ValueError:
        raise Invalid(name) from None
    schemes = {"https"} if store.settings.require_https else {"http", "https"}
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise Invalid(name)
    if banned_words and any(word in v.lower() for word in BANNED_URL_WORDS):
        raise Invalid(name)
    return v


def f_timestamp(store: DarajaStore, data: dict, name: str = "Timestamp") -> str:
    v = data.get(name)
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise Invalid(name)
    s = str(v)
    if not re.fullmatch(r"[0-9]{14}", s):
        raise Invalid(name)
    try:
        when = datetime.strptime(s, "%Y%m%d%H%M%S").replace(tzinfo=EAT)
    except ValueError:
        raise Invalid(name) from None
    window = store.settings.timestamp_window
    if window > 0 and abs((now_eat() - when).total_seconds()) > window:
        raise Invalid(name)
    return s


def check_merchant(store: DarajaStore, shortcode: str, password: str, timestamp: str
                   ) -> Response | None:
    cfg = store.config
    if shortcode != str(cfg.daraja_shortcode):
        return daraja_error(500, "500.001.1001", "Merchant does not exist")
    expected = stk_password(shortcode, cfg.daraja_passkey, timestamp)
    if not secrets.compare_digest(password.encode(), expected.encode()):
        return daraja_error(500, "500.001.1001", "Wrong credentials")
    return None


# --------------------------------------------------------------------------------------------
# STK push and query


@post("/mpesa/stkpush/v1/processrequest")
async def stk_push(request: Request) -> Response:
    started = await begin(request, "stk", "BusinessShortCode")
    if isinstance(started, Response):
        return started
    store, data = started
    try:
        shortcode = f_digits(data, "BusinessShortCode", 5, 7)
        password = f_text(data, "Password", 512)
        timestamp = f_timestamp(store, data)
        ttype = f_choice(data, "TransactionType",
                         {"CustomerPayBillOnline", "CustomerBuyGoodsOnline"})
        amount = f_amount(store, data)
        party_a = f_msisdn(data, "PartyA")
        party_b = f_digits(data, "PartyB", 5, 7)
        phone = f_msisdn(data, "PhoneNumber")
        callback_url = f_url(store, data, "CallBackURL")
        account_ref = f_text(data, "AccountReference", 12,
                             required=ttype == "CustomerPayBillOnline", allow_number=True)
        desc = f_text(data, "TransactionDesc", 13, required=False, allow_number=True)
    except Invalid as exc:
        return invalid(exc.field)
    if (err := check_merchant(store, shortcode, password, timestamp)) is not None:
        return err
    async with store.lock:
        if store.pending_for_phone(phone):
            return daraja_error(500, "500.001.1001", UNABLE_TO_LOCK)
        req = StkRequest(
            merchant_request_id=store.unique(make_request_id),
            checkout_request_id=store.unique(
                lambda attempt: make_checkout_request_id(phone, attempt)),
            business_short_code=shortcode, transaction_type=ttype, amount=amount,
            party_a=party_a, party_b=party_b, phone=phone, callback_url=callback_url,
            account_reference=account_ref, transaction_desc=desc,
            scenario=store.scenario_for(phone, amount),
        )
        store.stk[req.checkout_request_id] = req
    await submit_stk(store, req)
    if req.delivery == "after_slow_response":
        await asyncio.sleep(store.settings.slow_response_delay)
    return ok({
        "MerchantRequestID": req.merchant_request_id,
        "CheckoutRequestID": req.checkout_request_id,
        "ResponseCode": "0",
        "ResponseDescription": "Success. Request accepted for processing",
        "CustomerMessage": "Success. Request accepted for processing",
    })


@post("/mpesa/stkpushquery/v1/query")
async def stk_query(request: Request) -> Response:
    started = await begin(request, "stk", "BusinessShortCode")
    if isinstance(started, Response):
        return started
    store, data = started
    try:
        shortcode = f_digits(data, "BusinessShortCode", 5, 7)
        password = f_text(data, "Password", 512)
        timestamp = f_timestamp(store, data)
        checkout_id = f_text(data, "CheckoutRequestID", 64)
    except Invalid as exc:
        return invalid(exc.field)
    if (err := check_merchant(store, shortcode, password, timestamp)) is not None:
        return err
    req = store.stk.get(checkout_id)
    if req is None or req.business_short_code != shortcode:
        return invalid("CheckoutRequestID")
    if req.state == "pending" or SCENARIOS[req.scenario].query_pending:
        return daraja_error(500, "500.001.1001", "The transaction is being processed",
                            request_id=req.checkout_request_id)
    code = query_result_code(req)
    desc = req.result_desc if code == req.result_code else result_desc(store, code)
    accepted = "successsfully" if store.settings.query_description_typo else "successfully"
    return ok({
        "ResponseCode": "0",
        "ResponseDescription": f"The service request has been accepted {accepted}",
        "MerchantRequestID": req.merchant_request_id,
        "CheckoutRequestID": req.checkout_request_id,
        "ResultCode": str(code),
        "ResultDesc": desc,
    })


# --------------------------------------------------------------------------------------------
# C2B


async def _register(request: Request, version: str) -> Response:
    started = await begin(request, "c2b", "ShortCode")
    if isinstance(started, Response):
        return started
    store, data = started
    try:
        shortcode = f_digits(data, "ShortCode", 5, 7)
        response_type = f_choice(data, "ResponseType", {"Completed", "Cancelled"})
        confirmation = f_url(store, data, "ConfirmationURL", banned_words=True)
        validation = f_url(store, data, "ValidationURL", required=False, banned_words=True)
    except Invalid as exc:
        return invalid(exc.field)
    async with store.lock:
        if store.settings.c2b_register_once and shortcode in store.registrations:
            return daraja_error(500, "500.003.1001", "Urls are already registered")
        store.registrations[shortcode] = C2BRegistration(
            short_code=shortcode, response_type=response_type, confirmation_url=confirmation,
            validation_url=validation, version=version,
        )
    return ok({"OriginatorCoversationID": make_request_id(), "ResponseCode": "0",
               "ResponseDescription": "Success"})


@post("/mpesa/c2b/v1/registerurl")
async def c2b_register_v1(request: Request) -> Response:
    return await _register(request, "v1")


@post("/mpesa/c2b/v2/registerurl")
async def c2b_register_v2(request: Request) -> Response:
    return await _register(request, "v2")


def validate_simulate(store: DarajaStore, data: dict) -> tuple[str, str, int, str, str]:
    """Field rules of C2B simulate (also used by the /paybill page). Raises Invalid."""
    shortcode = f_digits(data, "ShortCode", 5, 7)
    command = f_choice(data, "CommandID", {"CustomerPayBillOnline", "CustomerBuyGoodsOnline"})
    amount = f_amount(store, data)
    msisdn = f_msisdn(data, "Msisdn")
    bill_ref = ""
    if command == "CustomerPayBillOnline":
        bill_ref = f_text(data, "BillRefNumber", 20, required=False, allow_number=True)
    return shortcode, command, amount, msisdn, bill_ref


async def _simulate(request: Request, version: str) -> Response:
    started = await begin(request, "c2b", "ShortCode")
    if isinstance(started, Response):
        return started
    store, data = started
    try:
        shortcode, command, amount, msisdn, bill_ref = validate_simulate(store, data)
    except Invalid as exc:
        return invalid(exc.field)
    start_c2b_payment(store, shortcode, command, amount, msisdn, bill_ref, f"simulate-{version}")
    return ok({"OriginatorCoversationID": make_request_id(), "ResponseCode": "0",
               "ResponseDescription": ACCEPTED})


@post("/mpesa/c2b/v1/simulate")
async def c2b_simulate_v1(request: Request) -> Response:
    return await _simulate(request, "v1")


@post("/mpesa/c2b/v2/simulate")
async def c2b_simulate_v2(request: Request) -> Response:
    return await _simulate(request, "v2")


# --------------------------------------------------------------------------------------------
# Transaction Status and Reversal


async def _async_ack(store, ar) -> Response:
    if store.settings.async_ack_delay > 0:
        await asyncio.sleep(store.settings.async_ack_delay)
    return ok({"OriginatorConversationID": ar.originator_conversation_id,
               "ConversationID": ar.conversation_id, "ResponseCode": "0",
               "ResponseDescription": ACCEPTED})


@post("/mpesa/transactionstatus/v1/query")
async def transaction_status(request: Request) -> Response:
    started = await begin(request, "status", "Initiator")
    if isinstance(started, Response):
        return started
    store, data = started
    try:
        f_text(data, "Initiator", 100)
        f_text(data, "SecurityCredential", 4096)
        f_choice(data, "CommandID", {"TransactionStatusQuery"})
        if _present(data, "TransactionID") or not _present(data, "OriginalConversationID"):
            if not re.fullmatch(r"[A-Za-z0-9]{1,20}", str(data.get("TransactionID") or "")):
                raise Invalid("TransactionID")
        f_text(data, "OriginalConversationID", 100, required=False)
        f_digits(data, "PartyA", 5, 12)
        f_choice(data, "IdentifierType", {"1", "2", "4"}, allow_number=True)
        f_url(store, data, "ResultURL")
        f_url(store, data, "QueueTimeOutURL")
        f_text(data, "Remarks", 100)
        f_text(data, "Occasion", 100, required=False)
    except Invalid as exc:
        return invalid(exc.field)
    return await _async_ack(store, start_async(store, "transaction_status", data))


@post("/mpesa/reversal/v1/request")
async def reversal(request: Request) -> Response:
    started = await begin(request, "reversal", "Initiator")
    if isinstance(started, Response):
        return started
    store, data = started
    try:
        f_text(data, "Initiator", 100)
        f_text(data, "SecurityCredential", 4096)
        f_choice(data, "CommandID", {"TransactionReversal"})
        if not re.fullmatch(r"[A-Za-z0-9]{1,20}", str(data.get("TransactionID") or "")):
            raise Invalid("TransactionID")
        f_amount(store, data)
        f_digits(data, "ReceiverParty", 5, 12)
        # The vendor's spelling is the real key; "ReceiverIdentifierType" does not count.
        f_choice(data, "RecieverIdentifierType", {"11", "4"}, allow_number=True)
        f_url(store, data, "ResultURL")
        f_url(store, data, "QueueTimeOutURL")
        f_text(data, "Remarks", 100, min_len=2)
        f_text(data, "Occasion", 100, required=False)
    except Invalid as exc:
        return invalid(exc.field)
    return await _async_ack(store, start_async(store, "reversal", data))


# --------------------------------------------------------------------------------------------
# Wrong method / wrong path


POST_ONLY_PATHS = [
    "/mpesa/stkpush/v1/processrequest",
    "/mpesa/stkpushquery/v1/query",
    "/mpesa/c2b/v1/registerurl",
    "/mpesa/c2b/v2/registerurl",
    "/mpesa/c2b/v1/simulate",
    "/mpesa/c2b/v2/simulate",
    "/mpesa/transactionstatus/v1/query",
    "/mpesa/reversal/v1/request",
]


@get(POST_ONLY_PATHS)
async def method_not_allowed(request: Request) -> Response:
    return daraja_error(405, "405.001", "Method Not Allowed")


@route("/mpesa/{rest:path}", http_method=["GET", "POST"])
async def unknown_resource(request: Request, rest: FromPath[str]) -> Response:
    return daraja_error(404, "404.001.01", "Resource not found")


route_handlers = [
    oauth_generate, stk_push, stk_query, c2b_register_v1, c2b_register_v2, c2b_simulate_v1,
    c2b_simulate_v2, transaction_status, reversal, method_not_allowed, unknown_resource,
]
