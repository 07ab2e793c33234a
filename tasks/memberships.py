"""Membership jobs: thin wrappers that take plain values and call portal.members."""

from __future__ import annotations

from datetime import date

from portal.members.memberships import refresh_membership_statuses


async def refresh_memberships(ctx, *, as_of: str | None = None) -> dict:
    """Nightly: expire ended memberships and start pending ones. `as_of` (YYYY-MM-DD) lets a
    manager or a test run it for a given business day; the cron passes nothing (today)."""
    return await refresh_membership_statuses(date.fromisoformat(as_of) if as_of else None)
