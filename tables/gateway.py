"""Everything gateways send us, stored raw before it is acted on, and alerts for staff.

A callback is stored in its own transaction first (body, headers, source address, time),
deduplicated by the gateway's own id when one can be read (else by a hash of the body); then it
is processed. `processed_at` empty = not yet acted on: the sweeper picks those up, so a crash
between storing and processing loses nothing.
"""

from enum import Enum

from piccolo.columns import JSONB, Boolean, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from tables.billing import Payment
from tables.members import Member


class GatewayCallback(Table, tablename="gateway_callback"):
    class Outcome(str, Enum):
        stored = "stored"  # not processed yet
        applied = "applied"  # changed a payment
        duplicate = "duplicate"  # nothing new: the payment already reflected it
        unmatched = "unmatched"  # money or a result we could not tie to a payment/member (staff queue)
        rejected = "rejected"  # failed authentication or validation: kept for the record, never acted on
        malformed = "malformed"  # could not be parsed: kept and shown to staff
        error = "error"  # processing failed; the sweeper retries

    gateway = Varchar(length=20)  # daraja | flutterwave | africastalking
    kind = Varchar(length=30)  # stk | c2b_validation | c2b_confirmation | result | timeout | webhook | redirect | dlr
    dedupe_key = Varchar(length=120, help_text="The gateway's own id, or sha256 of the body")
    external_id = Varchar(length=120, null=True, default=None, index=True, help_text="CheckoutRequestID, TransID, tx id...")
    body = Text(help_text="The raw body as received (decoded as UTF-8 with replacement)")
    headers = JSONB(default={})
    source_ip = Varchar(length=64, default="")
    received_at = Timestamptz(index=True)
    deliveries = Integer(default=1, help_text="How many times the gateway sent it")
    last_delivery_at = Timestamptz()
    processed_at = Timestamptz(null=True, default=None)
    attempts = Integer(default=0)
    outcome = Varchar(length=12, choices=Outcome, default=Outcome.stored, index=True)
    note = Text(default="")
    payment = ForeignKey(references=Payment, on_delete=OnDelete.restrict, null=True, index=True)
    member = ForeignKey(references=Member, on_delete=OnDelete.restrict, null=True)
    amount = Varchar(length=20, default="", help_text="Amount the gateway reported, as text")


class StaffAlert(Table, tablename="staff_alert"):
    """Something staff must look at: money after expiry, an amount that differs from what was
    asked, an unmatched payment, a malformed callback."""

    kind = Varchar(length=30, index=True)
    message = Text()
    payment = ForeignKey(references=Payment, on_delete=OnDelete.restrict, null=True)
    callback = ForeignKey(references=GatewayCallback, on_delete=OnDelete.restrict, null=True)
    created_at = Timestamptz(index=True)
    resolved = Boolean(default=False, index=True)
    resolved_by = Integer(null=True)
    resolved_at = Timestamptz(null=True, default=None)


class GatewayRequest(Table, tablename="gateway_request"):
    """An asynchronous request we made of a gateway (an M-Pesa reversal, a status query) whose
    answer comes later as a callback: what was asked, by whom, why, and how it ended."""

    class Status(str, Enum):
        requested = "requested"
        sending = "sending"  # claimed by one sender (non-idempotent gateway calls)
        sent = "sent"
        timed_out = "timed_out"  # Daraja stopped waiting; its Result may still come
        succeeded = "succeeded"
        failed = "failed"

    gateway = Varchar(length=20)
    kind = Varchar(length=20)  # reversal (Daraja) | refund (Flutterwave)
    payment = ForeignKey(references=Payment, on_delete=OnDelete.restrict, null=True, index=True)
    amount = Varchar(length=20, default="")
    reason = Text(default="")
    staff = Integer(null=True, default=None)
    originator_conversation_id = Varchar(length=120, null=True, default=None, unique=True)
    conversation_id = Varchar(length=120, null=True, default=None)
    status = Varchar(length=12, choices=Status, default=Status.requested, index=True)
    result_code = Varchar(length=20, default="")
    result_desc = Text(default="")
    created_at = Timestamptz()
    finished_at = Timestamptz(null=True, default=None)
