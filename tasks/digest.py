"""The owner's daily digest job: a thin wrapper around portal.reports.digest."""

from __future__ import annotations

from datetime import date

from portal.reports.digest import send_digests
from portal.reports.money_edits import send_weekly


async def send_daily_digest(ctx, *, on: str | None = None) -> dict:
    """Each morning at DIGEST_TIME: queue the digest of yesterday for every opted-in manager and
    admin. `on` (YYYY-MM-DD) sends the digest that day would have had; the cron passes nothing."""
    return await send_digests(date.fromisoformat(on) if on else None)


async def send_weekly_money_edits(ctx, *, on: str | None = None) -> dict:
    """Each Monday at DIGEST_TIME: the week before's money edits to every opted-in manager and
    admin (portal.reports.money_edits). `on` (YYYY-MM-DD): the week before the one it is in."""
    return await send_weekly(date.fromisoformat(on) if on else None)
