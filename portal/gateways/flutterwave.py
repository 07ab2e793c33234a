"""Flutterwave v3 client: hosted checkout, verify, refunds, and webhook helpers (gateways.md §2).

Outbound calls go through `portal.gateways.http` (one client factory, one `GatewayError`). Nothing
here trusts a browser redirect or a webhook body: `parse_webhook` only extracts a *claim* (which
transaction to look at); money is credited only after `verify()` and `check_verified()` agree
(gateways.md §2.5 "Recommended verification procedure", pitfall 19).

Wire decisions where gateways.md is unsure ([U]):
* amounts go out as decimal strings in major units ("1500", "1500.50"), never floats; answers are
  parsed with `parse_float=Decimal`.
* the customer's phone is sent as `phonenumber` (the spelling of the hosted-checkout samples).
* "No transaction was found" may come with any HTTP status (200 included): it is recognised by
  the envelope, not the status.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import httpx

from portal.gateways.http import (
    GatewayError,
    error_from_response,
    make_http_client,
    read_timeout,
    send,
)
from portal.lib.money import Money

GATEWAY = "flutterwave"
NOT_FOUND_MESSAGE = "no transaction was found"
_CENT = Decimal("0.01")


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    """What GET /v3/transactions/{id}/verify says about a transaction: the truth to act on."""

    id: int
    tx_ref: str
    status: str  # successful | failed | pending (lowercase, as Flutterwave sends it)
    amount: Money
    charged_amount: Money
    app_fee: Money
    currency: str
    card_brand: str | None
    card_last4: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def successful(self) -> bool:
        return self.status == "successful"


@dataclass(frozen=True)
class RefundResult:
    id: int
    status: str  # completed | pending | processing ...
    amount: Money
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class WebhookClaim:
    """What a webhook *claims*. Only a pointer to the transaction to verify; never money."""

    transaction_id: int | None
    tx_ref: str | None
    status: str | None
    amount: Decimal | None
    currency: str | None
    # The envelope's event ("charge.completed", ...); legacy flat charge: "charge.completed";
    # flat refund notification: "refund".
    event: str
    shape: str = "v3"  # v3 | flat | refund


@dataclass(frozen=True)
class Verdict:
    ok: bool  # successful, our tx_ref, our currency: money for this order was received
    full: bool  # ok and the amount covers what was expected
    problems: list[str]
    excess: Money | None = None  # paid more than expected (docs: give value, may refund the excess)


# --- the client -----------------------------------------------------------------------------


class FlutterwaveClient:
    """`FlutterwaveClient(settings)`; use as `async with` or call `aclose()` when done.

    An injected `http_client` is used as is and left open (its owner closes it)."""

    def __init__(self, settings, http_client: httpx.AsyncClient | None = None) -> None:
        self.base_url = settings.flutterwave_base_url.rstrip("/")
        self._secret_key = settings.flutterwave_secret_key
        self._default_currency = settings.currency
        self._owns_client = http_client is None
        self._http = http_client or make_http_client(timeout=read_timeout(settings))

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()

    async def __aenter__(self) -> FlutterwaveClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    # -- API calls --

    async def create_payment(
        self,
        tx_ref: str,
        amount: Money,
        redirect_url: str,
        customer: Mapping[str, str | None],
        title: str,
        description: str,
        meta: Mapping[str, Any] | None = None,
        *,
        payment_options: str | None = "card",
    ) -> str:
        """POST /payments; returns the hosted checkout link (host not validated, §2.2).

        A `GatewayError` with code "maybe_created" (503 after Flutterwave's 28 s, or our own read
        timeout) means the checkout may exist: verify by `tx_ref` before creating it again
        (pitfall 23)."""
        if not tx_ref or not isinstance(tx_ref, str):
            raise ValueError("tx_ref is required")
        if not isinstance(amount, Money):
            raise TypeError("amount must be Money")
        if amount.amount <= 0:
            raise ValueError(f"amount must be positive, got {amount}")
        email = (customer.get("email") or "").strip()
        if not email:
            raise ValueError("customer email is required by Flutterwave")
        wire_customer = {"email": email}
        if customer.get("name"):
            wire_customer["name"] = str(customer["name"])
        if customer.get("phone"):
            wire_customer["phonenumber"] = str(customer["phone"])
        body: dict[str, Any] = {
            "tx_ref": tx_ref,
            "amount": wire_amount(amount),
            "currency": amount.currency,  # always explicit: Flutterwave defaults to NGN (pitfall 20)
            "redirect_url": redirect_url,
            "customer": wire_customer,
            "customizations": {"title": title, "description": description},
        }
        if payment_options:
            body["payment_options"] = payment_options
        if meta:
            body["meta"] = dict(meta)
        try:
            response = await self._request("POST", "/payments", "create payment", json=body)
        except GatewayError as e:
            if e.retryable and e.maybe_delivered:
                raise _maybe_created(e, tx_ref) from e
            raise
        if response.status_code >= 500:
            # 503 after Flutterwave's 28 s is not a failure: the checkout may exist (pitfall 23).
            raise _maybe_created(self._error(response, "create payment"), tx_ref)
        data = self._data(response, "create payment")
        link = data.get("link") if isinstance(data, dict) else None
        if not isinstance(link, str) or not link:
            raise self._malformed(response, "create payment", "no data.link in the answer")
        return link

    async def verify(self, transaction_id: int | str) -> Verified:
        """GET /transactions/{id}/verify. Unknown id: GatewayError code "not_found" (not retryable)."""
        tx_id = _transaction_id(transaction_id)
        response = await self._request("GET", f"/transactions/{tx_id}/verify", "verify")
        return self._verified(response, "verify")

    async def verify_by_reference(self, tx_ref: str) -> Verified | None:
        """GET /transactions/verify_by_reference?tx_ref=…; None when Flutterwave has no such ref."""
        if not tx_ref:
            raise ValueError("tx_ref is required")
        response = await self._request(
            "GET", "/transactions/verify_by_reference", "verify by reference", params={"tx_ref": tx_ref}
        )
        try:
            return self._verified(response, "verify by reference")
        except GatewayError as e:
            if e.code == "not_found":
                return None
            raise

    async def refund(self, transaction_id: int | str, amount: Money | None = None, *,
                     comments: str | None = None) -> RefundResult:
        """POST /transactions/{id}/refund; `amount=None` refunds what is left. Refusals (too much,
        already refunded, not successful) are GatewayError, not retryable.

        The answer carries no currency: the result uses `amount`'s, or the portal's currency for a
        full refund (the portal only charges in its own currency)."""
        tx_id = _transaction_id(transaction_id)
        body: dict[str, Any] = {}
        if amount is not None:
            if not isinstance(amount, Money):
                raise TypeError("amount must be Money or None")
            if amount.amount <= 0:
                raise ValueError(f"refund amount must be positive, got {amount}")
            body["amount"] = wire_amount(amount)
        if comments:
            body["comments"] = comments
        response = await self._request("POST", f"/transactions/{tx_id}/refund", "refund", json=body)
        data = self._data(response, "refund")
        if not isinstance(data, dict):
            raise self._malformed(response, "refund", "no data object")
        currency = amount.currency if amount is not None else self._default_currency
        try:
            refunded = _money(data.get("amount_refunded"), currency, exact=False)
            refund_id = _int(data.get("id"))
        except ValueError as e:
            raise self._malformed(response, "refund", str(e)) from None
        status = data.get("status")
        status = status if isinstance(status, str) else "unknown"
        return RefundResult(refund_id, status, refunded, data)

    # -- plumbing --

    async def _request(self, method: str, path: str, action: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._secret_key}", "Accept": "application/json"}
        return await send(self._http, method, f"{self.base_url}{path}", gateway=GATEWAY,
                          action=action, headers=headers, **kwargs)

    def _data(self, response: httpx.Response, action: str) -> Any:
        """The `data` of a success envelope, or the right GatewayError."""
        envelope = _envelope(response)
        ok_status = 200 <= response.status_code < 300
        if not ok_status or envelope is None or envelope.get("status") != "success":
            raise self._error(response, action, envelope)
        return envelope.get("data")

    def _verified(self, response: httpx.Response, action: str) -> Verified:
        data = self._data(response, action)
        try:
            return verified_from_data(data)
        except ValueError as e:
            raise self._malformed(response, action, str(e)) from None

    def _error(self, response: httpx.Response, action: str,
               envelope: dict[str, Any] | None = None) -> GatewayError:
        envelope = envelope if envelope is not None else _envelope(response)
        message = envelope.get("message") if envelope else None
        message = message if isinstance(message, str) and message else None
        status = response.status_code
        if message and NOT_FOUND_MESSAGE in message.lower():
            # Any HTTP status, 200 included ([U]): test/live key mismatch, or a tx_ref used as
            # an id (pitfall 21).
            return error_from_response(response, gateway=GATEWAY, action=action, code="not_found",
                                       message=message, retryable=False)
        if status == 401:
            return error_from_response(response, gateway=GATEWAY, action=action, code="unauthorized",
                                       message=message or "invalid secret key", retryable=False)
        if 200 <= status < 300:
            # A 2xx whose envelope is not a success: Flutterwave refused, the same call would too.
            return error_from_response(response, gateway=GATEWAY, action=action,
                                       message=message or "unexpected answer", retryable=False)
        return error_from_response(response, gateway=GATEWAY, action=action, message=message)

    @staticmethod
    def _malformed(response: httpx.Response, action: str, why: str) -> GatewayError:
        return error_from_response(response, gateway=GATEWAY, action=action, code="malformed",
                                   message=f"malformed answer: {why}", retryable=False)


def _maybe_created(e: GatewayError, tx_ref: str) -> GatewayError:
    return GatewayError(
        f"{e.message}; the checkout for {tx_ref} may have been created: verify by reference "
        "before creating it again",
        gateway=GATEWAY, retryable=True, status=e.status, code="maybe_created", body=e.body,
        maybe_delivered=True,
    )


def _envelope(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json(parse_float=Decimal)
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


# --- wire values ----------------------------------------------------------------------------


def wire_amount(amount: Money) -> str:
    """Major units as a string without float: 1500.00 -> "1500", 1500.50 -> "1500.50"."""
    value = amount.amount
    return str(value.quantize(Decimal(1))) if value == value.to_integral_value() else str(value)


def _transaction_id(value: int | str) -> int:
    """Flutterwave's numeric id; a tx_ref or flw_ref here is the classic mistake (pitfall 21)."""
    if isinstance(value, bool):
        raise ValueError("transaction id must be a number")
    if isinstance(value, int):
        tx_id = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        tx_id = int(value.strip())
    else:
        raise ValueError(f"transaction id must be Flutterwave's numeric id, not {value!r} "
                         "(use verify_by_reference for a tx_ref)")
    if tx_id <= 0:
        raise ValueError("transaction id must be positive")
    return tx_id


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"not an id: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    raise ValueError(f"not an id: {value!r}")


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise ValueError(f"not an amount: {value!r}")
    try:
        d = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return d


