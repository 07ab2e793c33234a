"""Reconciliation jobs: thin wrappers around portal.reconcile."""

from __future__ import annotations

from datetime import date, timedelta

from portal.lib.clock import today
from portal.reconcile.cards import cards_daily_pass as pass_over


async def cards_daily_pass(ctx, *, on: str | None = None) -> list[dict]:
    """Each night: Flutterwave's card charges and refunds of yesterday and today against the books
    (both days: which time zone Flutterwave's from/to dates are in is not documented, and running a
    day twice changes nothing). `on` (YYYY-MM-DD): that one day only."""
    days = [date.fromisoformat(on)] if on else [today() - timedelta(days=1), today()]
    return [await pass_over(day) for day in days]
