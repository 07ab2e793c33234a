"""In-memory state of the Daraja simulator: records, scenario table, runtime settings, ID makers.

Everything lives in one `DarajaStore` hung on `app.state.daraja` (created in on_startup). All
handlers and background tasks run on the server's single event loop; multi-step transitions
(check-then-set on a pending STK request, subscriber lock) are done under `store.lock` and
never hold it across network I/O.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import string
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import msgspec

from portal.sandbox.config import SandboxConfig

_wire = msgspec.json.Encoder(decimal_format="number")

# Kenya has no daylight saving time: EAT is always UTC+3.
EAT = timezone(timedelta(hours=3), "EAT")


def now_eat() -> datetime:
    return datetime.now(EAT)


def stamp(dt: datetime) -> str:
    """YYYYMMDDHHmmss, the format of Timestamp, TransactionDate and TransTime."""
    return dt.strftime("%Y%m%d%H%M%S")


# --------------------------------------------------------------------------------------------
# Scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    # ResultCode the simulated customer produces; None = "interactive" (the person decides).
    result_code: int | None
    # normal | late | twice | before_response | none | after_slow_response | malformed_first
    # | nested_first
    delivery: str
    summary: str
    # What STK Query reports instead of the real ResultCode (the sandbox-contradiction pitfall).
    query_result_code: int | None = None
    # STK Query never settles it: "The transaction is being processed" for ever (a quiet prompt:
    # only Transaction Status knows how it ended).
    query_pending: bool = False


RESULT_DESCS: dict[int, str] = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    1019: "Transaction has expired",
    1032: "Request cancelled by user",
    1037: "DS timeout user cannot be reached",
    2001: "The initiator information is invalid.",
    2028: "The request is not permitted according to product assignment",
}

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario("success", 0, "normal", "Customer pays at once; ResultCode 0 with CallbackMetadata."),
        Scenario("cancelled", 1032, "normal", "Customer presses Cancel: ResultCode 1032."),
        Scenario("timeout", 1037, "normal", "Phone unreachable / no answer: ResultCode 1037."),
        Scenario("wrong_pin", 2001, "normal", "Customer enters a wrong PIN: ResultCode 2001."),
        Scenario("insufficient_funds", 1, "normal", "Balance insufficient: ResultCode 1."),
        Scenario("expired", 1019, "normal", "Transaction expired before processing: ResultCode 1019."),
        Scenario(
            "late_callback", 0, "late",
            "Paid at once (STK Query already final) but the callback arrives "
            "late_callback_delay seconds after callback_delay.",
        ),
        Scenario(
            "callback_twice", 0, "twice",
            "Paid; the identical callback is delivered twice (duplicate_callback_gap apart).",
        ),
        Scenario(
            "callback_first", 0, "before_response",
            "Paid; the callback is POSTed (and answered) before the processrequest HTTP response "
            "is returned.",
        ),
        Scenario("no_callback", 0, "none", "Paid, but no callback is ever sent: only STK Query shows it."),
        Scenario(
            "malformed_first", 0, "malformed_first",
            "Paid; a broken copy of the callback (CallbackMetadata without its Amount) is POSTed "
            "first, then the genuine one (a gateway sending garbage before the real answer).",
        ),
        Scenario(
            "nested_first", 0, "nested_first",
            "Paid; a body of 50,000 nested JSON arrays is POSTed to the CallbackURL first, then the "
            "genuine callback (a body too deep for an ordinary JSON reader).",
        ),
        Scenario(
            "slow_response", 0, "after_slow_response",
            "The processrequest HTTP answer is held slow_response_delay seconds (longer than a "
            "client's read timeout), yet the prompt reaches the phone and is paid: the callback "
            "follows the late answer.",
        ),
        Scenario(
            "query_contradicts", 0, "normal",
            "Paid (callback ResultCode 0) but STK Query answers ResultCode \"1032\", like the "
            "flaky real sandbox.",
            query_result_code=1032,
        ),
        Scenario(
            "quiet", 0, "none",
            "Paid, but no callback is ever sent and STK Query answers \"The transaction is being "
            "processed\" for ever: only Transaction Status (by the push's MerchantRequestID) tells.",
            query_pending=True,
        ),
        Scenario(
            "quiet_cancelled", 1032, "none",
            "Cancelled on the phone (1032), no callback, STK Query \"being processed\" for ever: "
            "only Transaction Status tells.",
            query_pending=True,
        ),
        Scenario(
            "interactive", None, "normal",
            "The prompt waits on the simulated phone (/phone) until Accept (any PIN; 0000 = wrong "
            "PIN 2001) or Decline (1032); unanswered after prompt_timeout -> 1037.",
        ),
    ]
}

# Magic phone numbers (PhoneNumber of the push) -> scenario.
MAGIC_PHONES: dict[str, str] = {
    "254708374149": "success",  # Safaricom's documented sandbox test MSISDN
    "254700000001": "success",
    "254700000002": "cancelled",
    "254700000003": "timeout",
    "254700000004": "wrong_pin",
    "254700000005": "insufficient_funds",
    "254700000006": "late_callback",
    "254700000007": "callback_twice",
    "254700000008": "callback_first",
    "254700000009": "no_callback",
    "254700000010": "interactive",
    "254700000011": "expired",
    "254700000012": "query_contradicts",
    "254700000013": "slow_response",
    "254700000014": "malformed_first",
    "254700000015": "nested_first",
}

# Magic amounts (used when the phone number is not magic and not bound by the control API).
MAGIC_AMOUNTS: dict[int, str] = {
    1032: "cancelled",
    1037: "timeout",
    2001: "wrong_pin",
    1019: "expired",
}

WRONG_PIN = "0000"

# --------------------------------------------------------------------------------------------
# Runtime settings (initialised from SandboxConfig; tests change them via the control API)


@dataclass
class Settings:
    callback_delay: float = 0.0
    prompt_timeout: float = 60.0
    default_scenario: str = "interactive"
    late_callback_delay: float = 5.0
    # How long the "slow_response" scenario holds the processrequest answer (the portal's read
    # timeout is 30 s by default).
    slow_response_delay: float = 35.0
    duplicate_callback_gap: float = 0.5
    callback_timeout: float = 10.0
    token_ttl: int = 3599
    expires_in_as_string: bool = True
    new_token_revokes_old: bool = False
    # "uniform": 404.001.03 on every API; "per_api": 400.003.01 on C2B and Transaction Status.
    invalid_token_style: str = "uniform"
    max_amount: int = 250000
    # Amounts above this fail with ResultCode 1 when the customer would pay.
    wallet_balance: int = 150000
    # "reject" -> 400.002.02 Invalid Amount; "truncate" -> whole shillings, fraction dropped.
    fractional_amounts: str = "reject"
    # Seconds the request Timestamp may differ from Nairobi time; 0 = not enforced ([U]).
    timestamp_window: float = 0.0
    require_https: bool = False
    include_balance_item: bool = True
    legacy_desc_prefix: bool = False
    query_description_typo: bool = False
    # 0 = off; otherwise business API calls per second before 500.003.02 Spike Arrest.
    spike_arrest_tps: int = 0
    c2b_external_validation: bool = True
    c2b_validation_timeout: float = 8.0
    c2b_register_once: bool = False
    c2b_empty_as_null: bool = False
    # STK payments to a shortcode with a registered ConfirmationURL also get a C2B confirmation.
    stk_also_c2b: bool = True
    # "result" | "queue_timeout" | "queue_timeout_then_result" | "none" for Transaction Status / Reversal.
    async_result_mode: str = "result"
    # Empty = any Initiator accepted; else other names get ResultCode 2001 in the Result.
    initiator: str = ""
    # Transaction Status Results: POSTed this many times (a gateway repeating itself), the first
    # status_result_delay s after callback_delay (a late Result).
    status_result_times: int = 1
    status_result_delay: float = 0.0
    # Transaction Status and Reversal: the HTTP answer is held this many seconds, the request taken
    # all the same (its Result still goes): a caller that stops waiting first never learns the ids.
    async_ack_delay: float = 0.0

    CHOICES = {
        "invalid_token_style": {"uniform", "per_api"},
        "fractional_amounts": {"reject", "truncate"},
        "async_result_mode": {"result", "queue_timeout", "queue_timeout_then_result", "none"},
    }

    @classmethod
    def from_config(cls, config: SandboxConfig) -> Settings:
        return cls(
            callback_delay=float(config.callback_delay),
            prompt_timeout=float(config.daraja_prompt_timeout),
            default_scenario=config.daraja_default_scenario,
            late_callback_delay=float(config.daraja_late_callback_delay),
            duplicate_callback_gap=float(config.daraja_duplicate_callback_gap),
            callback_timeout=float(config.daraja_callback_timeout),
            token_ttl=int(config.daraja_token_ttl),
            expires_in_as_string=bool(config.daraja_expires_in_as_string),
            new_token_revokes_old=bool(config.daraja_new_token_revokes_old),
            max_amount=int(config.daraja_max_amount),
            wallet_balance=int(config.daraja_wallet_balance),
            timestamp_window=float(config.daraja_timestamp_window),
            c2b_validation_timeout=float(config.daraja_c2b_validation_timeout),
            initiator=config.daraja_initiator,
        )

    def update(self, changes: dict[str, Any]) -> list[str]:
        """Apply a partial update; returns error strings (nothing is changed if any)."""
        errors: list[str] = []
        staged: dict[str, Any] = {}
        types = {f.name: f.type for f in fields(self)}
        for key, value in changes.items():
            if key not in types:
                errors.append(f"unknown setting {key!r}")
                continue
            kind = types[key]
            try:
                if kind == "bool":
                    if not isinstance(value, bool):
                        raise ValueError("expected true/false")
                    staged[key] = value
                elif kind == "int":
                    staged[key] = int(value)
                elif kind == "float":
                    staged[key] = float(value)
                else:
                    staged[key] = str(value)
            except (TypeError, ValueError) as exc:
                errors.append(f"{key}: {exc}")
                continue
            if key in self.CHOICES and staged[key] not in self.CHOICES[key]:
                errors.append(f"{key}: one of {sorted(self.CHOICES[key])}")
            if key == "default_scenario" and staged[key] not in SCENARIOS:
                errors.append(f"default_scenario: one of {sorted(SCENARIOS)}")
        if not errors:
            for key, value in staged.items():
                setattr(self, key, value)
        return errors

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Records


@dataclass
class StkRequest:
    merchant_request_id: str
    checkout_request_id: str
    business_short_code: str
    transaction_type: str
    amount: int
    party_a: str
    party_b: str
    phone: str
    callback_url: str
    account_reference: str
    transaction_desc: str
    scenario: str
    created_at: float = field(default_factory=time.time)
    expires_at: float | None = None  # wall-clock deadline of an interactive prompt
    state: str = "pending"  # pending | resolved
    result_code: int | None = None
    result_desc: str | None = None
    resolved_by: str | None = None  # scenario | phone | control | timeout
    resolved_at: float | None = None
    receipt: str | None = None
    transaction_date: int | None = None
    callback_body: dict | None = None
    callbacks_sent: int = 0

    @property
    def delivery(self) -> str:
        return SCENARIOS[self.scenario].delivery

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["callback_delivery"] = self.delivery
        if self.callback_body is not None:  # as it goes on the wire (Decimals as numbers)
            d["callback_body"] = msgspec.json.decode(_wire.encode(self.callback_body))
        return d


@dataclass
class C2BRegistration:
    short_code: str
    response_type: str
    confirmation_url: str
    validation_url: str
    version: str  # v1 (MSISDN hashed) | v2 (MSISDN masked)
    registered_at: float = field(default_factory=time.time)


@dataclass
class C2BPayment:
    trans_id: str
    short_code: str
    command_id: str
    amount: int
    msisdn: str
    bill_ref_number: str
    via: str  # simulate-v1 | simulate-v2 | paybill-page | stk
    trans_time: str
    state: str = "processing"  # processing | completed | rejected | cancelled
    validation: str = "skipped"  # skipped | accepted | rejected | timeout | unreachable
    validation_result_code: str | None = None
    third_party_trans_id: str = ""
    notified: bool = False
    note: str = ""
    created_at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LedgerEntry:
    """Money that reached a shortcode: the book Transaction Status and Reversal look at."""

    receipt: str
    short_code: str
    msisdn: str
    amount: int
    completed_at: datetime
    source: str  # stk | c2b
    reversed_by: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["completed_at"] = stamp(self.completed_at)
        return d


@dataclass
class AsyncRequest:
    kind: str  # transaction_status | reversal
    originator_conversation_id: str
    conversation_id: str
    body: dict
    result_url: str
    queue_timeout_url: str
    created_at: float = field(default_factory=time.time)
    state: str = "queued"  # queued | done
    result_code: Any = None
    result_body: dict | None = None
    posted_to: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Delivery:
    """One HTTP POST the simulator made to somebody's URL."""

    id: int
    kind: str  # stk_callback | c2b_validation | c2b_confirmation | result | queue_timeout
    ref: str  # CheckoutRequestID / TransID / ConversationID
    url: str
    body: dict  # the JSON that was sent, decoded
    raw: str = ""  # the exact bytes that were sent
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    status_code: int | None = None
    response_body: str | None = None
    error: str | None = None
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


