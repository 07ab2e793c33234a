"""The simulated Flutterwave's data: checkouts, transactions, refunds, webhook attempts, and the
wire shapes built from them (gateways.md §2.4 verify, §2.5 webhooks, §2.6 refunds).

Everything lives in one `FlutterwaveState` on `app.state.flutterwave`. Handlers run on one
asyncio loop and never await between reading and changing it, so each change is atomic without
a lock (a refund's "how much is left" check and its write happen in one step).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from portal.sandbox.config import SandboxConfig

# Test-mode account constants (values illustrative, as in gateways.md's samples).
ACCOUNT_ID = 17321
WALLET_ID = 74639
APP_FEE_RATE = Decimal("0.014")  # 1500 -> 21, as in the §2.4 sample
CENTS = Decimal("0.01")

CURRENCIES = frozenset(
    [
        "NGN",
        "KES",
        "USD",
        "GBP",
        "EUR",
        "GHS",
        "UGX",
        "TZS",
        "RWF",
        "ZAR",
        "ZMW",
        "MWK",
        "XAF",
        "XOF",
        "EGP",
        "MAD",
        "SLL",
    ]
)


@dataclass(frozen=True)
class TestCard:
    key: str
    label: str
    first6: str
    last4: str
    masked: str  # what the page shows; full numbers are never shown, stored or sent
    brand: str
    issuer: str
    country: str
    expiry: str
    auth_model: str
    status: str  # "successful" | "failed"
    processor_response: str
    note: str


# gateways.md §2.7. Expiry dates of the failing cards are not in the doc (sandbox choice).
TEST_CARDS: dict[str, TestCard] = {
    c.key: c
    for c in [
        TestCard(
            "success",
            "Mastercard (PIN)",
            "553188",
            "2950",
            "5531 88•• •••• 2950",
            "MASTERCARD",
            "MASTERCARD CREDIT",
            "NG",
            "09/32",
            "PIN",
            "successful",
            "Approved",
            "CVV 564, PIN 3310, OTP 12345 (gateways.md §2.7)",
        ),
        TestCard(
            "visa_3ds",
            "Visa (3DS)",
            "418742",
            "4246",
            "4187 42•• •••• 4246",
            "VISA",
            "VISA CREDIT",
            "NG",
            "09/32",
            "VBVSECURECODE",
            "successful",
            "Approved",
            "CVV 828, OTP 12345 (gateways.md §2.7)",
        ),
        TestCard(
            "mastercard_3ds",
            "Mastercard (3DS)",
            "543889",
            "0229",
            "5438 89•• •••• 0229",
            "MASTERCARD",
            "MASTERCARD CREDIT",
            "NG",
            "10/31",
            "VBVSECURECODE",
            "successful",
            "Approved",
            "CVV 564 (gateways.md §2.7)",
        ),
        TestCard(
            "verve",
            "Verve (PIN)",
            "506146",
            "4667",
            "5061 46•• •••• ••• 4667",
            "VERVE",
            "VERVE DEBIT",
            "NG",
            "10/29",
            "PIN",
            "successful",
            "Approved",
            "CVV 564, PIN 3310 (gateways.md §2.7)",
        ),
        TestCard(
            "insufficient_funds",
            "Insufficient funds",
            "525858",
            "6506",
            "5258 58•• •••• 6506",
            "MASTERCARD",
            "MASTERCARD DEBIT",
            "NG",
            "09/32",
            "PIN",
            "failed",
            "Insufficient funds",
            "gateways.md §2.7 (from a Flutterwave-backed processor)",
        ),
        TestCard(
            "declined",
            "Declined by issuer",
            "514301",
            "9965",
            "5143 01•• •••• 9965",
            "MASTERCARD",
            "MASTERCARD CREDIT",
            "NG",
            "09/32",
            "PIN",
            "failed",
            "Declined",
            "sandbox choice: gateways.md names no declined card number",
        ),
    ]
}

SCENARIOS: dict[str, str] = {
    "normal": "One v3 webhook with verif-hash, callback_delay after the payment.",
    "duplicate": "The same webhook (identical bytes) delivered twice.",
    "late": "The webhook goes out late_webhook_delay seconds later (the redirect comes first).",
    "none": "No webhook at all: only the redirect (and verify) tell the merchant.",
    "wrong_hash": "The verif-hash header carries a wrong value.",
    "signature": "No verif-hash; flutterwave-signature: base64 HMAC-SHA256 of the raw body.",
    "flat": "Legacy flat payload (id, txRef, flwRef, orderRef, appfee, entity...), no envelope.",
    "tampered": "Webhook and redirect (extra amount=) claim the requested amount; "
    "verify reports the 10% really charged.",
    "wrong_currency": "Webhook claims the requested currency; "
    "verify reports another (NGN, or USD when NGN was asked).",
    "verify_503": "The first verify_503_count verify calls for this transaction wait delay_503 s, "
    "then answer 503.",
    "pending_first": "The first verify_pending_count verify calls say status 'pending' (the charge "
    "is still settling); later ones tell the truth. Resend the webhook to play Flutterwave's repeat.",
    "overpaid": "Verify reports a sixth more than was asked (3,500 for 3,000): the customer paid more.",
}

_SCENARIO_SPLIT = re.compile(r"[\s,+\-]+")
_EMAIL_TAG = re.compile(r"\+fw-([a-z0-9_\-]+)@", re.IGNORECASE)


class ScenarioError(ValueError):
    pass


def parse_scenario(text: str | None) -> frozenset[str]:
    """'duplicate+flat', 'duplicate,flat' or 'duplicate-flat' -> {'duplicate', 'flat'}."""
    names = {n for n in _SCENARIO_SPLIT.split((text or "").strip().lower()) if n}
    unknown = names - SCENARIOS.keys()
    if unknown:
        raise ScenarioError(
            f"unknown scenario(s): {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}"
        )
    return frozenset(names - {"normal"})


def scenario_from_email(email: str) -> frozenset[str]:
    """A customer email tagged like `jane+fw-duplicate-flat@example.test` preselects scenarios."""
    m = _EMAIL_TAG.search(email or "")
    if not m:
        return frozenset()
    try:
        return parse_scenario(m.group(1))
    except ScenarioError:
        return frozenset()


def scenario_text(s: frozenset[str]) -> str:
    return "+".join(sorted(s)) or "normal"


def num(d: Decimal) -> int | float:
    """Amounts go on the wire as JSON numbers in major units: 1500, 1500.5."""
    return int(d) if d == d.to_integral_value() else float(d)


def now_iso() -> str:
    t = datetime.now(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def hex_id(n: int = 32) -> str:
    return secrets.token_hex(n // 2)


def urf_ref() -> str:
    """Flutterwave's URF_<epoch ms>_<digits> references (orderRef, refund flw_ref)."""
    ms = int(datetime.now(UTC).timestamp() * 1000)
    return f"URF_{ms}_{secrets.randbelow(9_000_000) + 1_000_000}"


