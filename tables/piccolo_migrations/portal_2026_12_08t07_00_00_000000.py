"""Staff: the weekly money-edits email (portal/reports/money_edits.py), opt-in like the daily digest."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-08T07:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "staff weekly money edits"

FORWARDS = ["ALTER TABLE staff ADD COLUMN weekly_money_edits boolean NOT NULL DEFAULT false"]
BACKWARDS = ["ALTER TABLE staff DROP COLUMN IF EXISTS weekly_money_edits"]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
