"""What a message says, built by the worker when it sends it, from the state of things then.

Building late means a message never says something stale: an invoice paid between queueing and
sending is skipped, and the amount and the pay link are today's. Each kind has one builder,
registered with `@builder("kind")`; it gets the message row and returns a Content, or raises
Skip when there is nothing to say any more. A reminder kind registers its own the same way
(templates under templates/emails/ and templates/sms/).

SMS templates hold variants, longest first, between lines of `---`: the first that fits one
160-character GSM-7 part is sent (a second part doubles the cost and can arrive out of order),
after curly quotes and such are replaced by their GSM-7 twins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from portal.billing import paylinks
from portal.documents import context as document_context
from portal.documents import store as document_store
from portal.gateways.africastalking import gsm7_safe, sms_parts
from portal.lib import i18n
from portal.messages import email
from portal.settings import get_settings
from tables.billing import Invoice
from tables.members import Member
from tables.statuses import OPEN_INVOICE


@dataclass(frozen=True)
class Content:
    subject: str
    text: str
    html: str = ""
    attachments: list[dict] = field(default_factory=list)  # [{"kind", "subject"}] of stored documents


class Skip(Exception):
    """Nothing to send any more; the message says why."""


Builder = Callable[[dict], Awaitable[Content]]
BUILDERS: dict[str, Builder] = {}


def builder(*kinds: str):
    def register(fn: Builder) -> Builder:
        for kind in kinds:
            BUILDERS[kind] = fn
        return fn

    return register


async def build(message: dict) -> Content:
    fn = BUILDERS.get(message["kind"])
    if fn is None:
        raise LookupError(f"no builder for messages of kind {message['kind']!r}")
    return await fn(message)


# --- SMS ------------------------------------------------------------------------------------

_VARIANT_BREAK = re.compile(r"^---\s*$", re.MULTILINE)


def fit_sms(rendered: str) -> str:
    """The first variant that fits one GSM-7 part; the last one otherwise."""
    variants = [gsm7_safe(" ".join(v.split())) for v in _VARIANT_BREAK.split(rendered)]
    variants = [v for v in variants if v]
    if not variants:
        raise ValueError("the SMS template rendered nothing")
    for text in variants:
        encoding, parts = sms_parts(text)
        if parts == 1:
            return text
    return variants[-1]


def sms_text(name: str, ctx: dict) -> str:
    env = email.environment()
    return fit_sms(env.get_template(f"sms/{name}.txt").render(
        {"gym_name": get_settings().gym_name, "lang": i18n.of_context(ctx), **ctx}))


def content_for(message: dict, name: str, ctx: dict, attachments: list[dict] = (), sms_name: str | None = None) -> Content:
    """The message's Content on its channel: templates/emails/<name>-* for email (with the
    attachments), templates/sms/<sms_name or name>.txt for SMS."""
    if message["channel"] == "email":
        rendered = email.render(name, ctx)
        return Content(rendered.subject, rendered.text, rendered.html, list(attachments))
    return Content("", sms_text(sms_name or name, ctx))


# --- the builders ---------------------------------------------------------------------------

@builder("receipt")
async def receipt(message: dict) -> Content:
    payment_id = message["payment"]
    ctx = await document_context.receipt_context(payment_id)
    return content_for(message, "receipt", ctx, [{"kind": "receipt", "subject": f"payment:{payment_id}"}])


async def _open_invoice(message: dict) -> tuple[dict, str | None]:
    """The invoice's render context with its live pay link (None: it has none), or Skip when
    there is nothing to ask for any more."""
    invoice_id = message["invoice"]
    row = await Invoice.select(Invoice.number, Invoice.status).where(Invoice.id == invoice_id).first()
    if not row:
        raise Skip("the invoice no longer exists")
    if row["status"] not in OPEN_INVOICE:
        raise Skip(f"invoice {row['number']} is {row['status'].replace('_', ' ')}: nothing to ask for")
    token = await paylinks.current_token(invoice_id)
    link = paylinks.url_for(token) if token else None
    ctx = await document_context.invoice_context(invoice_id, pay_link=link)
    ctx["paybill"] = get_settings().daraja_shortcode
    return ctx, link


@builder("invoice", "pay_link")
async def invoice(message: dict) -> Content:
    """The invoice with what is still owed and its live pay link; the PDF (which prints the same
    link as a QR code) attached to the email."""
    ctx, link = await _open_invoice(message)
    attachments = []
    if message["channel"] == "email" and message["kind"] == "invoice":
        attachments = [{"kind": "invoice", "subject": await document_store.invoice_subject(message["invoice"])}]
    return content_for(message, "invoice", ctx, attachments, sms_name="invoice" if link else "invoice-nolink")


@builder("reminder_before", "reminder_due", "reminder_overdue", "reminder_final")
async def reminder(message: dict) -> Content:
    """A reminder at one step of the schedule (portal/messages/reminders.py): what is still owed today,
    how the due date stands, the pay link; a paused or opted-out member's is skipped."""
    ctx, link = await _open_invoice(message)
    paused = await Invoice.select(Invoice.reminders_paused, Invoice.member.reminders_paused,
                                  Invoice.member.reminder_opt_out).where(Invoice.id == message["invoice"]).first()
    if paused["reminders_paused"] or paused["member.reminders_paused"] or paused["member.reminder_opt_out"]:
        raise Skip("reminders were paused or the member opted out before it went")
    params = message.get("params") or {}
    offset = int(params.get("offset", 0))
    ctx.update(stage=message["kind"].removeprefix("reminder_"), days=abs(offset),
               hold_days=get_settings().hold_grace_days)
    return content_for(message, "reminder", ctx, sms_name="reminder" if link else "reminder-nolink")


@builder("miss_you")
async def miss_you(message: dict) -> Content:
    """'We miss you' (portal/members/absent.py): when they were last in and how long the
    membership still runs. Skipped if they opted out, or came in after it was queued."""
    rows = await Member.raw(MISS_YOU_SQL, message["member"])
    if not rows:
        raise Skip("the member no longer exists")
    m = rows[0]
    if m["reminder_opt_out"] or m["status"] != "active":
        raise Skip("the member opted out of reminders or left before it went")
    if m["last_seen"] is not None and m["last_seen"] > message["created_at"]:
        raise Skip("the member came in after it was queued")
    ctx = {**document_context.base(), "lang": m["language"],
           "member": {"name": f"{m['first_name']} {m['last_name']}", "first_name": m["first_name"]},
           "last_seen": m["last_seen"], "runs_until": m["runs_until"]}
    return content_for(message, "miss-you", ctx)


MISS_YOU_SQL = """
SELECT m.first_name, m.last_name, m.status, m.reminder_opt_out, m.language,
       (SELECT max(v.at) FROM visit v WHERE v.member = m.id AND v.outcome IN ('allowed', 'override')) AS last_seen,
       (SELECT max(ms.end_date) FROM membership ms WHERE ms.member = m.id AND ms.status IN ('active', 'pending')) AS runs_until
FROM member m WHERE m.id = {}
"""
