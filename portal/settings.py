"""The one settings object, read from the environment (and an optional `.env`) once.

Every variable is optional in demo mode; outside it, the secrets that matter are required. A bad
value is an error at start-up, never a silent default. `NAME_FILE` may point to a file holding
the value of a secret `NAME` (Docker/Kubernetes secrets).
"""

from __future__ import annotations

import functools
import os
import secrets
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Mapping
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ROOT = Path(__file__).resolve().parent.parent

DARAJA_LIVE = "https://api.safaricom.co.ke"
FLUTTERWAVE_LIVE = "https://api.flutterwave.com/v3"
AT_LIVE = "https://api.africastalking.com"


# What the sandbox accepts on callbacks unless told otherwise: well known, so fit only for a portal
# nobody else can reach (check_for_serving refuses them behind a public address outside demo).
SANDBOX_CALLBACK_TOKEN = "sandbox-callback-token"
SANDBOX_SECRET_HASH = "sandbox-hash"
SANDBOX_SMS_TOKEN = "sandbox-sms-token"


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class _Env:
    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ

    def str(self, name: str, default: str = "") -> str:
        file = self.environ.get(f"{name}_FILE")
        if file:
            try:
                return Path(file).read_text().strip()
            except OSError as e:
                raise SettingsError(f"{name}_FILE={file}: cannot read it ({e.strerror})") from e
        return self.environ.get(name, default).strip()

    def bool(self, name: str, default: bool) -> bool:
        raw = self.environ.get(name)
        if raw is None:
            return default
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise SettingsError(f"{name}={raw!r}: expected true/false (1/0, yes/no)")

    def days(self, name: str, default: str, maximum: int = 365) -> tuple[int, ...]:
        """A comma-separated list of day counts, e.g. REMINDER_DAYS_BEFORE=7,3,1 (empty: none)."""
        raw = self.environ.get(name, default).strip()
        try:
            values = tuple(sorted({int(part) for part in raw.split(",") if part.strip()}, reverse=True))
        except ValueError:
            raise SettingsError(f"{name}={raw!r}: expected whole numbers of days, e.g. 7,3,1") from None
        if any(not 1 <= v <= maximum for v in values):
            raise SettingsError(f"{name}={raw!r}: each must be between 1 and {maximum}")
        return values

    def clock(self, name: str, default: str) -> tuple[int, int]:
        raw = self.environ.get(name, default).strip()
        hour, _, minute = raw.partition(":")
        if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
            raise SettingsError(f"{name}={raw!r}: expected a time of day like 09:00")
        return int(hour), int(minute)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        """One of `choices`, written in any case (the choices' own case is returned)."""
        value = self.str(name) or default
        for choice in choices:
            if value.lower() == choice.lower():
                return choice
        raise SettingsError(f"{name}={value!r}: expected one of {', '.join(choices)}")

    def int(self, name: str, default: int, minimum: int = 0, maximum: int = 10**9) -> int:
        raw = self.environ.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r}: expected a whole number") from None
        if not minimum <= value <= maximum:
            raise SettingsError(f"{name}={value}: expected between {minimum} and {maximum}")
        return value

    def decimal(self, name: str, default: str, minimum: Decimal, maximum: Decimal) -> Decimal:
        raw = self.environ.get(name, default).strip() or default
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise SettingsError(f"{name}={raw!r}: expected a number such as 16 or 16.5") from None
        if not value.is_finite() or not minimum <= value <= maximum:
            raise SettingsError(f"{name}={raw}: expected between {minimum} and {maximum}")
        return value

    def amount(self, name: str, default: int, maximum: int = 100_000_000) -> Decimal:
        """A limit on payments: a whole amount of the gym's currency, at least 1."""
        return Decimal(self.int(name, default, 1, maximum))

    def url(self, name: str, default: str, schemes: tuple[str, ...]) -> str:
        value = self.str(name, default)
        if value and urlparse(value).scheme not in schemes:
            raise SettingsError(f"{name}={value!r}: expected a URL starting with {' or '.join(schemes)}://")
        return value.rstrip("/")


