"""Analytics at size: allocations by time (the period's payments to invoices, days to pay)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-11-26T10:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "allocation time index"

FORWARDS = ["CREATE INDEX IF NOT EXISTS allocation_at ON allocation (at, invoice)"]
BACKWARDS = ["DROP INDEX IF EXISTS allocation_at"]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
