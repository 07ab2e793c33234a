"""Africa's Talking SMS client, SMS part counting and delivery-report parsing (gateways.md §3).

Outbound calls go through `portal.gateways.http` (one client factory, one `GatewayError`).
A send is a success at HTTP 201 (pitfall 24); each recipient's own status is reported in the
result, never raised (pitfall 27): one bad number must not fail a whole batch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx

from portal.gateways.http import error_from_response, make_http_client, read_timeout, send
from portal.lib.phones import is_stored_form

GATEWAY = "africastalking"

# Per-recipient statusCodes (gateways.md §3.1): accepted for delivery, and worth trying again.
ACCEPTED_CODES = frozenset({100, 101, 102})
RETRYABLE_CODES = frozenset({405, 500, 501})  # InsufficientBalance (after a top-up), AT-side errors

# --- sending --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmsRecipientResult:
    number: str
    status: str  # "Success", "InvalidPhoneNumber", ... as Africa's Talking wrote it
    status_code: int | None
    message_id: str | None  # None when AT did not accept the message ("None" on the wire)
    cost: str  # as sent, e.g. "KES 0.8000" ("0" for refused numbers): AT bills to 4 places

    @property
    def accepted(self) -> bool:
        return self.status_code in ACCEPTED_CODES

    @property
    def retryable(self) -> bool:
        return self.status_code in RETRYABLE_CODES


class AfricasTalkingClient:
    """`AfricasTalkingClient(settings)`; use as `async with` or call `aclose()` when done.

    An injected `http_client` is used as is and left open (its owner closes it)."""

    def __init__(self, settings, http_client: httpx.AsyncClient | None = None) -> None:
        self.url = f"{settings.at_base_url.rstrip('/')}/version1/messaging"
        self._username = settings.at_username
        self._api_key = settings.at_api_key
        self._sender_id = settings.at_sender_id
        self._owns_client = http_client is None
        self._http = http_client or make_http_client(timeout=read_timeout(settings))

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()

    async def __aenter__(self) -> AfricasTalkingClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def send_sms(self, to: list[str], message: str) -> list[SmsRecipientResult]:
        """POST /version1/messaging, form-encoded (§3.1). Numbers written 2547XXXXXXXX get their
        '+'; anything else goes as given and AT's per-recipient status says what it thought.

        Raises GatewayError for a refused request (401 bad key/username: not retryable; 5xx,
        429, timeouts, connection failures: retryable)."""
        if isinstance(to, str):
            to = [to]
        numbers = [international(n) for n in to]
        if not numbers:
            raise ValueError("no recipients")
        if any(not n or "," in n for n in numbers):
            raise ValueError(f"bad recipient in {to!r}: empty or containing a comma")
        if not message or not message.strip():
            raise ValueError("empty message")
        form = {"username": self._username, "to": ",".join(numbers), "message": message}
        if self._sender_id:
            form["from"] = self._sender_id
        headers = {"apiKey": self._api_key, "Accept": "application/json"}
        response = await send(self._http, "POST", self.url, gateway=GATEWAY, action="send SMS",
                              data=form, headers=headers)
        status = response.status_code
        if status == 401:
            # Wrong key/username, sandbox key on the live host, a key not active yet, or an
            # unregistered sender ID (pitfall 26): a retry will not fix any of them.
            raise error_from_response(response, gateway=GATEWAY, action="send SMS",
                                      code="unauthorized", message=_plain(response), retryable=False)
        if not 200 <= status < 300:
            raise error_from_response(response, gateway=GATEWAY, action="send SMS",
                                      message=_plain(response))
        try:
            return _recipients(response.json())
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            raise error_from_response(
                response, gateway=GATEWAY, action="send SMS", code="malformed",
                message="unexpected answer (not SMSMessageData JSON)", retryable=False,
            ) from None


def international(number: str) -> str:
    """'254712345678' -> '+254712345678' (Kenyan mobiles as the portal stores them); anything else
    stripped and unchanged."""
    number = (number or "").strip()
    return "+" + number if is_stored_form(number) else number


def _plain(response: httpx.Response) -> str | None:
    text = response.text.strip()
    return text[:200] or None


def _recipients(body: Any) -> list[SmsRecipientResult]:
    entries = body["SMSMessageData"]["Recipients"]
    if not isinstance(entries, list):
        raise ValueError("Recipients is not a list")
    results = []
    for entry in entries:
        code = entry.get("statusCode")
        if isinstance(code, str) and code.strip().isdigit():
            code = int(code)
        message_id = entry.get("messageId")
        cost = entry.get("cost")
        results.append(SmsRecipientResult(
            number=str(entry.get("number") or ""),
            status=str(entry.get("status") or ""),
            status_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            message_id=message_id if isinstance(message_id, str)
            and message_id not in ("", "None") else None,
            cost=str(cost) if cost is not None else "0",
        ))
    return results


# --- counting parts -------------------------------------------------------------------------

# GSM 03.38 default alphabet; the extension table's characters take an escape plus the character.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


def _pack(widths: list[int], single: int, multi: int) -> int:
    """Parts needed: one if it all fits `single`; otherwise parts of `multi` units each, where a
    2-unit item (escape + character, or a surrogate pair) is never split across two parts."""
    if sum(widths) <= single:
        return 1
    parts, used = 1, 0
    for w in widths:
        if used + w > multi:
            parts, used = parts + 1, 0
        used += w
    return parts


def sms_parts(text: str) -> tuple[str, int]:
    """(encoding, parts): GSM-7 160 septets in one part, 153 per part when concatenated (extension
    characters count 2); anything outside GSM-7 makes the whole message UCS-2: 70 / 67 UTF-16
    units. An empty text is one (empty) part."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        return "GSM-7", _pack([2 if ch in GSM7_EXTENSION else 1 for ch in text], 160, 153)
    return "UCS-2", _pack([2 if ord(ch) > 0xFFFF else 1 for ch in text], 70, 67)