@dataclass
class DarajaStore:
    config: SandboxConfig
    settings: Settings
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    http: httpx.AsyncClient | None = None
    tokens: dict[str, float] = field(default_factory=dict)  # token -> monotonic expiry
    stk: dict[str, StkRequest] = field(default_factory=dict)  # by CheckoutRequestID
    phone_bindings: dict[str, str] = field(default_factory=dict)  # msisdn -> scenario
    registrations: dict[str, C2BRegistration] = field(default_factory=dict)
    c2b: dict[str, C2BPayment] = field(default_factory=dict)  # by TransID
    ledger: dict[str, LedgerEntry] = field(default_factory=dict)  # by receipt
    async_requests: dict[str, AsyncRequest] = field(default_factory=dict)  # by ConversationID
    deliveries: list[Delivery] = field(default_factory=list)
    balances: dict[str, Decimal] = field(default_factory=dict)  # shortcode -> utility balance
    tasks: set[asyncio.Task] = field(default_factory=set)
    recent_calls: deque = field(default_factory=lambda: deque(maxlen=10000))
    used_ids: set[str] = field(default_factory=set)
    _delivery_seq: int = 0

    def next_delivery_id(self) -> int:
        self._delivery_seq += 1
        return self._delivery_seq

    def clear(self) -> None:
        """Forget everything (tokens included) and restore settings from the config."""
        self.settings = Settings.from_config(self.config)
        for coll in (self.tokens, self.stk, self.phone_bindings, self.registrations, self.c2b,
                     self.ledger, self.async_requests, self.balances):
            coll.clear()
        self.deliveries.clear()
        self.recent_calls.clear()
        self.used_ids.clear()
        self._delivery_seq = 0

    def scenario_for(self, phone: str, amount: int) -> str:
        if phone in self.phone_bindings:
            return self.phone_bindings[phone]
        if phone in MAGIC_PHONES:
            return MAGIC_PHONES[phone]
        if amount in MAGIC_AMOUNTS:
            return MAGIC_AMOUNTS[amount]
        return self.settings.default_scenario

    def pending_for_phone(self, phone: str) -> list[StkRequest]:
        return [r for r in self.stk.values() if r.phone == phone and r.state == "pending"]

    def unique(self, make) -> str:
        """make() or make(attempt) -> str; retried until the value was never handed out."""
        takes_attempt = make.__code__.co_argcount > 0
        for attempt in range(1000):
            value = make(attempt) if takes_attempt else make()
            if value not in self.used_ids:
                self.used_ids.add(value)
                return value
        raise RuntimeError("could not make a unique id")