# Settings whose value is a secret: masked by describe() and never written to a log
# (portal.lib.logsafe); the passwords inside DATABASE_URL, QUEUE_URL and SMTP_URL are kept out too.
SECRET_SETTINGS = ("secret_key", "daraja_consumer_secret", "daraja_passkey", "daraja_callback_token",
                   "daraja_security_credential", "flutterwave_secret_key", "flutterwave_secret_hash",
                   "at_api_key", "at_callback_token", "smtp_url", "metrics_token")


@dataclass(frozen=True)
class Settings:
    database_url: str  # "" = embedded PostgreSQL under data_dir
    queue_url: str  # "" = SAQ on the same PostgreSQL
    host: str
    port: int
    public_base_url: str
    secret_key: str
    demo: bool
    sandbox: bool
    sandbox_port: int
    worker_in_process: bool
    data_dir: Path
    daraja_base_url: str
    daraja_consumer_key: str
    daraja_consumer_secret: str
    daraja_shortcode: str
    daraja_passkey: str
    daraja_callback_token: str
    daraja_allowed_ips: tuple[str, ...]
    daraja_initiator: str
    daraja_security_credential: str
    stk_timeout_seconds: int
    gateway_timeout_seconds: int
    card_checkout_minutes: int
    c2b_accept_unknown_accounts: bool
    flutterwave_base_url: str
    flutterwave_secret_key: str
    flutterwave_secret_hash: str
    at_base_url: str
    at_username: str
    at_api_key: str
    at_sender_id: str
    at_callback_token: str
    sms_receipts: bool
    smtp_url: str
    mail_from: str
    gym_name: str
    gym_address: str
    gym_phone: str
    gym_email: str
    gym_kra_pin: str
    gym_logo: str
    timezone: str
    currency: str
    member_prefix: str
    session_hours: int
    vat_rate: Decimal
    prices_include_vat: bool
    renewal_days_before: int
    pay_link_days: int
    hold_grace_days: int
    reminder_time: tuple[int, int]
    digest_time: tuple[int, int]
    reminder_days_before: tuple[int, ...]
    reminder_days_overdue: tuple[int, ...]
    reminder_final_day: int
    pay_rate_per_minute: int
    pay_bad_links_per_hour: int
    pay_attempts_per_hour: int
    login_max_failures: int
    login_window_minutes: int
    # The most one payment may be, by method (whole units of CURRENCY), and the amount above which
    # staff confirm what they typed (desk payments, M-Pesa prompts, refunds). See from_env for why.
    mpesa_max_amount: Decimal
    cash_max_amount: Decimal
    bank_max_amount: Decimal
    cheque_max_amount: Decimal
    card_max_amount: Decimal
    large_amount_confirm: Decimal
    worker_gateway_concurrency: int  # jobs at once on the gateway queue (prompts, checks, refunds, sweepers)
    worker_bulk_concurrency: int  # jobs at once on the bulk queue (PDFs, messages, daily runs)
    pay_link_sends_per_hour: int  # times staff may send one invoice's pay link to the member an hour
    metrics_token: str  # "" = no /metrics (404); else Prometheus sends it as a Bearer token
    callback_lag_alert_seconds: int  # /healthz fails when a callback has waited longer than this
    backup_dir: Path  # where `portal backup` and the nightly backup write
    backup_keep_daily: int  # the newest backup of each of this many days is kept
    backup_keep_monthly: int  # and the newest of each of this many months
    backup_copy_dir: str  # "" = none; else each backup is copied here too (a USB disk, a share)
    backup_time: tuple[int, int] | None  # the nightly backup (in TIMEZONE); None = off
    api_rate_per_minute: int  # requests one API key may make a minute (a burst of that many, then steady)
    # The check-in rule (portal/members/checkin.py); "too many days overdue" is the hold (HOLD_GRACE_DAYS).
    checkin_red_owed_amount: Decimal  # overdue above this is red at the door; 0 = no amount rule
    checkin_amber_expiry_days: int  # a membership ending within this many days is amber
    log_format: str  # "text" (readable key=value lines) or "json" (one object per line): portal.lib.logs
    log_level: str  # DEBUG, INFO, WARNING or ERROR; DEBUG adds the job and PDF steps and each HTTP call
    webhook_timeout_seconds: int  # how long one webhook delivery waits for the receiver's answer
    webhook_private_urls: bool  # webhook endpoints may be on loopback/private addresses (tests, one-PC set-ups)
    daraja_pull_nominated_number: str  # 2547XXXXXXXX Safaricom notifies about Pull Transactions (register once)
    freeze_min_days: int = 7  # a membership freeze lasts at least this many days
    freeze_max_days: int = 90  # and at most this many
    freeze_notice_days: int = 0  # and starts at least this many days after it is asked for
    # The front desk may give a discount up to this share of what it discounts, and (when not 0) up to
    # this amount; above either a manager approves (portal/billing/discounts.py).
    discount_desk_limit_percent: Decimal = Decimal("10")
    discount_desk_limit_amount: int = 0

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def cookie_secure(self) -> bool:
        return self.public_base_url.startswith("https://")

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def card_checkout_origin(self) -> str:
        """Where card forms send the browser (the CSP's form-action must allow it): Flutterwave's
        hosted checkout, or the sandbox's own checkout page next to its API."""
        if self.flutterwave_base_url == FLUTTERWAVE_LIVE:
            return "https://checkout.flutterwave.com"
        parts = urlparse(self.flutterwave_base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, dotenv: Path | None = ROOT / ".env") -> "Settings":
        if environ is None:
            environ = dict(os.environ)
            if dotenv and dotenv.exists():
                from dotenv import dotenv_values

                # Real environment variables win over the file.
                environ = {**{k: v for k, v in dotenv_values(dotenv).items() if v is not None}, **environ}
        env = _Env(environ)

        demo = env.bool("DEMO", False)
        sandbox = env.bool("SANDBOX", demo)
        port = env.int("PORT", 8000, 1, 65535)
        sandbox_port = env.int("SANDBOX_PORT", 8001, 1, 65535)
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        data_dir = Path(env.str("DATA_DIR", str(ROOT / "var"))).resolve()

        database_url = env.url("DATABASE_URL", "", ("postgres", "postgresql"))
        if database_url.startswith("postgres://"):
            database_url = "postgresql://" + database_url[len("postgres://"):]
        queue_url = env.url("QUEUE_URL", "", ("redis", "rediss", "postgres", "postgresql"))

        secret_key = env.str("SECRET_KEY")
        if not secret_key and demo:
            secret_key = _demo_secret(data_dir)
        if secret_key and len(secret_key) < 32:
            raise SettingsError("SECRET_KEY: use at least 32 characters (e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')")

        timezone = env.str("TIMEZONE", "Africa/Nairobi")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"TIMEZONE={timezone!r}: not a known time zone") from None

        currency = env.str("CURRENCY", "KES").upper()
        if len(currency) != 3 or not currency.isalpha():
            raise SettingsError(f"CURRENCY={currency!r}: expected a 3-letter ISO code")
        prefix = env.str("MEMBER_PREFIX", "PTF").upper()
        if not (1 <= len(prefix) <= 6 and prefix.isalnum()):
            raise SettingsError(f"MEMBER_PREFIX={prefix!r}: 1 to 6 letters or digits")

        return cls(
            database_url=database_url,
            queue_url=queue_url,
            host=env.str("HOST", "127.0.0.1"),
            port=port,
            public_base_url=env.url("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}", ("http", "https")),
            secret_key=secret_key,
            demo=demo,
            sandbox=sandbox,
            sandbox_port=sandbox_port,
            worker_in_process=env.bool("WORKER_IN_PROCESS", True),
            data_dir=data_dir,
            daraja_base_url=env.url("DARAJA_BASE_URL", sandbox_url if sandbox else DARAJA_LIVE, ("http", "https")),
            daraja_consumer_key=env.str("DARAJA_CONSUMER_KEY", "sandbox-key" if sandbox else ""),
            daraja_consumer_secret=env.str("DARAJA_CONSUMER_SECRET", "sandbox-secret" if sandbox else ""),
            daraja_shortcode=env.str("DARAJA_SHORTCODE", "174379" if sandbox else ""),
            daraja_passkey=env.str(
                "DARAJA_PASSKEY",
                "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919" if sandbox else "",
            ),
            daraja_callback_token=env.str("DARAJA_CALLBACK_TOKEN", SANDBOX_CALLBACK_TOKEN if sandbox else ""),
            daraja_allowed_ips=tuple(ip.strip() for ip in env.str("DARAJA_ALLOWED_IPS").split(",") if ip.strip()),
            daraja_initiator=env.str("DARAJA_INITIATOR", "testapi" if sandbox else ""),
            daraja_security_credential=env.str("DARAJA_SECURITY_CREDENTIAL", "sandbox-credential" if sandbox else ""),
            stk_timeout_seconds=env.int("STK_TIMEOUT_SECONDS", 120, 30, 3600),
            gateway_timeout_seconds=env.int("GATEWAY_TIMEOUT_SECONDS", 30, 1, 120),
            card_checkout_minutes=env.int("CARD_CHECKOUT_MINUTES", 30, 5, 24 * 60),
            c2b_accept_unknown_accounts=env.bool("C2B_ACCEPT_UNKNOWN_ACCOUNTS", True),
            flutterwave_base_url=env.url(
                "FLUTTERWAVE_BASE_URL", f"{sandbox_url}/v3" if sandbox else FLUTTERWAVE_LIVE, ("http", "https")
            ),
            flutterwave_secret_key=env.str("FLUTTERWAVE_SECRET_KEY", "FLWSECK_TEST-sandbox" if sandbox else ""),
            flutterwave_secret_hash=env.str("FLUTTERWAVE_SECRET_HASH", SANDBOX_SECRET_HASH if sandbox else ""),
            at_base_url=env.url("AT_BASE_URL", sandbox_url if sandbox else AT_LIVE, ("http", "https")),
            at_username=env.str("AT_USERNAME", "sandbox" if sandbox else ""),
            at_api_key=env.str("AT_API_KEY", "sandbox-at-key" if sandbox else ""),
            at_sender_id=env.str("AT_SENDER_ID", ""),
            at_callback_token=env.str("AT_CALLBACK_TOKEN", SANDBOX_SMS_TOKEN if sandbox else ""),
            sms_receipts=env.bool("SMS_RECEIPTS", False),
            smtp_url=_smtp_url(env),
            mail_from=env.str("MAIL_FROM", "Paul's Tropical Fitness <receipts@example.com>"),
            gym_name=env.str("GYM_NAME", "Paul's Tropical Fitness"),
            gym_address=env.str("GYM_ADDRESS", "Sarit Centre, 2nd floor\nWestlands, Nairobi"),
            gym_phone=env.str("GYM_PHONE", "0711 000 111"),
            gym_email=env.str("GYM_EMAIL", "hello@example.com"),
            gym_kra_pin=env.str("GYM_KRA_PIN", ""),
            gym_logo=env.str("GYM_LOGO", ""),
            timezone=timezone,
            currency=currency,
            member_prefix=prefix,
            session_hours=env.int("SESSION_HOURS", 12, 1, 24 * 30),
            vat_rate=env.decimal("VAT_RATE", "16", Decimal("0"), Decimal("100")),
            prices_include_vat=env.bool("PRICES_INCLUDE_VAT", True),
            renewal_days_before=env.int("RENEWAL_DAYS_BEFORE", 7, 0, 90),
            pay_link_days=env.int("PAY_LINK_DAYS", 14, 1, 365),
            hold_grace_days=env.int("HOLD_GRACE_DAYS", 14, 0, 365),
            reminder_time=env.clock("REMINDER_TIME", "09:00"),
            digest_time=env.clock("DIGEST_TIME", "07:00"),
            reminder_days_before=env.days("REMINDER_DAYS_BEFORE", "7,3,1"),
            reminder_days_overdue=env.days("REMINDER_DAYS_OVERDUE", "1,7,14"),
            reminder_final_day=env.int("REMINDER_FINAL_DAY", 21, 0, 365),
            pay_rate_per_minute=env.int("PAY_RATE_PER_MINUTE", 120, 1, 100_000),
            pay_bad_links_per_hour=env.int("PAY_BAD_LINKS_PER_HOUR", 30, 1, 100_000),
            pay_attempts_per_hour=env.int("PAY_ATTEMPTS_PER_HOUR", 10, 1, 100_000),
            login_max_failures=env.int("LOGIN_MAX_FAILURES", 5, 1, 1000),
            login_window_minutes=env.int("LOGIN_WINDOW_MINUTES", 15, 1, 24 * 60),
            # Safaricom's per-transaction limit (its M-Pesa Express FAQ; press reports 150,000 for
            # some accounts: set that if prompts above it fail). A prompt above it cannot succeed,
            # and none can be above the daily limit of 500,000.
            mpesa_max_amount=env.amount("MPESA_MAX_AMOUNT", 250_000, maximum=500_000),
            # Cash is counted and kept at the desk: this is already over three years of a 30,000
            # annual plan in notes; more should come by bank.
            cash_max_amount=env.amount("CASH_MAX_AMOUNT", 100_000),
            # A transfer or cheque is checked against the bank statement, so larger is fine (a company
            # paying for its staff); 1,000,000 is also the Central Bank of Kenya's cap on one
            # cheque (since 2020).
            bank_max_amount=env.amount("BANK_MAX_AMOUNT", 1_000_000),
            cheque_max_amount=env.amount("CHEQUE_MAX_AMOUNT", 1_000_000),
            # Ten years of a 30,000 annual plan: a card payment above it is a typo, or a stolen card
            # tried for a large sum.
            card_max_amount=env.amount("CARD_MAX_AMOUNT", 300_000),
            # Above this, what staff typed is shown back for a second look before anything is recorded
            # (about two annual memberships: rare at the desk, easy to type by one zero too many).
            large_amount_confirm=env.amount("LARGE_AMOUNT_CONFIRM", 50_000),
            worker_gateway_concurrency=env.int("WORKER_GATEWAY_CONCURRENCY", 10, 1, 100),
            worker_bulk_concurrency=env.int("WORKER_BULK_CONCURRENCY", 4, 1, 100),
            pay_link_sends_per_hour=env.int("PAY_LINK_SENDS_PER_HOUR", 3, 1, 60),
            metrics_token=env.str("METRICS_TOKEN"),
            # The sweeper retries a failing callback at 1, 3, 7 minutes: a quarter of an hour
            # behind means processing is stuck, not slow.
            callback_lag_alert_seconds=env.int("CALLBACK_LAG_ALERT_SECONDS", 900, 60, 7 * 24 * 3600),
            backup_dir=Path(env.str("BACKUP_DIR", str(data_dir / "backups"))).resolve(),
            backup_keep_daily=env.int("BACKUP_KEEP_DAILY", 7, 1, 3650),
            backup_keep_monthly=env.int("BACKUP_KEEP_MONTHLY", 12, 0, 1200),
            backup_copy_dir=str(Path(env.str("BACKUP_COPY_DIR")).resolve()) if env.str("BACKUP_COPY_DIR") else "",
            backup_time=None if env.str("BACKUP_TIME", "02:00").lower() in ("off", "") else env.clock("BACKUP_TIME", "02:00"),
            api_rate_per_minute=env.int("API_RATE_PER_MINUTE", 120, 1, 100_000),
            checkin_red_owed_amount=Decimal(env.int("CHECKIN_RED_OWED_AMOUNT", 0, 0, 100_000_000)),
            checkin_amber_expiry_days=env.int("CHECKIN_AMBER_EXPIRY_DAYS", 7, 0, 90),
            log_format=env.choice("LOG_FORMAT", "text", ("text", "json")),
            log_level=env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            webhook_timeout_seconds=env.int("WEBHOOK_TIMEOUT_SECONDS", 10, 1, 60),
            webhook_private_urls=env.bool("WEBHOOK_PRIVATE_URLS", False),
            daraja_pull_nominated_number=env.str("DARAJA_PULL_NOMINATED_NUMBER", "254708374149" if sandbox else ""),
            freeze_min_days=env.int("FREEZE_MIN_DAYS", 7, 1, 365),
            freeze_max_days=env.int("FREEZE_MAX_DAYS", 90, 1, 365),
            freeze_notice_days=env.int("FREEZE_NOTICE_DAYS", 0, 0, 90),
            discount_desk_limit_percent=env.decimal("DISCOUNT_DESK_LIMIT_PERCENT", "10", Decimal(0), Decimal(100)),
            discount_desk_limit_amount=env.int("DISCOUNT_DESK_LIMIT_AMOUNT", 0, 0, 10**7),
        )

    def check_for_serving(self) -> None:
        """What the web app and worker need beyond what the CLI and migrations need."""
        if not self.secret_key:
            raise SettingsError("SECRET_KEY is required outside demo mode (sessions and links are signed with it)")
        if not self.demo and not _is_local(self.public_base_url):
            for name, value in (("DARAJA_CALLBACK_TOKEN", self.daraja_callback_token),
                                ("FLUTTERWAVE_SECRET_HASH", self.flutterwave_secret_hash),
                                ("AT_CALLBACK_TOKEN", self.at_callback_token)):
                if value in (SANDBOX_CALLBACK_TOKEN, SANDBOX_SECRET_HASH, SANDBOX_SMS_TOKEN):
                    raise SettingsError(
                        f"{name} is the sandbox's well-known {value!r} while PUBLIC_BASE_URL={self.public_base_url} "
                        f"can be reached by others: anyone could forge payment callbacks. Set {name} to a secret "
                        "of your own, or keep SANDBOX=1 for DEMO=1 or a local PUBLIC_BASE_URL")
        if self.gym_logo:
            try:
                read_logo_file(self.gym_logo)
            except (OSError, ValueError) as e:
                raise SettingsError(f"GYM_LOGO: {e}") from None

    def describe(self) -> dict[str, str]:
        """Settings for logs, secrets masked."""
        hidden = set(SECRET_SETTINGS)
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = "***" if f.name in hidden and value else str(value)
        return out


