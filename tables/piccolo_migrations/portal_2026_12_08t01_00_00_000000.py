"""Each member's language for what they read (SMS, emails, the pay page, receipts): English or
Swahili. Existing members keep English."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-08T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Member language (en, sw)"

FORWARDS = [
    "ALTER TABLE member ADD COLUMN IF NOT EXISTS language varchar(2) NOT NULL DEFAULT 'en'",
    "ALTER TABLE member ADD CONSTRAINT member_language_known CHECK (language IN ('en', 'sw'))",
]

BACKWARDS = [
    "ALTER TABLE member DROP CONSTRAINT IF EXISTS member_language_known",
    "ALTER TABLE member DROP COLUMN IF EXISTS language",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