def _money(value: Any, currency: str, *, exact: bool = True) -> Money:
    """Exact amounts are cut down, never up, to cents (never overstate money received); fees and
    other informational amounts are rounded half-up."""
    d = _decimal(value)
    try:
        d = d.quantize(_CENT, rounding=ROUND_DOWN if exact else ROUND_HALF_UP)
    except InvalidOperation:
        raise ValueError(f"amount out of range: {value!r}") from None
    return Money(d, currency)


def verified_from_data(data: Any) -> Verified:
    """A `Verified` from the `data` of a verify answer; ValueError when a needed field is missing."""
    if not isinstance(data, dict):
        raise ValueError("data is not an object")
    currency = data.get("currency")
    if not isinstance(currency, str) or len(currency.strip()) != 3:
        raise ValueError(f"bad currency {currency!r}")
    currency = currency.strip().upper()
    tx_ref, status = data.get("tx_ref"), data.get("status")
    if not isinstance(tx_ref, str) or not isinstance(status, str):
        raise ValueError("tx_ref or status missing")
    amount = _money(data.get("amount"), currency)
    charged = data.get("charged_amount")
    fee = data.get("app_fee")
    card = data.get("card") if isinstance(data.get("card"), dict) else {}
    brand, last4 = card.get("type"), card.get("last_4digits")
    if isinstance(last4, int) and not isinstance(last4, bool):
        last4 = f"{last4:04d}"
    return Verified(
        id=_int(data.get("id")),
        tx_ref=tx_ref,
        status=status.strip().lower(),
        amount=amount,
        charged_amount=_money(charged, currency, exact=False) if charged is not None else amount,
        app_fee=_money(fee, currency, exact=False) if fee is not None else Money.zero(currency),
        currency=currency,
        card_brand=brand if isinstance(brand, str) else None,
        card_last4=last4 if isinstance(last4, str) else None,
        raw=data,
    )


