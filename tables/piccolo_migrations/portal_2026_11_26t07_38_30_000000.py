"""Rules for gateway callbacks and gateway payments."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-11-26T07:38:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "gateway callback rules"

FORWARDS = [
    # One row per thing the gateway sent, however often it sent it.
    "CREATE UNIQUE INDEX gateway_callback_dedupe ON gateway_callback (gateway, kind, dedupe_key)",
    # The sweeper's work list: stored or errored, not yet processed.
    "CREATE INDEX gateway_callback_unprocessed ON gateway_callback (received_at) WHERE processed_at IS NULL",
    # A gateway reference belongs to one payment (one STK CheckoutRequestID, one M-Pesa TransID).
    "CREATE UNIQUE INDEX payment_gateway_ref ON payment (method, gateway_ref) WHERE gateway_ref IS NOT NULL",
    "CREATE INDEX payment_in_flight ON payment (next_check_at) WHERE status IN ('pending', 'processing')",
    "CREATE INDEX staff_alert_open ON staff_alert (created_at) WHERE NOT resolved",
]

BACKWARDS = [
    "DROP INDEX IF EXISTS gateway_callback_dedupe",
    "DROP INDEX IF EXISTS gateway_callback_unprocessed",
    "DROP INDEX IF EXISTS payment_gateway_ref",
    "DROP INDEX IF EXISTS payment_in_flight",
    "DROP INDEX IF EXISTS staff_alert_open",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
