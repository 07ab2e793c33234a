"""Indexes the dashboards need at 20,000 members and 500,000 payments (portal/dues.py,
portal/analytics.py): open invoices in due order, each member's last payment, payments in flight."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-11-26T10:16:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "dashboard indexes"

FORWARDS = [
    "CREATE INDEX invoice_open_by_due ON invoice (due_date, id) WHERE status IN ('open', 'partially_paid')",
    "CREATE INDEX payment_member_last_completed ON payment (member, completed_at DESC) WHERE completed_at IS NOT NULL",
    "CREATE INDEX payment_member_in_flight ON payment (member) WHERE status IN ('pending', 'processing')",
]

BACKWARDS = [
    "DROP INDEX IF EXISTS payment_member_in_flight",
    "DROP INDEX IF EXISTS payment_member_last_completed",
    "DROP INDEX IF EXISTS invoice_open_by_due",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
