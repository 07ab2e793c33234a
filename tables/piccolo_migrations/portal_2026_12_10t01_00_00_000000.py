"""Statement uploads imported by the worker while the page shows their progress
(portal/reconcile/uploads.py): the file kept until its import ends, the lines matched so far."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-10T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "statement_upload: large statement imports run by the worker, with their progress"

FORWARDS = [
    """CREATE TABLE IF NOT EXISTS statement_upload (
        id serial PRIMARY KEY,
        filename varchar(200) NOT NULL DEFAULT '',
        data bytea NOT NULL,
        staff integer NULL REFERENCES staff (id) ON DELETE RESTRICT,
        state varchar(10) NOT NULL DEFAULT 'waiting'
            CHECK (state IN ('waiting', 'running', 'done', 'refused', 'failed')),
        phase varchar(10) NOT NULL DEFAULT '' CHECK (phase IN ('', 'reading', 'matching')),
        done integer NOT NULL DEFAULT 0,
        total integer NOT NULL DEFAULT 0,
        statement integer NULL REFERENCES mpesa_statement (id) ON DELETE SET NULL,
        new boolean NULL,
        error text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz NULL,
        finished_at timestamptz NULL
    )""",
]
BACKWARDS = [
    "DROP TABLE IF EXISTS statement_upload",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
