"""No secret and no pay-link token in any log line.

Gateways authenticate by a secret in the URL (Daraja and Africa's Talking callbacks) and members
pay through a secret link (/pay/<token>): whoever reads an access log with those paths can forge
M-Pesa credits or pay pages. Every log record of the process (uvicorn's access and error logs,
ours, the worker's, httpx's, SAQ's) is rewritten where it is made, by a log record factory, so no
handler, formatter or library can write the raw value: path tokens become `[redacted]` (what is
left reads like the route template), and so does any secret setting's value wherever it appears.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import quote, urlparse

PLACEHOLDER = "[redacted]"

# The routes whose path carries a secret, up to the secret segment (tests check this list against
# every route with a {token} parameter). `/pay/card/return` is the card gateway's fixed return
# address, not a link.
_SLASH = r"(?:/|%2[fF])"
# The secret segment, percent-escapes included (an escaped slash too: more redacted, never less).
_SEGMENT = r"(?:[^/\s?#&\"'<>%]|%[0-9A-Fa-f]{2})+"
TOKEN_PATHS = [
    r"/pay/(?!card/return\b)",
    r"/hooks/daraja/stk/",
    r"/hooks/daraja/c2b/confirmation/",
    r"/hooks/daraja/c2b/validation/",
    r"/hooks/daraja/result/",
    r"/hooks/daraja/timeout/",
    r"/hooks/sms/delivery/",
]
# A route's template (/pay/{token}, as request lines give it) names the token and holds none: kept.
_TEMPLATE = r"(?!\{\w+\}(?:[/?#\s\"']|$))"
_PATHS = re.compile("(" + "|".join(p.replace("/", _SLASH) for p in TOKEN_PATHS) + ")" + _TEMPLATE + _SEGMENT)

# Values shorter than this are not searched for: replacing a 3-character string everywhere would
# wreck every log line, and settings refuse no such secret anyway (a callback token that short is
# guessable whatever the logs say).
MIN_SECRET_LENGTH = 8

_lock = threading.Lock()
_secrets: set[str] = set()
_secrets_pattern: re.Pattern | None = None
_original_factory = None


# API keys (portal/api/keys.py) are recognisable by their prefix: one sent where it does not
# belong (in a query string, pasted in a note, in an exception's text) is redacted wherever it
# appears. Their place is the Authorization header, which no log line writes (uvicorn's access log
# has the request line and status only).
_API_KEYS = re.compile(r"ptf_live_[A-Za-z0-9_\-]{8,}")
# Webhook endpoints' signing secrets (portal/webhooks.py) are Standard Webhooks secrets: whsec_
# and base64. They live in the database to sign with; in a log line they are redacted likewise.
_WEBHOOK_SECRETS = re.compile(r"whsec_[A-Za-z0-9+/=]{8,}")


def redact(text: str) -> str:
    """`text` with path tokens, API keys and known secret values replaced by the placeholder."""
    text = _PATHS.sub(lambda m: m.group(1) + PLACEHOLDER, text)
    text = _API_KEYS.sub(PLACEHOLDER, text)
    text = _WEBHOOK_SECRETS.sub(PLACEHOLDER, text)
    pattern = _secrets_pattern
    if pattern is not None:
        text = pattern.sub(PLACEHOLDER, text)
    return text


def forget_secrets(values) -> None:
    """Add secret values to what is redacted (with their URL-quoted forms)."""
    global _secrets_pattern
    with _lock:
        for value in values:
            if value and len(value) >= MIN_SECRET_LENGTH:
                _secrets.update({value, quote(value, safe=""), quote(value)})
        if _secrets:
            # Longest first, so a secret containing another is replaced whole.
            _secrets_pattern = re.compile("|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True)))


def secret_values(settings) -> list[str]:
    """Every secret setting's value, and the passwords inside the database, queue and SMTP URLs."""
    from portal.settings import SECRET_SETTINGS

    values = [getattr(settings, name) for name in SECRET_SETTINGS]
    for url in (settings.database_url, settings.queue_url, settings.smtp_url):
        try:
            password = urlparse(url).password if url else None
        except ValueError:
            password = None
        if password:
            values.append(password)
    return [v for v in values if isinstance(v, str) and v]


def _clean(value):
    if isinstance(value, (int, float)) or value is None:
        return value  # keeps %d and %.1f working; numbers are no secrets
    text = value if isinstance(value, str) else str(value)
    cleaned = redact(text)
    return value if cleaned == text else cleaned


def _redacting_factory(*args, **kwargs) -> logging.LogRecord:
    record = _original_factory(*args, **kwargs)
    try:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        elif isinstance(record.msg, dict):
            # A structlog event (portal.lib.logs) stays a dict for its formatter, its values redacted.
            record.msg = {k: _clean(v) for k, v in record.msg.items()}
        elif record.msg is not None:
            record.msg = _clean(record.msg)
        if isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        elif record.args:
            # Argument by argument: formatters such as uvicorn's access formatter unpack them.
            record.args = tuple(_clean(a) for a in record.args)
        if record.args:
            # A secret split between the format and an argument ("/pay/%s", token) shows only
            # once they are put together: then the line is kept as its redacted text.
            message = record.getMessage()
            if redact(message) != message:
                record.msg, record.args = redact(message), ()
        if record.exc_info and record.exc_info[0] is not None:
            # Formatters use exc_text when it is set: the traceback is rendered (and redacted) here.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
    except Exception:  # a log line must never break the code that logs it
        record.msg, record.args = "[log line dropped: it could not be checked for secrets]", ()
        record.exc_info, record.exc_text = None, None
    return record


def install(settings=None) -> None:
    """Redact every log record of this process from now on (idempotent); with settings, their
    secret values too."""
    global _original_factory
    with _lock:
        if _original_factory is None:
            _original_factory = logging.getLogRecordFactory()
            logging.setLogRecordFactory(_redacting_factory)
    if settings is not None:
        forget_secrets(secret_values(settings))
