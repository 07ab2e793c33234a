"""Outbound webhooks: endpoints, the outbox of events and one delivery per endpoint (tables/webhooks.py)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-07T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "webhook_endpoint, webhook_event, webhook_delivery, webhook_hold"

FORWARDS = [
    """CREATE TABLE webhook_endpoint (
        id serial PRIMARY KEY,
        url varchar(500) NOT NULL,
        description varchar(200) NOT NULL DEFAULT '',
        events text NOT NULL,
        secret varchar(100) NOT NULL,
        enabled boolean NOT NULL DEFAULT true,
        failing_since timestamptz NULL,
        disabled_at timestamptz NULL,
        disabled_reason text NOT NULL DEFAULT '',
        created_by integer NULL REFERENCES staff (id) ON DELETE SET NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE webhook_event (
        id bigserial PRIMARY KEY,
        type varchar(40) NOT NULL,
        resource varchar(20) NOT NULL,
        resource_id integer NOT NULL,
        data jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    "CREATE INDEX webhook_event_resource ON webhook_event (resource, resource_id, id)",
    """CREATE TABLE webhook_delivery (
        id bigserial PRIMARY KEY,
        endpoint integer NOT NULL REFERENCES webhook_endpoint (id) ON DELETE CASCADE,
        event bigint NOT NULL REFERENCES webhook_event (id) ON DELETE CASCADE,
        status varchar(12) NOT NULL DEFAULT 'pending',
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        retry_until timestamptz NOT NULL,
        claimed_at timestamptz NULL,
        delivered_at timestamptz NULL,
        last_attempt_at timestamptz NULL,
        last_status integer NULL,
        last_ms integer NULL,
        last_body text NOT NULL DEFAULT '',
        last_error text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (endpoint, event)
    )""",
    "CREATE INDEX webhook_delivery_due ON webhook_delivery (endpoint, next_attempt_at) WHERE status = 'pending'",
    "CREATE INDEX webhook_delivery_sending ON webhook_delivery (claimed_at) WHERE status = 'sending'",
    "CREATE INDEX webhook_delivery_log ON webhook_delivery (endpoint, id DESC)",
    "CREATE INDEX webhook_delivery_event ON webhook_delivery (event)",
    # Members last announced as on hold: a hold is a rule over dates (portal/members/holds.py),
    # not a stored status, so on_hold/hold_cleared are the difference from this set.
    """CREATE TABLE webhook_hold (
        member integer PRIMARY KEY REFERENCES member (id) ON DELETE CASCADE,
        since timestamptz NOT NULL DEFAULT now()
    )""",
]

BACKWARDS = ["DROP TABLE IF EXISTS webhook_hold", "DROP TABLE IF EXISTS webhook_delivery",
             "DROP TABLE IF EXISTS webhook_event", "DROP TABLE IF EXISTS webhook_endpoint"]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
