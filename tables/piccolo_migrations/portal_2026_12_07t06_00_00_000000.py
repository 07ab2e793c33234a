"""backup_status: the outcome of the last backups, one row, for `portal backup` and the staff header.

One row (id 1) so that the admin header's warning ("no good backup for two days") is a single
primary-key read. `since` is when watching began (this migration, or a restore), so a fresh install
has two days before its first nightly backup is missed.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-07T06:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "backup_status"

FORWARDS = [
    """CREATE TABLE backup_status (
        id integer PRIMARY KEY CHECK (id = 1),
        since timestamptz NOT NULL DEFAULT now(),
        last_ok_at timestamptz,
        last_ok_file text,
        last_ok_bytes bigint,
        last_failed_at timestamptz,
        last_error text
    )""",
    "INSERT INTO backup_status (id) VALUES (1)",
]

BACKWARDS = ["DROP TABLE IF EXISTS backup_status"]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
