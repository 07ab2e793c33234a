"""The URLs Daraja calls us back on: PUBLIC_BASE_URL + /hooks/daraja/... + the secret token.

Daraja signs nothing, so the secret path token (DARAJA_CALLBACK_TOKEN) is what tells a real
callback from a forged one (DESIGN.md §5). Daraja refuses callback URLs containing mpesa,
m-pesa, safaricom, exe, exec, cmd, sql or query in any case; the paths below avoid them, and a
base URL or token that contains one is refused here, at build time, with the variable named
(a random token can contain "exe" or "sql" by chance).
"""

from __future__ import annotations

from urllib.parse import quote

from portal.gateways.daraja import banned_url_word
from portal.settings import Settings, SettingsError

PREFIX = "/hooks/daraja"


def _build(settings: Settings, path: str) -> str:
    token = settings.daraja_callback_token
    if not token:
        raise SettingsError("DARAJA_CALLBACK_TOKEN is required: Daraja callbacks are authenticated "
                            "by this secret in their URL")
    word = banned_url_word(token)
    if word:
        raise SettingsError(f"DARAJA_CALLBACK_TOKEN contains {word!r}, which Daraja refuses in "
                            "callback URLs: choose another token")
    base = settings.public_base_url.rstrip("/")
    word = banned_url_word(base)
    if word:
        raise SettingsError(f"PUBLIC_BASE_URL contains {word!r}, which Daraja refuses in "
                            "callback URLs")
    return f"{base}{PREFIX}/{path}/{quote(token, safe='')}"


def stk_callback_url(settings: Settings) -> str:
    """CallBackURL of STK pushes."""
    return _build(settings, "stk")


def c2b_confirmation_url(settings: Settings) -> str:
    return _build(settings, "c2b/confirmation")


def c2b_validation_url(settings: Settings) -> str:
    return _build(settings, "c2b/validation")


def result_url(settings: Settings) -> str:
    """ResultURL of Transaction Status and Reversal requests."""
    return _build(settings, "result")


def timeout_url(settings: Settings) -> str:
    """QueueTimeOutURL of Transaction Status and Reversal requests."""
    return _build(settings, "timeout")


def all_callback_urls(settings: Settings) -> dict[str, str]:
    return {
        "stk": stk_callback_url(settings),
        "c2b_confirmation": c2b_confirmation_url(settings),
        "c2b_validation": c2b_validation_url(settings),
        "result": result_url(settings),
        "timeout": timeout_url(settings),
    }


# --- Africa's Talking -----------------------------------------------------------------------

SMS_DELIVERY_PREFIX = "/hooks/sms/delivery"


def sms_delivery_url(settings: Settings) -> str:
    """Where Africa's Talking posts SMS delivery reports (set in its dashboard: SMS -> SMS
    Callback URLs -> Delivery Reports). AT signs nothing either, so the secret token in the path
    (AT_CALLBACK_TOKEN) is what authenticates a report (gateways.md §3.2)."""
    token = settings.at_callback_token
    if not token:
        raise SettingsError("AT_CALLBACK_TOKEN is required: SMS delivery reports are authenticated by this "
                            "secret in their URL")
    return f"{settings.public_base_url.rstrip('/')}{SMS_DELIVERY_PREFIX}/{quote(token, safe='')}"
