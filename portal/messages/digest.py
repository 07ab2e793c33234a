"""The daily digest's builder: renders the figures its message carries (portal/reports/digest.py).

Unlike a receipt or a reminder, a digest is not rebuilt from the state of things at sending
time: it is the snapshot taken when the morning job ran, kept in the message's params, so every
recipient (and a retry or a resend) reads the same figures. Email only: templates/emails/digest-*.
"""

from __future__ import annotations

from portal.messages.content import Content, Skip, builder, content_for
from portal.settings import get_settings


def _snapshot(message: dict, template: str, key: str, needs: str, what: str) -> Content:
    """An email built from the figures its message carries (taken when its job ran), under
    `key` in the template's context."""
    # Imported here: portal.reports.digest pulls in the payment modules, which every worker process
    # importing delivery.py need not load at start.
    from portal.reports import digest as figures

    if message["channel"] != "email":
        raise Skip(f"the {what} goes by email only")
    params = message.get("params") or {}
    if needs not in params:
        raise Skip(f"this {what} carries no figures")
    s = get_settings()
    gym = {"name": s.gym_name, "address": s.gym_address, "phone": s.gym_phone, "email": s.gym_email}
    return content_for(message, template, {key: figures.from_params(params), "gym": gym})


@builder("digest")
async def digest(message: dict) -> Content:
    return _snapshot(message, "digest", "digest", "collected", "daily digest")


@builder("money_edits")
async def money_edits(message: dict) -> Content:
    """The week's money edits as queued on Monday (portal/reports/money_edits.py): a snapshot,
    like the daily digest."""
    return _snapshot(message, "money-edits", "week", "edits", "money edits email")
