"""Payment events: the settlement events written before `kind` existed get their kind, and the
column accepts only the two kinds (see the previous migration)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-06T23:51:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "payment_event kind backfill"

# Events are append-only (a trigger refuses UPDATE): the one backfill runs with it off, in this
# migration's transaction, so no other writer can slip an edit in meanwhile.
FORWARDS = [
    "ALTER TABLE payment_event DISABLE TRIGGER payment_event_append_only",
    "UPDATE payment_event SET kind = 'settlement' WHERE reason = 'settled' AND old_status = 'completed' "
    "AND new_status = 'completed'",
    "ALTER TABLE payment_event ENABLE TRIGGER payment_event_append_only",
    "ALTER TABLE payment_event ADD CONSTRAINT payment_event_kind CHECK (kind IN ('status', 'settlement'))",
]
BACKWARDS = ["ALTER TABLE payment_event DROP CONSTRAINT IF EXISTS payment_event_kind"]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
