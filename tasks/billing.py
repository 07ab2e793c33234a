"""Billing jobs."""

from __future__ import annotations

from datetime import date

from portal.members.renewals import raise_renewal_invoices as _raise


async def raise_renewal_invoices(ctx, *, as_of: str | None = None) -> int:
    return await _raise(date.fromisoformat(as_of) if as_of else None)