# --- checking what verify said (§2.5 "Recommended verification procedure", step 5) --------------


def check_verified(verified: Verified, expected_tx_ref: str, expected_amount: Money) -> Verdict:
    """Is this verified transaction the payment we asked for?

    ok: status "successful", tx_ref ours, currency ours. full: ok and amount >= expected. A lower
    amount (a tampered checkout, pitfall 19) is ok but not full and listed in `problems`; more
    than expected is full, with the difference in `excess`. `charged_amount` is not compared: the
    gym does not pass fees to customers."""
    problems: list[str] = []
    if verified.status != "successful":
        problems.append(f"status is {verified.status!r}, not 'successful'")
    if verified.tx_ref != expected_tx_ref:
        problems.append(f"tx_ref is {verified.tx_ref!r}, expected {expected_tx_ref!r}")
    same_currency = verified.currency == expected_amount.currency
    if not same_currency:
        problems.append(f"currency is {verified.currency}, expected {expected_amount.currency}")
    ok = not problems
    full, excess = False, None
    if same_currency:
        if verified.amount < expected_amount:
            problems.append(f"amount {verified.amount} is less than the expected {expected_amount}")
        else:
            full = ok
            if verified.amount > expected_amount:
                excess = verified.amount - expected_amount
    return Verdict(ok=ok, full=full, problems=problems, excess=excess)


