"""The outbox: one `message` row per email or SMS, written before anything is sent.

Queueing is idempotent by purpose: `dedupe_key` is unique, so a second call for the same
purpose (a receipt for payment 12 by email; reminder step due-3 of invoice 5 by SMS) returns None
and sends nothing, however many jobs race for it. Inside a transaction the row commits (or rolls
back) with what it is about; the worker is nudged only outside one, because a job started before
the commit would not see the row (the sweeper sends those within a minute; callers that want
them sooner call `nudge_invoice` after their commit).

    queued -> sending -> sent -> delivered | failed      (SMS delivery reports)
                      -> failed | bounced                (refused for good: staff may resend)
                      -> queued                          (a failure worth another try, with backoff)
                      -> skipped                         (nothing to say any more)
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from piccolo.engine import engine_finder

from portal import audit
from portal.billing import paylinks
from portal.gateways.africastalking import international
from portal.lib import db, queue, ratelimit
from portal.lib.clock import local, now
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from portal.payers import billto
from portal.settings import get_settings
from tables.billing import Invoice, Payment
from tables.members import Member
from tables.messages import Message
from tables.statuses import OPEN_INVOICE

log = logging.getLogger(__name__)

EMAIL, SMS = "email", "sms"
CHANNELS = (EMAIL, SMS)
# Attempts before a message that keeps failing for passing reasons is given up on (the SAQ job
# retries with exponential backoff in between: about an hour in all).
MAX_ATTEMPTS = 6
RETRY_DELAY = 30  # seconds before the first retry, doubling after (SAQ adds jitter)
RETRY_MAX_DELAY = 1800
SEND_TIMEOUT = 120  # a PDF may have to be rendered before the email goes
STUCK_AFTER = timedelta(minutes=10)
RESENDABLE = ("failed", "bounced")


# --- who gets what, where -------------------------------------------------------------------

async def contact(member_id: int) -> dict:
    row = await Member.select(Member.id, Member.email, Member.phone, Member.message_channel).where(
        Member.id == member_id).first()
    if not row:
        raise NotFound("member")
    return row


def channels_for(member: dict, kind: str) -> list[str]:
    """The channels a message of this kind goes by. Receipts go by email when there is an
    address (and by SMS too with SMS_RECEIPTS, for members who take SMS); everything else
    follows the member's choice (SMS by default), falling back to SMS when they chose email but
    have no address."""
    has_email = bool(member.get("email"))
    choice = member.get("message_channel") or SMS
    if kind == "receipt":
        chosen = [EMAIL] if has_email else []
        if get_settings().sms_receipts and choice in (SMS, "both"):
            chosen.append(SMS)
        return chosen
    if choice == EMAIL:
        return [EMAIL] if has_email else [SMS]
    if choice == "both":
        return ([EMAIL] if has_email else []) + [SMS]
    return [SMS]


def address(member: dict, channel: str) -> str | None:
    if channel == EMAIL:
        return member.get("email") or None
    return international(member["phone"]) if member.get("phone") else None


# --- queueing -------------------------------------------------------------------------------

def _in_transaction() -> bool:
    return engine_finder().current_transaction.get() is not None


async def queue_message(member_id: int | None, kind: str, channel: str, *, dedupe_key: str, to: str | None = None,
                        invoice_id: int | None = None, payment_id: int | None = None,
                        params: dict | None = None) -> int | None:
    """Write one message, to be built and sent by the worker. Returns its id, or None when a
    message with this dedupe key exists already (or the member has no address on the channel).
    Safe inside the caller's transaction; does not nudge the worker (see send_message)."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    if not dedupe_key or len(dedupe_key) > 160:
        raise ValueError("a dedupe key of 1 to 160 characters is required")
    if to is None:
        if member_id is None:
            raise ValueError("a message needs a member or an address")
        to = address(await contact(member_id), channel)
        if not to:
            return None
    rows = await Message.insert(Message(
        member=member_id, channel=channel, kind=kind, to_address=to[:255], dedupe_key=dedupe_key,
        invoice=invoice_id, payment=payment_id, params=params or {},
    )).on_conflict(target=Message.dedupe_key, action="DO NOTHING").returning(Message.id)
    return rows[0]["id"] if rows else None


async def send_message(member_id: int | None, kind: str, channel: str, *, dedupe_key: str, to: str | None = None,
                       invoice_id: int | None = None, payment_id: int | None = None,
                       params: dict | None = None) -> int | None:
    """`queue_message`, then nudge the worker (outside a transaction). The reminder job's entry
    point: `send_message(member, "reminder_due", "sms", dedupe_key="reminder:invoice:5:due-3:sms",
    invoice_id=5, params={"step": "due-3"})`; a second call with the same key does nothing."""
    message_id = await queue_message(member_id, kind, channel, dedupe_key=dedupe_key, to=to, invoice_id=invoice_id,
                                     payment_id=payment_id, params=params)
    if message_id is not None and not _in_transaction():
        await nudge([message_id])
    return message_id


