"""The owner's daily digest job: a thin wrapper around portal.reports.digest."""

from __future__ import annotations

from datetime import date

from portal.reports.digest import send_digests


async def send_daily_digest(ctx, *, on: str | None = None) -> dict:
    """Each morning at DIGEST_TIME: queue the digest of yesterday for every opted-in manager and
    admin. `on` (YYYY-MM-DD) sends the digest that day would have had; the cron passes nothing."""
    return await send_digests(date.fromisoformat(on) if on else None)
