"""Outgoing messages: one row per email or SMS, written before anything is sent (an outbox).

The row is the truth and the queue only nudges: a message is queued in the same transaction as
what it is about (an invoice), or right after (a payment's receipt); the worker claims it, renders
it from the current state of what it is about, sends it and records what went out. `dedupe_key`
is unique, so the same message for the same purpose is never created twice
(`receipt:payment:12:email`, `invoice:invoice:5:sms`, `reminder:invoice:5:due-3:sms`).

Attachments are not copied here: `attachments` names stored documents ([{"kind": "receipt",
"subject": "payment:12"}]) and the PDFs stay in the `document` table.
"""

from enum import Enum

from piccolo.columns import JSONB, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from tables.billing import Invoice, Payment
from tables.members import Member


class Message(Table, tablename="message"):
    class Channel(str, Enum):
        email = "email"
        sms = "sms"

    class Status(str, Enum):
        queued = "queued"  # waiting for the worker (also between retries)
        sending = "sending"  # claimed by one worker
        sent = "sent"  # handed to the SMTP server / accepted by Africa's Talking / in the dev mailbox
        delivered = "delivered"  # the SMS delivery report said Success
        failed = "failed"  # permanently refused, undelivered, or given up on: staff may resend
        bounced = "bounced"  # the mail server refused the address
        skipped = "skipped"  # nothing to send any more (the invoice was paid before it went)

    member = ForeignKey(references=Member, on_delete=OnDelete.restrict, null=True, default=None, index=True)
    channel = Varchar(length=5, choices=Channel)
    kind = Varchar(length=30, index=True, help_text="receipt, invoice, pay_link, reminder_*, digest, ...")
    to_address = Varchar(length=255, help_text="An email address, or a phone number +2547XXXXXXXX")
    params = JSONB(default={}, help_text="What the content is built from, beyond the invoice/payment (e.g. a reminder step)")
    subject = Text(default="", help_text="Email subject; empty until rendered")
    body_text = Text(default="", help_text="The email's text part, or the SMS text; empty until rendered")
    body_html = Text(default="")
    attachments = JSONB(default=[], help_text='Stored documents attached: [{"kind", "subject"}]')
    status = Varchar(length=10, choices=Status, default=Status.queued, index=True)
    provider_id = Varchar(length=120, null=True, default=None, index=True,
                          help_text="Africa's Talking messageId; 'dev-mailbox' when no SMTP is configured")
    provider_status = Varchar(length=60, default="", help_text="The gateway's last word, e.g. Buffered, DeliveryFailure")
    attempts = Integer(default=0)
    last_error = Text(default="")
    dedupe_key = Varchar(length=160, unique=True)
    invoice = ForeignKey(references=Invoice, on_delete=OnDelete.restrict, null=True, default=None, index=True)
    payment = ForeignKey(references=Payment, on_delete=OnDelete.restrict, null=True, default=None, index=True)
    created_at = Timestamptz()
    claimed_at = Timestamptz(null=True, default=None, help_text="When a worker last started sending it")
    sent_at = Timestamptz(null=True, default=None)
    delivered_at = Timestamptz(null=True, default=None)