_GSM7_REPLACEMENTS = {
    # quotes and primes
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
    "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"',
    "\u00bb": '"',
    # hyphens, dashes, minus
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-",
    "\u00a0": " ", "\u2007": " ", "\u2009": " ", "\u200a": " ", "\u202f": " ", "\u2002": " ",
    "\u2003": " ", "\t": " ",
    "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": "",
    "\u2026": "...", "\u2022": "*", "\u00b7": ".",
}
_GSM7_TABLE = str.maketrans(_GSM7_REPLACEMENTS)


def gsm7_safe(text: str) -> str:
    """Replace the usual non-GSM characters that sneak in from word processors and phones (curly
    quotes, en/em dashes, non-breaking and thin spaces, zero-width characters, the ellipsis) with
    GSM-7 ones, so a message is not sent as UCS-2 at less than half the length per part.
    Other characters (emoji, most accented letters) are left alone."""
    return (text or "").translate(_GSM7_TABLE)


# --- delivery reports (§3.2) ----------------------------------------------------------------

FINAL_STATUSES = {"success": "Success", "failed": "Failed", "rejected": "Rejected"}
INTERMEDIATE_STATUSES = {"sent": "Sent", "submitted": "Submitted", "buffered": "Buffered"}


@dataclass(frozen=True)
class DeliveryReport:
    message_id: str
    status: str  # Sent | Submitted | Buffered | Success | Failed | Rejected (or AT's new words)
    final: bool
    failure_reason: str | None
    phone: str | None
    network_code: str | None
    retry_count: int | None
    raw: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def delivered(self) -> bool:
        return self.status == "Success"


_TEXT = re.compile(r"^[\x20-\x7e]*$")


def _one(value: Any) -> str | None:
    """A form value as text: lists (parse_qs) give their first item, bytes are decoded."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ValueError(f"delivery report field is not text: {value!r}")
    return str(value).strip() or None


def parse_delivery_report(form: Mapping[str, Any] | bytes | str) -> DeliveryReport:
    """The fields of an AT delivery report (form-encoded POST): a Mapping (one value or a list of
    values per name) or the raw body. Missing `id`/`status` or anything not a form raises
    ValueError; unknown statuses are kept as given and treated as not final."""
    if isinstance(form, (bytes, str)):
        try:
            text = form.decode("utf-8") if isinstance(form, bytes) else form
        except UnicodeDecodeError:
            raise ValueError("delivery report is not UTF-8") from None
        form = dict(parse_qsl(text, keep_blank_values=True))
    if not isinstance(form, Mapping):
        raise ValueError(f"delivery report must be form fields, not {type(form).__name__}")
    values: dict[str, str] = {}
    for key, value in form.items():
        if isinstance(key, bytes):
            key = key.decode("utf-8", "replace")
        if not isinstance(key, str):
            continue
        text = _one(value)
        if text is not None:
            values[key] = text
    if any("\x00" in key or "\x00" in value for key, value in values.items()):
        raise ValueError("delivery report has a NUL character in it")  # AT sends none; the database holds none
    message_id, status = values.get("id"), values.get("status")
    if not message_id:
        raise ValueError("delivery report has no id")
    if not status:
        raise ValueError("delivery report has no status")
    if len(message_id) > 200 or not _TEXT.match(message_id):
        raise ValueError(f"delivery report id looks wrong: {message_id[:50]!r}")
    key = status.lower()
    canonical = FINAL_STATUSES.get(key) or INTERMEDIATE_STATUSES.get(key) or status
    retry_count = None
    raw_retry = values.get("retryCount")
    if raw_retry is not None and raw_retry.isascii() and raw_retry.isdigit() and len(raw_retry) < 6:
        retry_count = int(raw_retry)
    return DeliveryReport(
        message_id=message_id,
        status=canonical,
        final=key in FINAL_STATUSES,
        failure_reason=values.get("failureReason"),
        phone=values.get("phoneNumber"),
        network_code=values.get("networkCode"),
        retry_count=retry_count,
        raw=values,
    )