# --- webhooks -------------------------------------------------------------------------------


def _header(headers: Mapping[str, str] | Iterable[tuple[Any, Any]], name: str) -> str | None:
    items = headers.items() if hasattr(headers, "items") else headers
    for key, value in items:
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if isinstance(key, str) and key.lower() == name:
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            return value if isinstance(value, str) else None
    return None


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def webhook_authentic(headers: Mapping[str, str] | Iterable[tuple[Any, Any]], raw_body: bytes,
                      secret_hash: str) -> bool:
    """True when the webhook carries our secret hash (pitfall 17), in either scheme:

    * `verif-hash` equal to the dashboard secret hash (v3, documented), constant-time compare;
    * `flutterwave-signature` = base64(HMAC-SHA256(secret hash, raw body)) ([U], reported by
      integrators), computed over the exact bytes received, never re-serialised JSON. A
      `flutterwave-signature` equal to the secret hash itself (shown by some doc mirrors) is
      accepted too: it proves as much as `verif-hash`.

    An empty configured secret never authenticates anything."""
    if not secret_hash:
        return False
    if isinstance(raw_body, str):
        raw_body = raw_body.encode("utf-8")
    raw_body = bytes(raw_body)
    verif_hash = _header(headers, "verif-hash")
    if verif_hash is not None and _same(verif_hash.strip(), secret_hash):
        return True
    signature = _header(headers, "flutterwave-signature")
    if signature is not None:
        signature = signature.strip()
        expected = hmac.new(secret_hash.encode("utf-8"), raw_body, hashlib.sha256).digest()
        try:
            given = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            given = b""
        if hmac.compare_digest(given, expected) or _same(signature, secret_hash):
            return True
    return False


def _field(obj: dict[str, Any], *names: str) -> Any:
    for name in names:
        if obj.get(name) not in (None, ""):
            return obj[name]
    return None


def _optional_str(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"webhook {name} is not text: {value!r}")
    return str(value).strip() or None