def _is_local(url: str) -> bool:
    """Whether `url` names this machine only (loopback), so nobody else can call it."""
    import ipaddress

    host = (urlparse(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _smtp_url(env: _Env) -> str:
    """SMTP_URL as given (it may carry a password), once it names a host and a usable port."""
    value = env.url("SMTP_URL", "", ("smtp", "smtps"))
    if value:
        parts = urlparse(value)
        try:
            parts.port
        except ValueError:
            raise SettingsError("SMTP_URL: the port is not a number") from None
        if not parts.hostname:
            raise SettingsError("SMTP_URL: expected smtp://user:password@host:587 (no host given)")
    return value


def _demo_secret(data_dir: Path) -> str:
    """Demo mode keeps one random key under var/ so every local process signs alike."""
    path = data_dir / "demo-secret-key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


@functools.cache
def get_settings() -> Settings:
    return Settings.from_env()


LOGO_TYPES = {".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
LOGO_MAX_BYTES = 512 * 1024


def read_logo_file(path: str) -> tuple[bytes, str]:
    """GYM_LOGO's bytes and media type; ValueError says what is wrong with the file."""
    file = Path(path)
    kind = LOGO_TYPES.get(file.suffix.lower())
    if kind is None:
        raise ValueError(f"GYM_LOGO must be an .svg, .png or .jpg file, not {file.name}")
    data = file.read_bytes()
    if len(data) > LOGO_MAX_BYTES:
        raise ValueError(f"GYM_LOGO is {len(data)} bytes; keep it under {LOGO_MAX_BYTES}")
    return data, kind