def sign_body(secret_hash: str, body: bytes) -> str:
    """flutterwave-signature as integrators report it (gateways.md §2.5, [U])."""
    return base64.b64encode(hmac.new(secret_hash.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class Settings:
    """Run-time knobs, first copied from SandboxConfig, changeable over the control API."""

    webhook_url: str | None  # None: follow config.flutterwave_webhook_url, read at send time
    late_webhook_delay: float
    delay_503: float
    verify_503_count: int
    verify_pending_count: int
    create_503_next: int
    duplicate_tx_ref: str  # allow | reject_paid | reject
    failed_card: str  # redirect | retry
    failed_webhooks: bool
    not_found_status: int
    webhook_retries: int
    webhook_retry_interval: float
    refund_webhooks: bool
    # GET /v3/transactions and /v3/refunds: items per page (Flutterwave's sample: 44 in 5 pages).
    list_page_size: int = 10

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "duplicate_tx_ref": ("allow", "reject_paid", "reject"),
        "failed_card": ("redirect", "retry"),
    }

    @classmethod
    def from_config(cls, c: SandboxConfig) -> Settings:
        return cls(
            webhook_url=None,
            late_webhook_delay=c.flutterwave_late_webhook_delay,
            delay_503=c.flutterwave_503_delay,
            verify_503_count=1,
            verify_pending_count=1,
            create_503_next=0,
            duplicate_tx_ref=c.flutterwave_duplicate_tx_ref,
            failed_card=c.flutterwave_failed_card,
            failed_webhooks=True,
            not_found_status=c.flutterwave_not_found_status,
            webhook_retries=c.flutterwave_webhook_retries,
            webhook_retry_interval=c.flutterwave_webhook_retry_interval,
            refund_webhooks=c.flutterwave_refund_webhooks,
        )

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a JSON patch of knobs; raises TypeError/ValueError naming the bad knob."""
        for name, value in changes.items():
            if name not in self.__dataclass_fields__:
                raise ValueError(f"unknown setting {name!r}")
            current = getattr(self, name)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise TypeError(f"{name} must be true or false")
            elif isinstance(current, (int, float)):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise TypeError(f"{name} must be a number >= 0")
                value = type(current)(value)
            elif not isinstance(value, str) and not (name == "webhook_url" and value is None):
                raise TypeError(f"{name} must be a string")
            if name in self.CHOICES and value not in self.CHOICES[name]:
                raise ValueError(f"{name} must be one of {', '.join(self.CHOICES[name])}")
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class Customer:
    id: int
    email: str
    name: str | None
    phone: str | None
    created_at: str


@dataclass
class Checkout:
    """One POST /v3/payments: a hosted-checkout link waiting for the customer."""

    id: str
    tx_ref: str
    amount: Decimal
    currency: str
    redirect_url: str | None
    customer: Customer
    customizations: dict[str, Any]
    payment_options: str | None
    meta: Any
    scenario: frozenset[str]  # preselected (customer email tag)
    created_at: str
    status: str = "open"  # open | successful | failed | cancelled
    transaction_ids: list[int] = field(default_factory=list)
    last_redirect: str | None = None

    def summary(self, public_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "link": f"{public_url}/checkout/{self.id}",
            "tx_ref": self.tx_ref,
            "amount": num(self.amount),
            "currency": self.currency,
            "redirect_url": self.redirect_url,
            "customer_email": self.customer.email,
            "status": self.status,
            "scenario": scenario_text(self.scenario),
            "transaction_ids": self.transaction_ids,
            "created_at": self.created_at,
        }


@dataclass
class Refund:
    id: int
    tx_id: int
    flw_ref: str
    amount: Decimal
    comments: str | None
    status: str
    created_at: str

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account_id": ACCOUNT_ID,
            "tx_id": self.tx_id,
            "flw_ref": self.flw_ref,
            "wallet_id": WALLET_ID,
            "amount_refunded": num(self.amount),
            "status": self.status,
            "destination": "payment_source",
            "meta": {"source": "availablebalance"},
            "created_at": self.created_at,
        }


@dataclass
class Transaction:
    """A card charge attempt on a checkout. `amount`/`currency` are what the customer asked to pay
    (and what webhooks claim); `paid_amount`/`paid_currency` are what verify reports; they differ
    only in the tampered and wrong_currency scenarios."""

    id: int
    checkout_id: str
    tx_ref: str
    flw_ref: str
    order_ref: str
    amount: Decimal
    currency: str
    paid_amount: Decimal
    paid_currency: str
    status: str  # successful | failed
    card: TestCard
    customer: Customer
    meta: Any
    scenario: frozenset[str]
    ip: str
    device_fingerprint: str
    card_token: str
    created_at: str
    verify_503_left: int = 0
    verify_pending_left: int = 0
    refunds: list[Refund] = field(default_factory=list)

    @property
    def app_fee(self) -> Decimal:
        return (self.paid_amount * APP_FEE_RATE).quantize(CENTS, ROUND_HALF_UP)

    @property
    def refunded(self) -> Decimal:
        return sum((r.amount for r in self.refunds), Decimal(0))

    def verify_data(self) -> dict[str, Any]:
        """data of GET /v3/transactions/{id}/verify (gateways.md §2.4): the truth."""
        c = self.card
        settled = self.paid_amount - self.app_fee if self.status == "successful" else Decimal(0)
        return {
            "id": self.id,
            "tx_ref": self.tx_ref,
            "flw_ref": self.flw_ref,
            "device_fingerprint": self.device_fingerprint,
            "amount": num(self.paid_amount),
            "currency": self.paid_currency,
            "charged_amount": num(self.paid_amount),
            "app_fee": num(self.app_fee),
            "merchant_fee": 0,
            "processor_response": c.processor_response,
            "auth_model": c.auth_model,
            "ip": self.ip,
            "narration": "CARD Transaction ",
            "status": self.status,
            "payment_type": "card",
            "created_at": self.created_at,
            "account_id": ACCOUNT_ID,
            "card": {
                "first_6digits": c.first6,
                "last_4digits": c.last4,
                "issuer": c.issuer,
                "country": c.country,
                "type": c.brand,
                "token": self.card_token,
                "expiry": c.expiry,
            },
            "meta": self.meta,
            "amount_settled": num(settled),
            "customer": {
                "id": self.customer.id,
                "name": self.customer.name or "Anonymous customer",
                "phone_number": self.customer.phone or "N/A",
                "email": self.customer.email,
                "created_at": self.customer.created_at,
            },
        }

    def webhook_v3(self) -> dict[str, Any]:
        """The `charge.completed` envelope (gateways.md §2.5). Claims amount/currency as asked."""
        c = self.card
        body: dict[str, Any] = {
            "event": "charge.completed",
            "data": {
                "id": self.id,
                "tx_ref": self.tx_ref,
                "flw_ref": self.flw_ref,
                "device_fingerprint": self.device_fingerprint,
                "amount": num(self.amount),
                "currency": self.currency,
                "charged_amount": num(self.amount),
                "app_fee": num(self.app_fee),
                "merchant_fee": 0,
                "processor_response": c.processor_response,
                "auth_model": c.auth_model,
                "ip": self.ip,
                "narration": "CARD Transaction ",
                "status": self.status,
                "payment_type": "card",
                "created_at": self.created_at,
                "account_id": ACCOUNT_ID,
                "customer": {
                    "id": self.customer.id,
                    "name": self.customer.name or "Anonymous customer",
                    "phone_number": self.customer.phone,
                    "email": self.customer.email,
                    "created_at": self.customer.created_at,
                },
                "card": {
                    "first_6digits": c.first6,
                    "last_4digits": c.last4,
                    "issuer": c.issuer,
                    "country": c.country,
                    "type": c.brand,
                    "expiry": c.expiry,
                },
            },
            "event.type": "CARD_TRANSACTION",
        }
        if self.meta:
            body["meta_data"] = self.meta
        return body

    def webhook_flat(self) -> dict[str, Any]:
        """The legacy flat shape (gateways.md §2.5, "v2-style" accounts)."""
        return {
            "id": self.id,
            "txRef": self.tx_ref,
            "flwRef": self.flw_ref,
            "orderRef": self.order_ref,
            "amount": num(self.amount),
            "charged_amount": num(self.amount),
            "status": self.status,
            "IP": self.ip,
            "currency": self.currency,
            "appfee": num(self.app_fee),
            "customer": {
                "id": self.customer.id,
                "phone": self.customer.phone,
                "fullName": self.customer.name or "Anonymous customer",
                "email": self.customer.email,
            },
            "entity": {"card6": self.card.first6, "card_last4": self.card.last4},
            "event.type": "CARD_TRANSACTION",
        }

    def webhook_body(self) -> dict[str, Any]:
        return self.webhook_flat() if "flat" in self.scenario else self.webhook_v3()

    def summary(self) -> dict[str, Any]:
        return {
            **self.verify_data(),
            "checkout_id": self.checkout_id,
            "scenario": scenario_text(self.scenario),
            "claimed_amount": num(self.amount),
            "claimed_currency": self.currency,
            "refunded": num(self.refunded),
            "refunds": [r.wire() for r in self.refunds],
        }


def refund_webhook(tx: Transaction, refund: Refund) -> dict[str, Any]:
    """Flat PascalCase refund notification (gateways.md §2.5, [S]); `meta` is a JSON string."""
    return {
        "id": refund.id,
        "AmountRefunded": num(refund.amount),
        "status": refund.status,
        "FlwRef": tx.flw_ref,
        "destination": "payment_source",
        "comments": refund.comments or "",
        "settlement_id": "NEW",
        "meta": '{"source":"availablebalance"}',
        "createdAt": refund.created_at,
        "updatedAt": refund.created_at,
        "TransactionId": tx.id,
        "TxRef": tx.tx_ref,
        "AccountId": ACCOUNT_ID,
    }


@dataclass
class WebhookAttempt:
    id: int
    kind: str  # charge.completed | refund
    transaction_id: int
    tx_ref: str
    url: str
    headers: dict[str, str]
    body: bytes
    attempt: int
    sent_at: str
    status_code: int | None = None
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "transaction_id": self.transaction_id,
            "tx_ref": self.tx_ref,
            "url": self.url,
            "headers": self.headers,
            "body": json.loads(self.body),
            "attempt": self.attempt,
            "sent_at": self.sent_at,
            "status_code": self.status_code,
            "error": self.error,
            "delivered": self.status_code == 200,
        }


class FlutterwaveState:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        # Counters survive reset(), so a portal database never sees an id twice.
        self._tx_ids = itertools.count(4_100_001)
        self._customer_ids = itertools.count(216_519_823)
        self._refund_ids = itertools.count(8_612)
        self._attempt_ids = itertools.count(1)
        self.outbox: Any = None  # flutterwave_webhooks.Outbox, set on startup
        self.reset()

    def reset(self) -> None:
        self.settings = Settings.from_config(self.config)
        self.checkouts: dict[str, Checkout] = {}
        self.transactions: dict[int, Transaction] = {}
        self.attempts: list[WebhookAttempt] = []
        self.customers: dict[str, Customer] = {}

    @property
    def webhook_url(self) -> str:
        s = self.settings.webhook_url
        return self.config.flutterwave_webhook_url if s is None else s

    def settings_view(self) -> dict[str, Any]:
        return {**self.settings.as_dict(), "webhook_url": self.webhook_url}

    @property
    def public_url(self) -> str:
        return self.config.public_url.rstrip("/")

    def customer_for(self, email: str, name: str | None, phone: str | None) -> Customer:
        """Flutterwave keeps one customer per email; a later checkout updates name/phone."""
        key = email.lower()
        customer = self.customers.get(key)
        if customer is None:
            customer = self.customers[key] = Customer(
                next(self._customer_ids), email, name, phone, now_iso()
            )
        else:
            customer.name = name or customer.name
            customer.phone = phone or customer.phone
        return customer

    def add_checkout(self, **kw: Any) -> Checkout:
        checkout = Checkout(id=hex_id(20), created_at=now_iso(), **kw)
        self.checkouts[checkout.id] = checkout
        return checkout

    def paid_for(self, tx_ref: str) -> bool:
        return any(
            t.tx_ref == tx_ref and t.status == "successful" for t in self.transactions.values()
        )

    def charge(
        self, checkout: Checkout, card: TestCard, scenario: frozenset[str], ip: str
    ) -> Transaction:
        paid_amount, paid_currency = checkout.amount, checkout.currency
        if "tampered" in scenario:
            paid_amount = max((checkout.amount / 10).quantize(CENTS, ROUND_DOWN), CENTS)
        if "overpaid" in scenario:
            paid_amount = checkout.amount + (checkout.amount / 6).quantize(CENTS, ROUND_DOWN)
        if "wrong_currency" in scenario:
            paid_currency = "USD" if checkout.currency == "NGN" else "NGN"
        tx = Transaction(
            id=next(self._tx_ids),
            checkout_id=checkout.id,
            tx_ref=checkout.tx_ref,
            flw_ref=f"FLW-MOCK-{hex_id(32)}",
            order_ref=urf_ref(),
            amount=checkout.amount,
            currency=checkout.currency,
            paid_amount=paid_amount,
            paid_currency=paid_currency,
            status=card.status,
            card=card,
            customer=checkout.customer,
            meta=checkout.meta,
            scenario=scenario,
            ip=ip,
            device_fingerprint=hex_id(32),
            card_token=f"flw-t1nf-{hex_id(32)}-m03k",
            created_at=now_iso(),
            verify_503_left=self.settings.verify_503_count if "verify_503" in scenario else 0,
            verify_pending_left=self.settings.verify_pending_count if "pending_first" in scenario else 0,
        )
        self.transactions[tx.id] = tx
        checkout.transaction_ids.append(tx.id)
        return tx

    def find_by_ref(self, tx_ref: str) -> Transaction | None:
        """The newest successful transaction for tx_ref, else the newest of any status."""
        matches = [t for t in self.transactions.values() if t.tx_ref == tx_ref]
        ok = [t for t in matches if t.status == "successful"]
        return (ok or matches or [None])[-1]

    def add_refund(self, tx: Transaction, amount: Decimal, comments: str | None) -> Refund:
        refund = Refund(
            id=next(self._refund_ids),
            tx_id=tx.id,
            flw_ref=urf_ref(),
            amount=amount,
            comments=comments,
            status="completed",
            created_at=now_iso(),
        )
        tx.refunds.append(refund)
        return refund

    def record_attempt(self, **kw: Any) -> WebhookAttempt:
        attempt = WebhookAttempt(id=next(self._attempt_ids), sent_at=now_iso(), **kw)
        self.attempts.append(attempt)
        return attempt