# --------------------------------------------------------------------------------------------
# Identifier formats (see gateways.md §1.4 "Observed ID formats")

_ALNUM = string.ascii_uppercase + string.digits
_DAY_CHARS = "123456789ABCDEFGHIJKLMNOPQRSTUV"  # day 1..31


def receipt_prefix(dt: datetime) -> str:
    """Year letter (2019=N, 2023=R, 2025=T), month letter (A=Jan), day char (1-9, A=10 ...)."""
    year = chr(ord("A") + max(0, min(25, dt.year - 2006)))
    return year + chr(ord("A") + dt.month - 1) + _DAY_CHARS[dt.day - 1]


def make_receipt(dt: datetime | None = None) -> str:
    """A realistic 10-character M-Pesa receipt such as TK3AB1CD2E."""
    dt = dt or now_eat()
    return receipt_prefix(dt) + "".join(secrets.choice(_ALNUM) for _ in range(7))


def _hex(n: int) -> str:
    return secrets.token_hex((n + 1) // 2)[:n]


def _digits(n: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(n))


def make_request_id() -> str:
    """f1e2-4b95-a71d-b30d3cdbb7a7942864 style (MerchantRequestID, requestId, Originator...)."""
    return f"{_hex(4)}-{_hex(4)}-{_hex(4)}-{_hex(12)}{_digits(6)}"


def make_checkout_request_id(phone: str, attempt: int = 0) -> str:
    """ws_CO_ + DDMMYYYYHHmmss + 3-digit millis + 9-digit subscriber number.

    `attempt` moves the clock on by that many milliseconds, so two pushes to one phone within
    the same millisecond still get distinct IDs.
    """
    dt = now_eat() + timedelta(milliseconds=attempt)
    return f"ws_CO_{dt.strftime('%d%m%Y%H%M%S')}{dt.microsecond // 1000:03d}{phone[3:]}"


def make_conversation_id() -> str:
    return f"AG_{now_eat().strftime('%Y%m%d')}_{_hex(20)}"


def make_token() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(28))


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode()


def hash_msisdn(msisdn: str) -> str:
    """C2B v1 privacy mode: SHA-256 hex digest of the 12-digit MSISDN."""
    return hashlib.sha256(msisdn.encode()).hexdigest()


def mask_msisdn(msisdn: str) -> str:
    """C2B v2 privacy mode: '2547 ***** 149' (first four and last three digits kept)."""
    return f"{msisdn[:4]} ***** {msisdn[-3:]}"


_FIRST_NAMES = ["JOHN", "MARY", "PETER", "GRACE", "JAMES", "FAITH", "BRIAN", "MERCY"]


def customer_first_name(msisdn: str) -> str:
    return _FIRST_NAMES[int(hashlib.sha256(msisdn.encode()).hexdigest(), 16) % len(_FIRST_NAMES)]
