"""Membership jobs: thin wrappers that take plain values and call portal.members."""

from __future__ import annotations

from datetime import date

from portal.lib import db
from portal.members.holds import announce_holds
from portal.members.memberships import refresh_membership_statuses


async def refresh_memberships(ctx, *, as_of: str | None = None) -> dict:
    """Nightly: expire ended memberships and start pending ones, and announce the holds that the
    new day began (an invoice passed its grace period) to webhook receivers. `as_of`
    (YYYY-MM-DD) lets a manager or a test run it for a given business day; the cron passes
    nothing (today)."""
    day = date.fromisoformat(as_of) if as_of else None
    result = await refresh_membership_statuses(day)
    async with db.transaction():
        await announce_holds(None, on=day)
    return result
