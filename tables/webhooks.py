"""Outbound webhooks (portal/webhooks.py): endpoints admins register, the outbox of events written
in the same transaction as the change they announce, and one delivery per endpoint and event.

`secret` is the endpoint's Standard Webhooks signing secret (`whsec_` + base64). It must be kept
as it is to sign with, so it is stored as the gateways' secrets are, is shown once when made, and
never leaves the database otherwise (no page, log line or API answer shows it).
"""

from piccolo.columns import JSONB, BigInt, Boolean, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from tables.staff import Staff


class WebhookEndpoint(Table, tablename="webhook_endpoint"):
    url = Varchar(length=500)
    description = Varchar(length=200, default="")
    events = Text(help_text="Comma-separated event types wanted")
    secret = Varchar(length=100, secret=True)
    enabled = Boolean(default=True)
    failing_since = Timestamptz(null=True, default=None)
    disabled_at = Timestamptz(null=True, default=None)
    disabled_reason = Text(default="")
    created_by = ForeignKey(references=Staff, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz(default=TimestamptzNow())


class WebhookEvent(Table, tablename="webhook_event"):
    type = Varchar(length=40)
    resource = Varchar(length=20)
    resource_id = Integer()
    data = JSONB(default={})
    created_at = Timestamptz(default=TimestamptzNow())


class WebhookDelivery(Table, tablename="webhook_delivery"):
    """pending -> sending -> delivered | pending (back-off) | failed (3 days of failures)."""

    endpoint = ForeignKey(references=WebhookEndpoint, on_delete=OnDelete.cascade)
    event = BigInt()
    status = Varchar(length=12, default="pending")
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow())
    retry_until = Timestamptz()
    claimed_at = Timestamptz(null=True, default=None)
    delivered_at = Timestamptz(null=True, default=None)
    last_attempt_at = Timestamptz(null=True, default=None)
    last_status = Integer(null=True, default=None)
    last_ms = Integer(null=True, default=None)
    last_body = Text(default="")
    last_error = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())

