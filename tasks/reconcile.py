"""Reconciliation jobs: thin wrappers around portal.reconcile (Pull Transactions on a schedule and
on a manager's demand; the nightly card pass)."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from portal.gateways.http import GatewayError
from portal.lib.clock import today
from portal.reconcile import pull, uploads
from portal.reconcile.cards import cards_daily_pass as pass_over
from portal.settings import get_settings

log = logging.getLogger(__name__)


async def pull_paybill(ctx, *, hours: int = pull.PULL_HOURS, staff_id: int | None = None) -> dict:
    """Every 30 minutes (and when a manager asks): the Paybill's last hours from Daraja; what no
    confirmation told the portal of is credited once, through the confirmation's own path."""
    settings = get_settings()
    if not settings.daraja_shortcode or not settings.daraja_consumer_key:
        return {"skipped": "Daraja is not configured"}
    try:
        result = await pull.pull_recent(settings, hours, staff_id=staff_id)
    except GatewayError as e:  # not registered yet, Daraja down: the next run tries again
        log.warning("pull transactions failed: %s", e)
        return {"error": str(e)[:300]}
    return result.as_dict()


async def cards_daily_pass(ctx, *, on: str | None = None) -> list[dict]:
    """Each night: Flutterwave's card charges and refunds of yesterday and today against the books
    (both days: which time zone Flutterwave's from/to dates are in is not documented, and running a
    day twice changes nothing). `on` (YYYY-MM-DD): that one day only."""
    days = [date.fromisoformat(on)] if on else [today() - timedelta(days=1), today()]
    return [await pass_over(day) for day in days]


async def import_statement_upload(ctx, *, upload_id: int) -> str:
    """A large statement uploaded on the web: imported here, its progress on its row for the page."""
    return await uploads.run(upload_id)
