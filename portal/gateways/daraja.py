"""Client of Safaricom M-Pesa Daraja: OAuth, STK push and query, C2B URL registration,
Transaction Status and Reversal (wire formats: ../shared/gateways.md §1; pitfalls §4).

What this module settles so callers don't have to:

* Requests are checked before any HTTP call (`validate_stk_request` and friends raise
  `DarajaFieldError(field, message)`): whole shillings only (never rounded), Safaricom 2547/2541 numbers,
  AccountReference <= 12, TransactionDesc <= 13, callback URLs free of the words Daraja refuses.
* The OAuth token is shared by every process through the `gateway_token` table and refreshed
  before it expires under a PostgreSQL advisory lock (`TokenStore`); a call answered "Invalid
  Access Token" is retried once with a fresh token.
* Errors are `GatewayError`s with Daraja's own verdict on retrying (`daraja_retryable`); the STK
  Query "transaction is being processed" error is a pending result, not an error.
* ResultCodes are strings everywhere (`result_code_str`): numbers in callbacks, strings in
  queries, `R000002`/`SFC_IC0003` elsewhere.

Timestamps are Kenyan time (Africa/Nairobi) whatever the server's clock zone: Safaricom checks
the Password against them. This is Daraja's clock, not the gym's business TIMEZONE.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx

from portal.gateways.http import (
    GatewayError,
    error_from_response,
    make_http_client,
    read_timeout,
    send,
)
from portal.lib.db import transaction
from portal.lib.money import Money
from portal.lib.phones import PhoneError, safaricom_phone
from portal.settings import Settings
from tables.gateway_tokens import GatewayToken

log = logging.getLogger(__name__)

GATEWAY = "daraja"
NAIROBI = ZoneInfo("Africa/Nairobi")
LIVE_HOST = "api.safaricom.co.ke"

# The per-transaction cap is the setting MPESA_MAX_AMOUNT (the official FAQ says 250,000, press
# coverage since 2023 says 150,000: gateways.md §1.14, [U]); the client takes it from Settings.
MAX_ACCOUNT_REFERENCE = 12
MAX_TRANSACTION_DESC = 13
MAX_REMARKS = 100

# Daraja refuses C2B URLs containing these (any case); we apply the rule to every callback URL.
BANNED_URL_WORDS = ("mpesa", "m-pesa", "safaricom", "exe", "exec", "cmd", "sql", "query")

# "Invalid Access Token": 404.001.03 on STK/Reversal, 400.003.01 on C2B/Transaction Status.
INVALID_TOKEN_CODES = frozenset({"404.001.03", "400.003.01"})
BEING_PROCESSED = "being processed"

# Refresh this long before the token dies (but never later than half-way through its life).
TOKEN_REFRESH_MARGIN = timedelta(minutes=5)
DEFAULT_TOKEN_TTL = 3599  # what Daraja answers; used when expires_in is missing or garbled

C2B_REGISTER_PATH = "/mpesa/c2b/v2/registerurl"  # v2: MSISDN masked, not hashed (§1.8)

_TRANSACTION_ID = re.compile(r"[A-Za-z0-9]{1,20}")


class DarajaFieldError(ValueError):
    """A request Daraja would refuse, caught before sending it. `field` is our parameter name
    (phone, amount, account_reference, description, callback_url, ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class StkPushAccepted:
    """Daraja accepted the push: the prompt is on its way. Not paid yet (callback or query)."""

    merchant_request_id: str
    checkout_request_id: str
    customer_message: str


@dataclass(frozen=True)
class StkQueryResult:
    """status "pending": the customer has not answered yet (result_code None).
    status "final": result_code "0" paid, anything else failed (a string, e.g. "1032").
    A final query never overrides a success already confirmed by a callback (pitfall 14)."""

    status: Literal["pending", "final"]
    result_code: str | None
    result_desc: str


@dataclass(frozen=True)
class C2BRegistered:
    originator_conversation_id: str
    response_description: str


@dataclass(frozen=True)
class AsyncRequestAccepted:
    """Transaction Status / Reversal accepted; the Result comes later to the ResultURL."""

    originator_conversation_id: str
    conversation_id: str
    response_description: str


@dataclass(frozen=True)
class StkRequest:
    """An STK push request that passed `validate_stk_request`, in wire-ready form."""

    phone: str  # 2547XXXXXXXX / 2541XXXXXXXX
    amount: int  # whole shillings
    account_reference: str
    description: str
    callback_url: str


# --------------------------------------------------------------------------------------------
# Pure helpers (no I/O)


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    """base64(BusinessShortCode + Passkey + Timestamp), plain concatenation (§1.4)."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode("ascii")).decode("ascii")


def daraja_timestamp(now: datetime) -> str:
    """YYYYMMDDHHmmss in Kenyan time. `now` must be timezone-aware (a naive time is ambiguous)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("daraja_timestamp needs a timezone-aware datetime")
    return now.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")


def result_code_str(value: Any) -> str | None:
    """Normalise a ResultCode/ResponseCode to a string: 0 -> "0", 1032.0 -> "1032",
    " 1032 " -> "1032", "R000002" stays, None/"" -> None."""
    if value is None:
        return None
    if isinstance(value, int):  # bool included: True -> "1"
        return str(int(value))
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    text = str(value).strip()
    return text or None


def is_zero_code(code: str | None) -> bool:
    """ "0" (and "00000000", which some Daraja APIs answer) means success."""
    return bool(code) and code.isdigit() and int(code) == 0


def banned_url_word(url: str) -> str | None:
    """The first word of BANNED_URL_WORDS found in `url` (any case), else None."""
    lowered = url.lower()
    for word in BANNED_URL_WORDS:
        if word in lowered:
            return word
    return None


def check_callback_url(url: str, field: str = "callback_url", *,
                       require_https: bool = False) -> str:
    """A URL Daraja will accept for a callback: absolute http(s) (https when live), no
    whitespace (Daraja answers "Invalid CallBackURL"), none of the banned words."""
    if not isinstance(url, str) or not url:
        raise DarajaFieldError(field, "a callback URL is required")
    if re.search(r"\s", url):
        raise DarajaFieldError(field, "must not contain spaces or line breaks")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise DarajaFieldError(field, "not a URL") from None
    allowed = ("https",) if require_https else ("http", "https")
    if parts.scheme.lower() not in allowed or not parts.hostname:
        raise DarajaFieldError(field, f"must be an absolute {' or '.join(allowed)} URL")
    word = banned_url_word(url)
    if word:
        raise DarajaFieldError(field, f"Daraja refuses URLs containing {word!r} (in any case)")
    return url


def whole_shillings(amount: Money | Decimal | int, field: str = "amount", *,
                    max_amount: Decimal | int, currency: str = "KES") -> int:
    """M-Pesa takes whole shillings from 1 to max_amount. Fractions are refused, never rounded;
    floats are refused outright."""
    if isinstance(amount, Money):
        if amount.currency != currency:
            raise DarajaFieldError(field, f"M-Pesa takes {currency}, not {amount.currency}")
        value = amount.amount
    elif isinstance(amount, (Decimal, int)) and not isinstance(amount, bool):
        value = Decimal(amount)
    else:  # floats (inexact), bools, text
        raise DarajaFieldError(
            field, f"refusing {type(amount).__name__} as money: use Money or Decimal")
    if not value.is_finite():
        raise DarajaFieldError(field, "not an amount")
    if value != value.to_integral_value():
        raise DarajaFieldError(field, f"M-Pesa takes whole shillings only; {value} has cents")
    if value < 1:
        raise DarajaFieldError(field, "must be at least KES 1")
    if value > Decimal(max_amount):
        raise DarajaFieldError(
            field, f"M-Pesa takes at most KES {Decimal(max_amount):,.0f} per transaction")
    return int(value)


def mpesa_phone(phone: str, field: str = "phone") -> str:
    """Any common way of writing a Safaricom mobile -> 2547XXXXXXXX / 2541XXXXXXXX: the portal's
    one rule for the number an M-Pesa prompt goes to (portal.lib.phones.safaricom_phone)."""
    try:
        return safaricom_phone(phone)
    except PhoneError as exc:
        raise DarajaFieldError(field, str(exc)) from None


def _text(value: str, field: str, max_len: int, *, required: bool, min_len: int = 1) -> str:
    if not isinstance(value, str):
        raise DarajaFieldError(field, "must be text")
    if not value:
        if required:
            raise DarajaFieldError(field, "is required")
        return value
    if len(value) < min_len:
        raise DarajaFieldError(field, f"at least {min_len} characters")
    if len(value) > max_len:
        raise DarajaFieldError(field, f"at most {max_len} characters (got {len(value)})")
    return value


def validate_stk_request(phone: str, amount: Money | Decimal | int, account_reference: str,
                         description: str, callback_url: str, *,
                         max_amount: Decimal | int,
                         require_https: bool = False) -> StkRequest:
    """Everything Daraja would refuse about an STK push, refused here first (§1.4, §1.14)."""
    return StkRequest(
        phone=mpesa_phone(phone),
        amount=whole_shillings(amount, max_amount=max_amount),
        account_reference=_text(account_reference, "account_reference", MAX_ACCOUNT_REFERENCE,
                                 required=True),
        # The only optional field of an STK push (§1.4).
        description=_text(description, "description", MAX_TRANSACTION_DESC, required=False),
        callback_url=check_callback_url(callback_url, "callback_url", require_https=require_https),
    )


def _transaction_id(value: str) -> str:
    if not isinstance(value, str) or not _TRANSACTION_ID.fullmatch(value):
        raise DarajaFieldError("transaction_id", "an M-Pesa receipt number such as NLJ7RT61SV")
    return value


def daraja_retryable(status: int, code: str | None, message: str | None) -> bool | None:
    """Daraja's verdict on retrying an error answer; None = let the HTTP status decide.

    500.001.1001 is overloaded (§1.2): "Unable to lock subscriber" (another prompt is open: wait
    a minute) and "being processed" pass with time; "Merchant does not exist" and "Wrong
    credentials" are configuration errors that no retry fixes. 500.003.02 Spike Arrest and
    500.003.03 Quota pass with time; 500.003.1001 "Urls are already registered" does not."""
    text = (message or "").lower()
    if code == "500.001.1001":
        if "unable to lock" in text or BEING_PROCESSED in text:
            return True
        if "merchant does not exist" in text or "wrong credentials" in text:
            return False
        return None
    if code in ("500.003.02", "500.003.03"):
        return True
    if code == "500.003.1001":
        return not ("already registered" in text or "duplicate notification" in text)
    if code and code[:4] in ("400.", "404.", "405."):
        return False
    return None


def _error_envelope(response: httpx.Response) -> tuple[str | None, str | None]:
    """(errorCode, errorMessage) of Daraja's error envelope, if the body is one."""
    try:
        data = response.json()
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    code = data.get("errorCode")
    message = data.get("errorMessage")
    return (str(code) if code is not None else None,
            str(message) if message is not None else None)


def _is_invalid_token(response: httpx.Response) -> bool:
    if response.status_code == 401:
        return True
    code, _ = _error_envelope(response)
    return code in INVALID_TOKEN_CODES


# --------------------------------------------------------------------------------------------
# The shared OAuth token


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _parse_expires_in(value: Any) -> int:
    """expires_in comes as "3599" (older docs) or 3599 (newer docs)."""
    try:
        if isinstance(value, bool):
            raise ValueError
        seconds = int(Decimal(str(value).strip()))
    except (ValueError, OverflowError, InvalidOperation):
        log.warning("daraja: expires_in %r is not a number; assuming %s s", value,
                    DEFAULT_TOKEN_TTL)
        return DEFAULT_TOKEN_TTL
    return max(seconds, 0)


def refresh_due(expires_at: datetime, fetched_at: datetime, now: datetime) -> bool:
    """True when a token fetched at `fetched_at` and dying at `expires_at` should be replaced:
    TOKEN_REFRESH_MARGIN before it dies, or half-way through its life if that is shorter."""
    margin = min(TOKEN_REFRESH_MARGIN, (expires_at - fetched_at) / 2)
    return now >= expires_at - margin


class TokenStore:
    """One access token per Daraja credential set, in the `gateway_token` table, for every
    process. Reading is a plain SELECT; replacing happens in a transaction holding
    `pg_advisory_xact_lock(<key>)`, re-checking the row once the lock is held, so processes that
    find the token stale at the same moment fetch one new token between them.

    The lock is held across the token request (bounded by the HTTP timeouts), so waiters hold a
    pooled connection meanwhile; within one client instance an asyncio lock makes concurrent
    callers wait in memory instead. Call gateways outside database transactions: inside one,
    the refresh joins it and the advisory lock lasts until the caller commits."""

    def __init__(self, key: str) -> None:
        self.key = key
        digest = hashlib.sha256(f"gateway_token:{key}".encode()).digest()
        self.lock_key = int.from_bytes(digest[:8], "big", signed=True)
        self._local: asyncio.Lock | None = None  # one refresher per client instance

    async def get(self, fetch, *, rejected: str | None = None) -> str:
        """A live token. `fetch()` returns (token, expires_in seconds) from the gateway and is
        called only under the lock. `rejected`: a token the gateway just refused; it is
        replaced unless another process has replaced it already."""
        if rejected is None:
            row = await self._read()
            if row is not None and not refresh_due(row["expires_at"], row["updated_at"], _utcnow()):
                return row["token"]
        if self._local is None:
            self._local = asyncio.Lock()
        async with self._local:
            return await self._refresh(fetch, rejected)

    async def _read(self) -> dict | None:
        return await (GatewayToken.select(GatewayToken.token, GatewayToken.expires_at,
                                          GatewayToken.updated_at)
                      .where(GatewayToken.gateway == self.key).first())

    async def _refresh(self, fetch, rejected: str | None) -> str:
        async with transaction():
            await GatewayToken.raw("SELECT pg_advisory_xact_lock({})", self.lock_key)
            row = await self._read()
            if (row is not None and row["token"] != rejected
                    and not refresh_due(row["expires_at"], row["updated_at"], _utcnow())):
                return row["token"]  # someone refreshed it while we waited for the lock
            token, expires_in = await fetch()
            now = _utcnow()
            await GatewayToken.insert(GatewayToken(
                gateway=self.key, token=token, expires_at=now + timedelta(seconds=expires_in),
                updated_at=now,
            )).on_conflict(
                target=GatewayToken.gateway, action="DO UPDATE",
                values=[GatewayToken.token, GatewayToken.expires_at, GatewayToken.updated_at],
            )
            return token


def token_key(settings: Settings) -> str:
    """Tokens belong to a base URL and consumer key: switching from the sandbox to live
    credentials (or between test sandboxes) never sends one environment's token to another."""
    fingerprint = hashlib.sha256(
        f"{settings.daraja_base_url}\n{settings.daraja_consumer_key}".encode()).hexdigest()[:16]
    return f"{GATEWAY}:{fingerprint}"


# --------------------------------------------------------------------------------------------
# The client


class DarajaClient:
    """Daraja over HTTP. `http_client` defaults to a new one from the shared factory (closed by
    `aclose()` / `async with`); one passed in stays the caller's.

    Transaction Status and Reversal need an initiator name and its SecurityCredential (the
    initiator password RSA-encrypted with Safaricom's certificate, §1.11); pass them here, or
    add `daraja_initiator` / `daraja_security_credential` to Settings."""

    def __init__(self, settings: Settings, http_client: httpx.AsyncClient | None = None, *,
                 initiator: str | None = None, security_credential: str | None = None,
                 max_amount: Decimal | int | None = None) -> None:
        self.settings = settings
        self.base_url = settings.daraja_base_url.rstrip("/")
        self._http = http_client or make_http_client(timeout=read_timeout(settings))
        self._owns_http = http_client is None
        self.initiator = (initiator if initiator is not None
                          else getattr(settings, "daraja_initiator", ""))
        self.security_credential = (security_credential if security_credential is not None
                                    else getattr(settings, "daraja_security_credential", ""))
        self.max_amount = Decimal(settings.mpesa_max_amount if max_amount is None else max_amount)
        self.live = urlsplit(self.base_url).hostname == LIVE_HOST
        self.tokens = TokenStore(token_key(settings))

    async def __aenter__(self) -> DarajaClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # -- STK ----------------------------------------------------------------------------------

    async def stk_push(self, phone: str, amount: Money | Decimal | int, account_reference: str,
                       description: str, callback_url: str) -> StkPushAccepted:
        """Send the payment prompt to `phone`. Raises DarajaFieldError before any HTTP call for
        a request Daraja would refuse, GatewayError when Daraja refuses or cannot be reached.
        A GatewayError with maybe_delivered=True (e.g. a read timeout) may have prompted the
        customer: find out before pushing again."""
        req = validate_stk_request(phone, amount, account_reference, description, callback_url,
                                   max_amount=self.max_amount, require_https=self.live)
        shortcode, passkey = self._merchant()
        timestamp = daraja_timestamp(_utcnow())
        payload = {
            "BusinessShortCode": int(shortcode),
            "Password": stk_password(shortcode, passkey, timestamp),
            "Timestamp": timestamp,
            "TransactionType": "CustomerPayBillOnline",
            "Amount": req.amount,
            "PartyA": int(req.phone),
            "PartyB": int(shortcode),
            "PhoneNumber": int(req.phone),
            "CallBackURL": req.callback_url,
            "AccountReference": req.account_reference,
            "TransactionDesc": req.description,
        }
        response = await self._post("/mpesa/stkpush/v1/processrequest", payload, "STK push")
        data = self._accepted(response, "STK push")
        checkout_id = data.get("CheckoutRequestID")
        if not checkout_id:
            raise self._malformed(response, "STK push", "no CheckoutRequestID in the answer")
        return StkPushAccepted(
            merchant_request_id=str(data.get("MerchantRequestID") or ""),
            checkout_request_id=str(checkout_id),
            customer_message=str(data.get("CustomerMessage")
                                 or data.get("ResponseDescription") or ""),
        )

    async def stk_query(self, checkout_request_id: str) -> StkQueryResult:
        """Where an STK push stands. "The transaction is being processed" is `pending`."""
        if not isinstance(checkout_request_id, str) or not checkout_request_id.strip() \
                or re.search(r"\s", checkout_request_id):
            raise DarajaFieldError("checkout_request_id", "a CheckoutRequestID such as ws_CO_...")
        shortcode, passkey = self._merchant()
        timestamp = daraja_timestamp(_utcnow())
        payload = {
            "BusinessShortCode": shortcode,
            "Password": stk_password(shortcode, passkey, timestamp),
            "Timestamp": timestamp,
            "CheckoutRequestID": checkout_request_id,
        }
        response = await self._post("/mpesa/stkpushquery/v1/query", payload, "STK query")
        if response.status_code != 200:
            code, message = _error_envelope(response)
            if code == "500.001.1001" and BEING_PROCESSED in (message or "").lower():
                return StkQueryResult("pending", None, message or "")
            raise self._error(response, "STK query")
        data = self._json(response, "STK query")
        result_code = result_code_str(data.get("ResultCode"))
        if result_code is None:
            return StkQueryResult("pending", None, str(data.get("ResponseDescription") or ""))
        return StkQueryResult("final", result_code, str(data.get("ResultDesc") or ""))

    # -- C2B ----------------------------------------------------------------------------------

    async def register_c2b_urls(self, confirmation_url: str, validation_url: str,
                                response_type: str = "Completed") -> C2BRegistered:
        """Tell Daraja where paybill payments to our shortcode are confirmed (and validated,
        where Safaricom has enabled external validation). `response_type` is what M-Pesa does
        when the validation URL does not answer in time: "Completed" or "Cancelled"."""
        if response_type not in ("Completed", "Cancelled"):
            raise DarajaFieldError("response_type", 'must be "Completed" or "Cancelled" (exactly)')
        payload = {
            "ShortCode": self._merchant()[0],
            "ResponseType": response_type,
            "ConfirmationURL": self._url(confirmation_url, "confirmation_url"),
            "ValidationURL": self._url(validation_url, "validation_url"),
        }
        response = await self._post(C2B_REGISTER_PATH, payload, "C2B register")
        data = self._accepted(response, "C2B register")
        return C2BRegistered(
            # Daraja's own spelling is "OriginatorCoversationID" (sic); accept either.
            originator_conversation_id=str(data.get("OriginatorCoversationID")
                                           or data.get("OriginatorConversationID") or ""),
            response_description=str(data.get("ResponseDescription") or ""),
        )

    # -- Transaction Status and Reversal (results arrive later at result_url) -----------------

    async def transaction_status(self, transaction_id: str, result_url: str, timeout_url: str,
                                 remarks: str, occasion: str = "") -> AsyncRequestAccepted:
        payload = {
            **self._initiator(),
            "CommandID": "TransactionStatusQuery",
            "TransactionID": _transaction_id(transaction_id),
            "PartyA": self._merchant()[0],
            "IdentifierType": "4",  # organisation shortcode
            "ResultURL": self._url(result_url, "result_url"),
            "QueueTimeOutURL": self._url(timeout_url, "timeout_url"),
            "Remarks": _text(remarks, "remarks", MAX_REMARKS, required=True),
            "Occasion": _text(occasion, "occasion", MAX_REMARKS, required=False),
        }
        response = await self._post("/mpesa/transactionstatus/v1/query", payload,
                                    "transaction status")
        return self._async_accepted(response, "transaction status")

    async def reversal(self, transaction_id: str, amount: Money | Decimal | int, result_url: str,
                       timeout_url: str, remarks: str) -> AsyncRequestAccepted:
        payload = {
            **self._initiator(),
            "CommandID": "TransactionReversal",
            "TransactionID": _transaction_id(transaction_id),
            "Amount": str(whole_shillings(amount, max_amount=self.max_amount)),
            "ReceiverParty": self._merchant()[0],
            # The vendor's spelling is the real key; the docs give "11" (older SDKs send "4").
            "RecieverIdentifierType": "11",
            "ResultURL": self._url(result_url, "result_url"),
            "QueueTimeOutURL": self._url(timeout_url, "timeout_url"),
            "Remarks": _text(remarks, "remarks", MAX_REMARKS, required=True, min_len=2),
        }
        response = await self._post("/mpesa/reversal/v1/request", payload, "reversal")
        return self._async_accepted(response, "reversal")

    # -- plumbing -----------------------------------------------------------------------------

    def _url(self, url: str, field: str) -> str:
        return check_callback_url(url, field, require_https=self.live)

    def _config_error(self, variable: str) -> GatewayError:
        return GatewayError(f"{variable} is not configured", gateway=GATEWAY, retryable=False,
                            code="config", maybe_delivered=False)

    def _merchant(self) -> tuple[str, str]:
        shortcode = self.settings.daraja_shortcode
        if not shortcode or not shortcode.isdigit():
            raise self._config_error("DARAJA_SHORTCODE")
        if not self.settings.daraja_passkey:
            raise self._config_error("DARAJA_PASSKEY")
        return shortcode, self.settings.daraja_passkey

    def _initiator(self) -> dict[str, str]:
        if not self.initiator:
            raise self._config_error("the Daraja initiator name")
        if not self.security_credential:
            raise self._config_error("the Daraja initiator SecurityCredential")
        return {"Initiator": self.initiator, "SecurityCredential": self.security_credential}

    async def access_token(self, *, rejected: str | None = None) -> str:
        """A live OAuth token (shared through the database; see TokenStore)."""
        return await self.tokens.get(self._fetch_token, rejected=rejected)

    async def _fetch_token(self) -> tuple[str, int]:
        key, secret = self.settings.daraja_consumer_key, self.settings.daraja_consumer_secret
        if not key or not secret:
            raise self._config_error("DARAJA_CONSUMER_KEY/DARAJA_CONSUMER_SECRET")
        response = await send(
            self._http, "GET", f"{self.base_url}/oauth/v1/generate",
            params={"grant_type": "client_credentials"}, auth=httpx.BasicAuth(key, secret),
            gateway=GATEWAY, action="OAuth token",
        )
        if response.status_code != 200:
            raise self._error(response, "OAuth token")
        try:
            data = response.json()
        except ValueError:
            data = None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not token or not isinstance(token, str):
            # Not kept: a garbled success body might still hold a secret.
            raise GatewayError("OAuth token: no access_token in the answer", gateway=GATEWAY,
                               retryable=True, status=response.status_code)
        log.info("daraja: new access token (expires_in %r)", data.get("expires_in"))
        return token, _parse_expires_in(data.get("expires_in"))

    async def _post(self, path: str, payload: dict, action: str) -> httpx.Response:
        """POST with the shared token; on "Invalid Access Token", once more with a fresh one."""
        token = await self.access_token()
        response = await self._post_once(path, payload, token, action)
        if _is_invalid_token(response):
            log.info("daraja: %s answered invalid token; retrying once with a new one", action)
            token = await self.access_token(rejected=token)
            response = await self._post_once(path, payload, token, action)
        return response

    async def _post_once(self, path: str, payload: dict, token: str, action: str) -> httpx.Response:
        response = await send(
            self._http, "POST", f"{self.base_url}{path}", json=payload,
            headers={"Authorization": f"Bearer {token}"}, gateway=GATEWAY, action=action,
        )
        log.info("daraja: %s -> HTTP %s", action, response.status_code)
        return response

    def _error(self, response: httpx.Response, action: str) -> GatewayError:
        code, message = _error_envelope(response)
        if code in INVALID_TOKEN_CODES:
            message = (f"{message or 'Invalid Access Token'} even with a new token (is the API "
                       "product enabled on the Daraja app?)")
        return error_from_response(
            response, gateway=GATEWAY, action=action, code=code, message=message,
            retryable=daraja_retryable(response.status_code, code, message),
        )

    def _malformed(self, response: httpx.Response, action: str, why: str) -> GatewayError:
        return GatewayError(f"{action}: {why}", gateway=GATEWAY, retryable=False,
                            status=response.status_code, body=response.text)

    def _json(self, response: httpx.Response, action: str) -> dict:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise self._malformed(response, action, "the answer is not a JSON object")
        return data

    def _accepted(self, response: httpx.Response, action: str) -> dict:
        """The body of a 200 whose ResponseCode is 0; anything else raises GatewayError."""
        if response.status_code != 200:
            raise self._error(response, action)
        data = self._json(response, action)
        code = result_code_str(data.get("ResponseCode"))
        if not is_zero_code(code):
            raise GatewayError(
                f"{action} not accepted: {data.get('ResponseDescription') or 'no description'}",
                gateway=GATEWAY, retryable=False, status=response.status_code, code=code,
                body=response.text,
            )
        return data

    def _async_accepted(self, response: httpx.Response, action: str) -> AsyncRequestAccepted:
        data = self._accepted(response, action)
        return AsyncRequestAccepted(
            originator_conversation_id=str(data.get("OriginatorConversationID")
                                           or data.get("OriginatorCoversationID") or ""),
            conversation_id=str(data.get("ConversationID") or ""),
            response_description=str(data.get("ResponseDescription") or ""),
        )


# --------------------------------------------------------------------------------------------
# Transaction Status of an STK prompt (reconciliation of quiet prompts, portal.reconcile)


async def transaction_status_of_prompt(client: DarajaClient, merchant_request_id: str, result_url: str,
                                       timeout_url: str, remarks: str = "Quiet prompt",
                                       occasion: str = "") -> AsyncRequestAccepted:
    """Ask Daraja how an STK prompt ended when neither its callback nor STK Query tells: Transaction
    Status by OriginalConversationID (gateways.md §1.9: "either TransactionID or
    OriginalConversationID identifies the transaction"). A prompt has no receipt until it is paid;
    its originator-side id is the push's MerchantRequestID ([U]: which id M-Pesa files an STK
    push under is not documented; the sandbox accepts the MerchantRequestID or the
    CheckoutRequestID). The Result comes later to `result_url`; it carries `occasion` back in its
    ReferenceData, which names our request when its answer (and the ids in it) never reached us."""
    if not isinstance(merchant_request_id, str) or not merchant_request_id.strip() \
            or re.search(r"\s", merchant_request_id) or len(merchant_request_id) > 100:
        raise DarajaFieldError("original_conversation_id", "the push's MerchantRequestID")
    payload = {
        **client._initiator(),
        "CommandID": "TransactionStatusQuery",
        "OriginalConversationID": merchant_request_id,
        "PartyA": client._merchant()[0],
        "IdentifierType": "4",  # organisation shortcode
        "ResultURL": client._url(result_url, "result_url"),
        "QueueTimeOutURL": client._url(timeout_url, "timeout_url"),
        "Remarks": _text(remarks, "remarks", MAX_REMARKS, required=True),
        "Occasion": _text(occasion, "occasion", MAX_REMARKS, required=False),
    }
    response = await client._post("/mpesa/transactionstatus/v1/query", payload, "transaction status")
    return client._async_accepted(response, "transaction status")
