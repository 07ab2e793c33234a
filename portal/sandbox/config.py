"""The sandbox's own settings, read from SANDBOX_* environment variables (never from portal code)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass
class SandboxConfig:
    # Where the sandbox itself is reachable (used to build links such as the hosted checkout URL).
    public_url: str = field(default_factory=lambda: _env("SANDBOX_PUBLIC_URL", "http://127.0.0.1:8001"))
    # Seconds between a simulated user action and the callback it causes. Tests use 0.
    callback_delay: float = field(default_factory=lambda: float(_env("SANDBOX_CALLBACK_DELAY", "1.0")))
    # Daraja
    daraja_consumer_key: str = field(default_factory=lambda: _env("DARAJA_CONSUMER_KEY", "sandbox-key"))
    daraja_consumer_secret: str = field(default_factory=lambda: _env("DARAJA_CONSUMER_SECRET", "sandbox-secret"))
    daraja_shortcode: str = field(default_factory=lambda: _env("DARAJA_SHORTCODE", "174379"))
    daraja_passkey: str = field(
        default_factory=lambda: _env(
            "DARAJA_PASSKEY", "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
        )
    )
    daraja_token_ttl: int = field(default_factory=lambda: int(_env("SANDBOX_DARAJA_TOKEN_TTL", "3599")))
    # STK pushes the simulated phone has not answered by then get ResultCode 1037 (timeout).
    daraja_prompt_timeout: float = field(default_factory=lambda: float(_env("SANDBOX_DARAJA_PROMPT_TIMEOUT", "60")))
    daraja_max_amount: Decimal = Decimal("250000")
    # Daraja simulator knobs (see portal/sandbox/daraja.py; most can be changed at run time
    # through POST /_sandbox/daraja/settings).
    # Scenario of phone numbers that are not magic: "interactive" waits for the /phone page.
    daraja_default_scenario: str = field(
        default_factory=lambda: _env("SANDBOX_DARAJA_DEFAULT_SCENARIO", "interactive")
    )
    daraja_late_callback_delay: float = field(
        default_factory=lambda: float(_env("SANDBOX_DARAJA_LATE_CALLBACK_DELAY", "5"))
    )
    daraja_duplicate_callback_gap: float = 0.5
    daraja_callback_timeout: float = 10.0
    # "3599" (older docs, most libraries) or 3599 (newer docs).
    daraja_expires_in_as_string: bool = True
    # Official FAQ claim ([U]): a new token kills the previous one.
    daraja_new_token_revokes_old: bool = False
    # Simulated customers' M-Pesa balance: bigger payments fail with ResultCode 1.
    daraja_wallet_balance: Decimal = Decimal("150000")
    # Max seconds between the request Timestamp and Nairobi time; 0 = not enforced ([U]).
    daraja_timestamp_window: float = field(
        default_factory=lambda: float(_env("SANDBOX_DARAJA_TIMESTAMP_WINDOW", "0"))
    )
    # How long C2B simulate waits for the ValidationURL before applying ResponseType.
    daraja_c2b_validation_timeout: float = 8.0
    # Initiator name Transaction Status / Reversal must use; empty = any.
    daraja_initiator: str = field(default_factory=lambda: _env("SANDBOX_DARAJA_INITIATOR", ""))
    # Flutterwave
    flutterwave_secret_key: str = field(default_factory=lambda: _env("FLUTTERWAVE_SECRET_KEY", "FLWSECK_TEST-sandbox"))
    flutterwave_secret_hash: str = field(default_factory=lambda: _env("FLUTTERWAVE_SECRET_HASH", "sandbox-hash"))
    # Where the simulated Flutterwave delivers webhooks (set on the real dashboard in production).
    flutterwave_webhook_url: str = field(default_factory=lambda: _env("SANDBOX_FLUTTERWAVE_WEBHOOK_URL", ""))
    # Africa's Talking
    at_username: str = field(default_factory=lambda: _env("AT_USERNAME", "sandbox"))
    at_api_key: str = field(default_factory=lambda: _env("AT_API_KEY", "sandbox-at-key"))
    # Where the simulated Africa's Talking posts delivery reports (a dashboard setting in production).
    at_delivery_report_url: str = field(default_factory=lambda: _env("SANDBOX_AT_DLR_URL", ""))
    # Flutterwave knobs (also changeable at run time: POST /_sandbox/flutterwave/settings).
    # "late" webhook scenario: extra seconds before the webhook goes out.
    flutterwave_late_webhook_delay: float = field(
        default_factory=lambda: float(_env("SANDBOX_FLUTTERWAVE_LATE_DELAY", "8"))
    )
    # "verify_503" scenario and create_503 knob: seconds before the 503 (Flutterwave's is 28 s).
    flutterwave_503_delay: float = field(
        default_factory=lambda: float(_env("SANDBOX_FLUTTERWAVE_503_DELAY", "28"))
    )
    # Re-using a tx_ref on POST /v3/payments is undocumented: "allow", "reject_paid" or "reject".
    flutterwave_duplicate_tx_ref: str = field(
        default_factory=lambda: _env("SANDBOX_FLUTTERWAVE_DUPLICATE_TX_REF", "reject_paid")
    )
    # A failed card redirects with status=failed ("redirect") or lets the customer retry ("retry").
    flutterwave_failed_card: str = field(
        default_factory=lambda: _env("SANDBOX_FLUTTERWAVE_FAILED_CARD", "redirect")
    )
    # HTTP status of "No transaction was found for this id" (undocumented; commonly 400).
    flutterwave_not_found_status: int = field(
        default_factory=lambda: int(_env("SANDBOX_FLUTTERWAVE_NOT_FOUND_STATUS", "400"))
    )
    # Dashboard checkboxes: retries of failed webhook deliveries (real: 3, 30 min apart) and
    # refund webhooks (off unless Flutterwave enables them).
    flutterwave_webhook_retries: int = field(
        default_factory=lambda: int(_env("SANDBOX_FLUTTERWAVE_RETRIES", "0"))
    )
    flutterwave_webhook_retry_interval: float = 1800.0
    flutterwave_refund_webhooks: bool = field(
        default_factory=lambda: _env("SANDBOX_FLUTTERWAVE_REFUND_WEBHOOKS", "0") == "1"
    )
    # Africa's Talking knobs. Registered sender IDs (comma separated); empty accepts any `from`.
    at_sender_ids: str = field(default_factory=lambda: _env("SANDBOX_AT_SENDER_IDS", ""))
    # Unregistered `from`: "recipient" (402 InvalidSenderId per recipient) or "401" (whole request).
    at_invalid_sender: str = field(
        default_factory=lambda: _env("SANDBOX_AT_INVALID_SENDER", "recipient")
    )
    # KES per SMS part (gateways.md §3.1 sample: "KES 0.8000").
    at_cost_per_part: Decimal = Decimal("0.8000")
