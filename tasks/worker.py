"""The SAQ workers: which functions they run, the cron schedule, and their life cycle.

`make run` runs them inside the web process; production runs `portal worker` processes. Each
queue (portal.lib.queue: gateway, bulk) has its own worker and concurrency; a function's queue is
portal.lib.queue.ROUTES, and so is its cron's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection

from saq import CronJob, Worker

from portal.lib import logs, metrics, queue
from portal.settings import Settings
from tasks import (
    backups,
    billing,
    cards,
    digest,
    documents,
    memberships,
    mpesa,
    notifications,
    reconcile,
    reminders,
    webhooks,
)

log = logging.getLogger(__name__)

FUNCTIONS = [memberships.refresh_memberships, documents.render_document, documents.sweep_documents,
             billing.raise_renewal_invoices, mpesa.send_stk_push, mpesa.check_stk, mpesa.sweep_mpesa, mpesa.send_reversal,
             cards.send_card_refund, cards.sweep_card_refunds, cards.sweep_card_checkouts, notifications.send_message, notifications.sweep_messages,
             reminders.send_daily_reminders, digest.send_daily_digest, digest.send_weekly_money_edits, backups.run_backup,
             webhooks.deliver_webhooks, webhooks.sweep_webhooks, reconcile.pull_paybill, reconcile.cards_daily_pass,
             reconcile.import_statement_upload]

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
    CronJob(webhooks.sweep_webhooks, cron="* * * * *", timeout=120, retries=1),
    # Daraja's own book of the Paybill's last hours: confirmations it never delivered are credited.
    CronJob(reconcile.pull_paybill, cron="7,37 * * * *", timeout=300, retries=1),
    # Flutterwave's own list of card charges and refunds against the books (portal.reconcile.cards).
    CronJob(reconcile.cards_daily_pass, cron="40 2 * * *", timeout=1800, retries=2),
]


def cron_jobs(settings: Settings) -> list[CronJob]:
    """The fixed schedule plus the jobs whose time is a setting."""
    hour, minute = settings.reminder_time
    digest_hour, digest_minute = settings.digest_time
    nightly = []
    if settings.backup_time:  # the one-PC set-up backs itself up; BACKUP_TIME=off where backups are made elsewhere
        backup_hour, backup_minute = settings.backup_time
        nightly.append(CronJob(backups.run_backup, cron=f"{backup_minute} {backup_hour} * * *", timeout=3600, retries=1))
    return [*CRON_JOBS, *nightly, CronJob(reminders.send_daily_reminders, cron=f"{minute} {hour} * * *", timeout=1800, retries=2),
            # The owner's digest of yesterday (once per staff member per day, however often it runs).
            CronJob(digest.send_daily_digest, cron=f"{digest_minute} {digest_hour} * * *", timeout=600, retries=2),
            # The week before's money edits, Mondays with the digest (once per staff member per week).
            CronJob(digest.send_weekly_money_edits, cron=f"{digest_minute} {digest_hour} * * 1", timeout=600, retries=2)]


# SAQ's word for how a job ended, as /metrics says it: "queued" after a run means it will be retried.
_ENDED = {"complete": "complete", "failed": "failed", "aborted": "aborted", "queued": "retry", "active": "unknown"}


job_log = logs.get_logger("portal.jobs")


async def _bind_job(ctx) -> None:
    """Before every job: the job and the request id that queued it (portal.lib.queue puts it in
    the job's metadata) go on every line written while it runs, and on any job it queues. SAQ runs
    each job in a task of its own, so nothing bound here outlives the job."""
    job = ctx.get("job")
    if job is not None:
        logs.bind(job=job.function, job_key=job.key, request_id=(job.meta or {}).get("request_id"))


async def _job_done(ctx) -> None:
    """After every job: its line in the log, and its duration by kind and how it ended
    (portal.lib.metrics; in multi-process mode written where the web processes' /metrics reads it)."""
    job = ctx.get("job")
    if job is None or not job.started:
        return
    status = _ENDED.get(getattr(job.status, "value", str(job.status)), str(job.status))
    seconds = max(time.time() - job.started / 1000, 0.0)
    metrics.job_finished(job.function, job.queue.name, status, seconds)
    # A job a request queued (directly, or through a job it queued) is news, and so is any job
    # that did not complete; the crons' runs and what they queue (a sweeper's catch-up, the
    # nightly runs' hundreds of messages) are chatter, shown at DEBUG.
    level = "warning" if status != "complete" else "info" if logs.bound().get("request_id") else "debug"
    getattr(job_log, level)("job", queue=job.queue.name, status=status, attempts=job.attempts,
                            duration_ms=round(seconds * 1000, 1))


class _DrainingWorker(Worker):
    """SAQ's worker, able to drain before it stops: SAQ's own stop cancels the jobs in flight at
    once (they are retried, but a prompt half-sent or a PDF half-made is work thrown away)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.draining = False
        self.busy: set[asyncio.Task] = set()  # the process tasks running a job right now

    async def process(self) -> bool:
        if self.draining:  # a slot that comes free takes no new job; stop() cancels it
            await asyncio.Event().wait()
        return await super().process()

    # SAQ calls these in the task that runs the job, before it and after its outcome is stored:
    # that task being done is the job being finished and recorded.
    async def _before_process(self, ctx) -> None:
        self.busy.add(asyncio.current_task())
        await super()._before_process(ctx)

    async def _after_process(self, ctx) -> None:
        try:
            await super()._after_process(ctx)
        finally:
            self.busy.discard(asyncio.current_task())


def shutdown_grace(settings: Settings) -> float:
    """How long a stopping worker lets its jobs in flight finish: longer than any gateway call may
    take (GATEWAY_TIMEOUT_SECONDS), so a job waiting on a gateway gets its answer (or its timeout)
    and records it. A deployment's stop timeout (systemd's TimeoutStopSec) must be longer still."""
    return settings.gateway_timeout_seconds + 5.0


class Workers:
    """One SAQ worker per queue, started and stopped together (each has its own concurrency, so
    a backlog on one never holds the other's slots)."""

    def __init__(self, workers: list[_DrainingWorker]):
        self.workers = workers

    async def start(self) -> None:
        await asyncio.gather(*(w.start() for w in self.workers))

    async def stop(self, grace: float = 0.0) -> None:
        """Stop every worker. With a grace period the jobs in flight get that long to finish first
        (no new job is taken meanwhile); whatever still runs then is cancelled, and SAQ queues it
        again for another worker (every job is safe to run again: the database row is the truth)."""
        if grace > 0:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + grace
            for w in self.workers:
                w.draining = True
            while running := {t for w in self.workers for t in w.busy if not t.done()}:
                left = deadline - loop.time()
                if left <= 0:
                    log.warning("%d job(s) still running after %.0f s: cancelled, to be retried", len(running), grace)
                    break
                log.info("stopping: waiting for %d job(s) in flight", len(running))
                await asyncio.wait(running, timeout=left)
        await asyncio.gather(*(w.stop() for w in self.workers))


def _functions(name: str) -> list:
    if name == queue.GATEWAY:
        # Every function: jobs of any kind queued before the queues were split are on this one.
        return FUNCTIONS
    return [f for f in FUNCTIONS if queue.route(f.__qualname__) == name]


def make_worker(settings: Settings, queues: queue.Queues, *, in_process: bool,
                only: Collection[str] | None = None) -> Workers:
    """Workers for every queue (or the queues named in `only`); each owns its queue's crons."""
    for function in FUNCTIONS:  # a job with no queue is found at start, not at its first enqueue
        queue.route(function.__qualname__)
    crons = cron_jobs(settings)
    workers = []
    for name, q in queues.by_name.items():
        if only is not None and name not in only:
            continue
        worker = _DrainingWorker(
            q,
            functions=_functions(name),
            cron_jobs=[c for c in crons if queue.route(c.function.__qualname__) == name],
            cron_tz=settings.tz,
            concurrency=queue.concurrency(settings, name),
            # SAQ's Postgres dequeue swallows CancelledError; with no timeout a cancelled waiter can
            # then wait on its job queue forever and Worker.stop() never returns. A bounded wait
            # (the loop simply dequeues again) lets every process task notice the stop.
            dequeue_timeout=5,
            # Ensure the worker finds its jobs quickly even if a NOTIFY is missed.
            timers={"schedule": 1, "sweep": 30},
            before_process=_bind_job,
            after_process=_job_done,
        )
        if in_process:
            worker.SIGNALS = []  # uvicorn (or portal.runner) owns the signals
        workers.append(worker)
    return Workers(workers)
