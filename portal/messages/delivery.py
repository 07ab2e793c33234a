"""Sending one message, and what Africa's Talking later reports about an SMS.

`deliver(message_id)` is the whole of the worker's job: claim the row, build the content, send it
(SMTP; the dev mailbox when SMTP_URL is unset; Africa's Talking), record the result. A failure
that may pass raises RetryLater after putting the row back to queued, so the SAQ job retries
with backoff; a permanent one (an invalid number, a 5xx from the mail server) fails the message
for staff to see and resend.

Delivery reports arrive at /hooks/sms/delivery/<token>, are stored raw first
(portal/callbacks/store.py) and applied here exactly once, under the callback's row lock.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from portal.callbacks.store import waiting
from portal.documents import store as document_store
from portal.gateways.africastalking import AfricasTalkingClient
from portal.gateways.http import GatewayError
from portal.lib.clock import now
from portal.messages import content as contents
from portal.messages import digest as _digest  # noqa: F401  (registers the "digest" builder)
from portal.messages import email, outbox
from portal.settings import Settings, get_settings
from tables.messages import Message

log = logging.getLogger(__name__)

DEV_MAILBOX = "dev-mailbox"
# A delivery report for an id we have not recorded yet is kept and tried again (the report can
# beat the worker's own write of the messageId); after this long, it is for no message of ours.
UNKNOWN_REPORT_AFTER = timedelta(minutes=10)


class RetryLater(Exception):
    """The message is queued again; the job's retry (with backoff) will send it."""


async def deliver(message_id: int, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    message = await outbox.claim(message_id)
    if message is None:
        return "nothing to do"
    try:
        built = await contents.build(message)
    except contents.Skip as e:
        await outbox.mark_skipped(message_id, str(e))
        return "skipped"
    except Exception as e:  # a bug or missing data: retrying will not help, staff will see it
        log.exception("message %s could not be built", message_id)
        await outbox.mark_failed(message_id, f"could not be written: {type(e).__name__}: {e}")
        return "failed"
    await outbox.save_content(message_id, built.subject, built.text, built.html, built.attachments)
    if message["channel"] == outbox.EMAIL:
        return await _send_email(message, built, settings)
    return await _send_sms(message, built, settings)


async def _retry(message: dict, error: str) -> str:
    if await outbox.retry_later(message, error):
        raise RetryLater(error)
    return "failed"


async def _send_email(message: dict, built: contents.Content, settings: Settings) -> str:
    try:
        # The PDFs are made now if the worker has not made them yet; the dev mailbox links to them.
        for item in built.attachments:
            await document_store.render_and_store(item["kind"], item["subject"])
    except Exception as e:
        log.exception("attachments of message %s", message["id"])
        return await _retry(message, f"the attachment could not be made: {type(e).__name__}: {e}")
    if not settings.smtp_url:
        await outbox.mark_sent(message["id"], DEV_MAILBOX, "kept in the dev mailbox")
        return "sent"
    files = []
    for item in built.attachments:
        name, pdf = await document_store.content(item["kind"], item["subject"])
        files.append(email.Attachment(name, pdf))
    msg = email.build(message["to_address"], email.Rendered(built.subject, built.text, built.html), files)
    try:
        answer = await email.send(msg, settings.smtp_url)
    except email.EmailError as e:
        if e.permanent:
            await outbox.mark_failed(message["id"], str(e), status="bounced" if e.bounced else "failed")
            return "bounced" if e.bounced else "failed"
        return await _retry(message, str(e))
    await outbox.mark_sent(message["id"], msg["Message-ID"].strip("<>"), answer)
    return "sent"


async def _send_sms(message: dict, built: contents.Content, settings: Settings) -> str:
    if not (settings.at_username and settings.at_api_key):
        await outbox.mark_failed(message["id"], "SMS is not set up: AT_USERNAME and AT_API_KEY are empty")
        return "failed"
    try:
        async with AfricasTalkingClient(settings) as client:
            results = await client.send_sms([message["to_address"]], built.text)
    except ValueError as e:  # an address the client refuses to send to
        await outbox.mark_failed(message["id"], f"not sent: {e}")
        return "failed"
    except GatewayError as e:
        if e.retryable and (e.status is not None or not e.maybe_delivered):
            return await _retry(message, str(e))
        # No answer after the request went out: it may have been sent. Sending again could send
        # it twice, so staff decide (as for card refunds).
        why = str(e) if not e.retryable else f"{e}; it may have been sent: resend if the member did not get it"
        await outbox.mark_failed(message["id"], why)
        return "failed"
    if not results:
        await outbox.mark_failed(message["id"], "Africa's Talking answered with no recipient")
        return "failed"
    result = results[0]
    if result.accepted:
        await outbox.mark_sent(message["id"], result.message_id, result.status)
        return "sent"
    refusal = f"Africa's Talking refused it: {result.status or 'no status'} ({result.status_code})"
    if result.retryable:
        return await _retry(message, refusal)
    await outbox.mark_failed(message["id"], refusal)
    return "failed"


# --- delivery reports -----------------------------------------------------------------------

async def reports_waiting(message_id: int) -> list[int]:
    """Reports that arrived before we recorded the messageId (the sandbox answers at once): the
    send job has them processed once the id is written."""
    message = await Message.select(Message.provider_id).where(Message.id == message_id).first()
    if not message or not message["provider_id"]:
        return []
    return await waiting("africastalking", ["delivery"], external_id=message["provider_id"])


async def apply_delivery_report(callback: dict, report) -> tuple[str, str]:
    """Move the SMS on by what AT reports: Success -> delivered, Failed/Rejected -> failed (with
    the reason), Sent/Submitted/Buffered noted on a sent message. Reports only move a message
    forward: one arriving after a final report changes nothing."""
    message = await Message.select().where(
        (Message.provider_id == report.message_id) & (Message.channel == "sms")).lock_rows().first()
    if message is None:
        if callback["received_at"] < now() - UNKNOWN_REPORT_AFTER:
            return "rejected", f"no SMS of ours has id {report.message_id}"
        return "stored", "no SMS with this id recorded yet"
    if message["status"] != "sent":
        return "duplicate", f"message {message['id']} is already {message['status']}"
    if not report.final:
        await Message.update({Message.provider_status: report.status[:60]}).where(Message.id == message["id"])
        return "applied", f"message {message['id']}: {report.status}"
    if report.delivered:
        await Message.update({Message.status: "delivered", Message.delivered_at: now(),
                              Message.provider_status: report.status}).where(Message.id == message["id"])
        return "applied", f"message {message['id']} delivered"
    reason = report.failure_reason or "no reason given"
    await Message.update({Message.status: "failed", Message.provider_status: reason[:60],
                          Message.last_error: f"not delivered: {report.status} ({reason})"}).where(
        Message.id == message["id"])
    return "applied", f"message {message['id']} not delivered: {report.status} ({reason})"
