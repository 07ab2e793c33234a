"""The SAQ worker: which functions it runs, the cron schedule, and its life cycle.

`make run` runs it inside the web process; production runs `portal worker` processes.
"""

from __future__ import annotations

import logging

from saq import CronJob, Queue, Worker

from portal.settings import Settings
from tasks import billing, cards, digest, documents, memberships, mpesa, notifications, reminders

log = logging.getLogger(__name__)

FUNCTIONS = [memberships.refresh_memberships, documents.render_document, documents.sweep_documents,
             billing.raise_renewal_invoices, mpesa.send_stk_push, mpesa.check_stk, mpesa.sweep_mpesa, mpesa.send_reversal,
             cards.send_card_refund, cards.sweep_card_refunds, cards.sweep_card_checkouts, notifications.send_message, notifications.sweep_messages,
             reminders.send_daily_reminders, digest.send_daily_digest]

CRON_JOBS = [
    # Just after midnight in Nairobi: expire what ended yesterday, start what begins today.
    CronJob(memberships.refresh_memberships, cron="5 0 * * *", timeout=300, retries=2),
    # Renewal invoices a few days before memberships end (after the status refresh).
    CronJob(billing.raise_renewal_invoices, cron="15 0 * * *", timeout=600, retries=2),
    # The queue only nudges: anything whose job was lost is picked up here.
    CronJob(documents.sweep_documents, cron="* * * * *", timeout=120, retries=1),
    CronJob(mpesa.sweep_mpesa, cron="* * * * *", timeout=120, retries=1),
    CronJob(cards.sweep_card_refunds, cron="* * * * *", timeout=120, retries=1),
    CronJob(cards.sweep_card_checkouts, cron="* * * * *", timeout=120, retries=1),
    CronJob(notifications.sweep_messages, cron="* * * * *", timeout=120, retries=1),
]


def cron_jobs(settings: Settings) -> list[CronJob]:
    """The fixed schedule plus the jobs whose time is a setting."""
    hour, minute = settings.reminder_time
    digest_hour, digest_minute = settings.digest_time
    return [*CRON_JOBS, CronJob(reminders.send_daily_reminders, cron=f"{minute} {hour} * * *", timeout=1800, retries=2),
            # The owner's digest of yesterday (once per staff member per day, however often it runs).
            CronJob(digest.send_daily_digest, cron=f"{digest_minute} {digest_hour} * * *", timeout=600, retries=2)]


def make_worker(settings: Settings, queue: Queue, *, in_process: bool) -> Worker:
    worker = Worker(
        queue,
        functions=FUNCTIONS,
        cron_jobs=cron_jobs(settings),
        cron_tz=settings.tz,
        concurrency=4,
        # SAQ's Postgres dequeue swallows CancelledError; with no timeout a cancelled waiter can
        # then wait on its job queue forever and Worker.stop() never returns. A bounded wait
        # (the loop simply dequeues again) lets every process task notice the stop.
        dequeue_timeout=5,
        # Ensure the worker finds its jobs quickly even if a NOTIFY is missed.
        timers={"schedule": 1, "sweep": 30},
    )
    if in_process:
        worker.SIGNALS = []  # uvicorn owns the signals in the web process
    return worker
