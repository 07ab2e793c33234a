"""The daily reminder run (REMINDER_TIME, in the gym's time zone)."""

from __future__ import annotations

import logging

from portal.messages import reminders

log = logging.getLogger(__name__)


async def send_daily_reminders(ctx) -> dict:
    result = await reminders.send_reminders()
    log.info("reminders for %s: %s invoices at a step, %s messages written in %.2f s",
             result.day, result.invoices, result.created, result.seconds)
    return {"day": result.day.isoformat(), "invoices": result.invoices, "messages": result.created,
            "seconds": round(result.seconds, 3)}