async def send_to_member(member_id: int, kind: str, *, key: str, invoice_id: int | None = None,
                         payment_id: int | None = None, params: dict | None = None,
                         member: dict | None = None) -> list[int]:
    """One message per channel the member gets for this kind (`channels_for`), each keyed
    `<key>:<channel>`. Returns the ids of the messages this call created."""
    member = member or await contact(member_id)
    created = []
    for channel in channels_for(member, kind):
        to = address(member, channel)
        if not to:
            continue
        message_id = await queue_message(member_id, kind, channel, dedupe_key=f"{key}:{channel}", to=to,
                                         invoice_id=invoice_id, payment_id=payment_id, params=params)
        if message_id is not None:
            created.append(message_id)
    if created and not _in_transaction():
        await nudge(created)
    return created


def job_key(message_id: int) -> str:
    return f"message:{message_id}"


async def nudge(message_ids: list[int]) -> None:
    """Ask the worker to send these now (a repeat while a job lives is a no-op). With no queue
    in this process (a script) the sweeper sends them."""
    for message_id in message_ids:
        try:
            await queue.enqueue("send_message", key=job_key(message_id), timeout=SEND_TIMEOUT, retries=MAX_ATTEMPTS,
                                retry_delay=RETRY_DELAY, retry_backoff=RETRY_MAX_DELAY, message_id=message_id)
        except RuntimeError:
            log.debug("no queue: message %s left to the sweeper", message_id)
            return


async def nudge_invoice(invoice_id: int) -> None:
    """After the commit that issued an invoice: send its messages now rather than at the next sweep."""
    rows = await Message.select(Message.id).where((Message.invoice == invoice_id) & (Message.status == "queued"))
    await nudge([r["id"] for r in rows])


# --- the triggers ---------------------------------------------------------------------------

async def invoice_issued(invoice_id: int, member_id: int) -> list[int]:
    """A new invoice goes to the member with its pay link, by their channel (inside the
    transaction that issued it: the message exists exactly when the invoice does)."""
    return await send_to_member(member_id, "invoice", key=f"invoice:invoice:{invoice_id}", invoice_id=invoice_id,
                                member=await _payer_or_member(invoice_id, member_id))


async def _payer_or_member(invoice_id: int, member_id: int) -> dict:
    """Who hears of an invoice: an invoice addressed to a payer with an email address (a parent or
    a company, portal/payers) goes to that address by email, and not to the member; otherwise the
    member, by their channel."""
    member = await contact(member_id)
    bill = await billto.bill_to(invoice_id)
    if bill and bill["email"]:
        return {**member, "email": bill["email"], "message_channel": EMAIL}
    return member


async def payment_completed(payment_id: int, member_id: int | None = None) -> list[int]:
    """A completed payment's receipt, by email when the member has an address. Called after
    commit wherever receipts are requested (tasks/documents.request_receipts). `member_id`: the
    payment's member, given by a caller that knows the payment has its receipt number."""
    if member_id is None:
        payment = await Payment.select(Payment.member, Payment.receipt_number).where(Payment.id == payment_id).first()
        if not payment or not payment["member"] or not payment["receipt_number"]:
            return []
        member_id = payment["member"]
    return await send_to_member(member_id, "receipt", key=f"receipt:payment:{payment_id}", payment_id=payment_id)


class SentTooOften(RuleBroken):
    """The member was sent this invoice's pay link as often as an hour allows (a new link each
    time is still the same member's phone): staff are told when, and when they may again."""


async def send_pay_link(invoice_id: int, staff_id: int | None) -> list[int]:
    """Staff send an invoice's live pay link to the member, by their channel. Once per link: a
    second click sends nothing and returns the messages already sent; a new link can be sent
    too, PAY_LINK_SENDS_PER_HOUR times an hour per invoice (then SentTooOften)."""
    invoice = await Invoice.select(Invoice.member, Invoice.status).where(Invoice.id == invoice_id).first()
    if not invoice:
        raise NotFound("invoice")
    if invoice["status"] not in OPEN_INVOICE:
        raise RuleBroken(S_("Only an open invoice has a pay link to send"))
    link = await paylinks.live_link(invoice_id)
    if not link:
        raise RuleBroken(S_("This invoice has no live pay link: make one first"))
    key = f"pay_link:invoice:{invoice_id}:link{link['id']}"
    sent = await Message.select(Message.id).where(Message.dedupe_key.like(f"{key}:%")).order_by(Message.id)
    if sent:  # this link went already: showing it again costs the member nothing
        return [r["id"] for r in sent]
    again_at = await ratelimit.take(f"paylink-send:{invoice_id}", get_settings().pay_link_sends_per_hour, 3600)
    if again_at is not None:
        last = await Message.select(Message.created_at).where(
            (Message.invoice == invoice_id) & (Message.kind == "pay_link")).order_by(Message.id, ascending=False).first()
        when = f" at {local(last['created_at']):%H:%M}" if last else ""
        raise SentTooOften(f"This invoice's pay link was already sent to the member{when}; "
                           f"you can send it again after {local(again_at):%H:%M}")
    created = await send_to_member(invoice["member"], "pay_link", key=key, invoice_id=invoice_id,
                                   member=await _payer_or_member(invoice_id, invoice["member"]))
    if not created:  # sent by another click a moment ago, or the member has no channel for it
        rows = await Message.select(Message.id).where(Message.dedupe_key.like(f"{key}:%")).order_by(Message.id)
        return [r["id"] for r in rows]
    await audit.record("paylink.sent", "invoice", invoice_id, staff_id=staff_id,
                       details={"link": link["id"], "messages": created})
    return created


