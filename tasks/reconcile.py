"""Reconciliation jobs: Pull Transactions on a schedule and on a manager's demand."""

from __future__ import annotations

import logging

from portal.gateways.http import GatewayError
from portal.reconcile import pull
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