def parse_webhook(raw_body: bytes | str) -> WebhookClaim:
    """The claim in a webhook body, across the v3 `{event, data}` envelope, the legacy flat
    `txRef/flwRef` shape and the flat PascalCase refund notification (pitfall 18).

    Anything malformed raises ValueError (and nothing else)."""
    try:
        if isinstance(raw_body, (bytes, bytearray, memoryview)):
            text = bytes(raw_body).decode("utf-8")
        elif isinstance(raw_body, str):
            text = raw_body
        else:
            raise ValueError(f"webhook body must be bytes or str, not {type(raw_body).__name__}")
        body = json.loads(text, parse_float=Decimal)
    except RecursionError:
        raise ValueError("webhook body is nested too deeply") from None
    except UnicodeDecodeError:
        raise ValueError("webhook body is not UTF-8") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"webhook body is not JSON: {e.msg}") from None
    if not isinstance(body, dict):
        raise ValueError("webhook body is not a JSON object")

    if isinstance(body.get("data"), dict) and "event" in body:
        event = body.get("event")
        if not isinstance(event, str) or not event:
            raise ValueError("webhook event is not a name")
        obj, shape = body["data"], "v3"
    elif isinstance(body.get("data"), dict):
        raise ValueError("webhook has data but no event (not a Flutterwave v3 envelope)")
    elif "AmountRefunded" in body or "TransactionId" in body:
        obj, shape, event = body, "refund", "refund"
    elif any(k in body for k in ("txRef", "flwRef", "tx_ref")):
        obj, shape, event = body, "flat", "charge.completed"
    else:
        raise ValueError("unknown webhook shape: neither {event, data} nor a flat txRef/flwRef body")

    if shape == "refund":
        raw_id = _field(obj, "TransactionId", "transaction_id")
        tx_ref = _optional_str(_field(obj, "TxRef", "tx_ref", "txRef"), "tx_ref")
        raw_amount = _field(obj, "AmountRefunded", "amount")
    else:
        raw_id = _field(obj, "id")
        tx_ref = _optional_str(_field(obj, "tx_ref", "txRef"), "tx_ref")
        raw_amount = _field(obj, "amount")

    transaction_id = None
    if raw_id is not None:
        try:
            transaction_id = _int(raw_id)
        except ValueError:
            raise ValueError(f"webhook id is not a Flutterwave v3 transaction id: {raw_id!r}"
                             ) from None
        if transaction_id <= 0:
            raise ValueError(f"webhook transaction id is not positive: {raw_id!r}")
    if transaction_id is None and tx_ref is None:
        raise ValueError("webhook names neither a transaction id nor a tx_ref")

    amount = None
    if raw_amount is not None:
        amount = _decimal(raw_amount)  # ValueError on junk
    status = _optional_str(obj.get("status"), "status")
    currency = _optional_str(obj.get("currency"), "currency")
    return WebhookClaim(
        transaction_id=transaction_id,
        tx_ref=tx_ref,
        status=status.lower() if status else None,
        amount=amount,
        currency=currency.upper() if currency else None,
        event=event,
        shape=shape,
    )


# --- lists of a period (reconciliation: portal.reconcile.cards) --------------------------------


@dataclass(frozen=True)
class ListPage:
    """One page of GET /v3/transactions or /v3/refunds: the items as sent, and meta.page_info."""

    items: list[dict[str, Any]]
    current_page: int
    total_pages: int
    total: int


async def _list_page(client: FlutterwaveClient, path: str, action: str, start: str, end: str,
                     page: int) -> ListPage:
    response = await client._request("GET", path, action, params={"from": start, "to": end, "page": page})
    data = client._data(response, action)
    info = ((_envelope(response) or {}).get("meta") or {}).get("page_info") or {}
    if not isinstance(data, list) or not isinstance(info, dict):
        raise client._malformed(response, action, "data is not a list")
    try:
        current, pages, total = _int(info.get("current_page", page)), _int(info.get("total_pages", 1)), \
            _int(info.get("total", len(data)))
    except ValueError as e:
        raise client._malformed(response, action, f"page_info: {e}") from None
    return ListPage([d for d in data if isinstance(d, dict)], current, pages, total)


async def list_transactions(client: FlutterwaveClient, start: str, end: str, page: int = 1) -> ListPage:
    """GET /v3/transactions?from=YYYY-MM-DD&to=YYYY-MM-DD&page=N: every charge of the period, any
    status (Flutterwave/Node-v3 documentation/transactions.md "Get all transactions")."""
    return await _list_page(client, "/transactions", "list transactions", start, end, page)


async def list_refunds(client: FlutterwaveClient, start: str, end: str, page: int = 1) -> ListPage:
    """GET /v3/refunds?from=&to=&page=: every refund of the period, including those made on the
    dashboard ([S]: v3 API reference "Get all refunds"; item shape as the refund answer, §2.6)."""
    return await _list_page(client, "/refunds", "list refunds", start, end, page)