# --- the worker's side ----------------------------------------------------------------------

CLAIM = """
UPDATE message SET status = 'sending', attempts = attempts + 1, claimed_at = now()
WHERE id = {} AND status = 'queued'
RETURNING *
"""


async def claim(message_id: int) -> dict | None:
    """Take a queued message for sending; None if another worker has it or it is done."""
    rows = await Message.raw(CLAIM, message_id)
    if not rows:
        return None
    row = rows[0]
    for name in ("params", "attachments"):  # jsonb arrives as text from a raw query
        if isinstance(row[name], str):
            row[name] = json.loads(row[name])
    return row


async def save_content(message_id: int, subject: str, text: str, html: str, attachments: list[dict]) -> None:
    await Message.update({Message.subject: subject, Message.body_text: text, Message.body_html: html,
                          Message.attachments: attachments}).where(Message.id == message_id)


async def mark_sent(message_id: int, provider_id: str | None, provider_status: str = "") -> None:
    await Message.update({Message.status: "sent", Message.sent_at: now(), Message.provider_id: provider_id,
                          Message.provider_status: provider_status[:60], Message.last_error: ""}).where(
        (Message.id == message_id) & (Message.status == "sending"))


async def mark_failed(message_id: int, error: str, status: str = "failed") -> None:
    await Message.update({Message.status: status, Message.last_error: error[:2000]}).where(
        (Message.id == message_id) & (Message.status == "sending"))


async def mark_skipped(message_id: int, reason: str) -> None:
    await Message.update({Message.status: "skipped", Message.last_error: reason[:2000]}).where(
        (Message.id == message_id) & (Message.status == "sending"))


async def retry_later(message: dict, error: str) -> bool:
    """A failure that may pass: back to queued for the job's next try. False (and failed) once
    the message has had MAX_ATTEMPTS."""
    if message["attempts"] >= MAX_ATTEMPTS:
        await mark_failed(message["id"], f"gave up after {message['attempts']} attempts: {error}")
        return False
    await Message.update({Message.status: "queued", Message.last_error: error[:2000]}).where(
        (Message.id == message["id"]) & (Message.status == "sending"))
    return True


# --- staff ----------------------------------------------------------------------------------

async def resend(message_id: int, staff_id: int | None) -> dict:
    """Send a failed or bounced message again, built afresh (today's amount, a live pay link) and
    to the member's current address (staff usually fix the address first)."""
    async with db.transaction():
        row = await Message.select().where(Message.id == message_id).lock_rows().first()
        if not row:
            raise NotFound("message")
        if row["status"] not in RESENDABLE:
            raise RuleBroken(f"Only a failed or bounced message can be sent again (this one is {row['status']})")
        to = row["to_address"]
        if row["member"]:
            to = address(await contact(row["member"]), row["channel"])
            if not to:
                raise RuleBroken(S_("This member has no email address: add one, then resend"))
        await Message.update({
            Message.status: "queued", Message.to_address: to, Message.attempts: 0, Message.last_error: "",
            Message.subject: "", Message.body_text: "", Message.body_html: "", Message.attachments: [],
            Message.provider_id: None, Message.provider_status: "", Message.claimed_at: None,
            Message.sent_at: None, Message.delivered_at: None,
        }).where(Message.id == message_id)
        await audit.record("message.resent", "message", message_id, staff_id=staff_id,
                           details={"kind": row["kind"], "channel": row["channel"], "to": to, "was": row["status"],
                                    "error": row["last_error"][:300]})
    await nudge([message_id])
    return {**row, "status": "queued", "to_address": to}


# --- the sweeper's work lists ---------------------------------------------------------------

async def unsent(limit: int = 500) -> list[int]:
    rows = await Message.raw("SELECT id FROM message WHERE status = 'queued' ORDER BY id LIMIT {}", limit)
    return [r["id"] for r in rows]


STUCK_SQL = """
UPDATE message SET status = 'failed',
       last_error = 'The worker stopped while sending it, so it may or may not have gone out. Resend it if the member did not get it.'
WHERE status = 'sending' AND claimed_at < now() - make_interval(secs => {})
RETURNING id
"""


async def give_up_stuck() -> list[int]:
    """Messages claimed long ago and never finished (the worker died mid-send). Sending again
    could send twice, so they are failed for staff to resend, as card refunds are."""
    rows = await Message.raw(STUCK_SQL, int(STUCK_AFTER.total_seconds()))
    return [r["id"] for r in rows]
