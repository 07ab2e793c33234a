"""The daily digest's builder: renders the figures its message carries (portal/reports/digest.py).

Unlike a receipt or a reminder, a digest is not rebuilt from the state of things at sending
time: it is the snapshot taken when the morning job ran, kept in the message's params, so every
recipient (and a retry or a resend) reads the same figures. Email only: templates/emails/digest-*.
"""

from __future__ import annotations

from portal.messages.content import Content, Skip, builder, content_for
from portal.settings import get_settings


@builder("digest")
async def digest(message: dict) -> Content:
    # Imported here: portal.reports.digest pulls in the payment modules, which every worker process
    # importing delivery.py need not load at start.
    from portal.reports import digest as figures

    if message["channel"] != "email":
        raise Skip("the daily digest goes by email only")
    params = message.get("params") or {}
    if "collected" not in params:
        raise Skip("this digest carries no figures")
    s = get_settings()
    gym = {"name": s.gym_name, "address": s.gym_address, "phone": s.gym_phone, "email": s.gym_email}
    return content_for(message, "digest", {"digest": figures.from_params(params), "gym": gym})


@builder("money_edits")
async def money_edits(message: dict) -> Content:
    """The week's money edits as queued on Monday (portal/reports/money_edits.py): a snapshot,
    like the daily digest."""
    from portal.reports import digest as figures

    if message["channel"] != "email":
        raise Skip("the money edits email goes by email only")
    params = message.get("params") or {}
    if "edits" not in params:
        raise Skip("this email carries no week")
    s = get_settings()
    gym = {"name": s.gym_name, "address": s.gym_address, "phone": s.gym_phone, "email": s.gym_email}
    return content_for(message, "money-edits", {"week": figures.from_params(params), "gym": gym})
