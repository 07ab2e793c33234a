"""reconcile_finding: what the daily reconciliation passes found in a gateway's books and not in
the portal's (a card success no webhook brought, a refund made on Flutterwave's dashboard), one
row per gateway record and kind (unique), so running a pass again adds nothing.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-08T06:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "reconcile_finding: differences found by the reconciliation passes"

FORWARDS = [
    """CREATE TABLE IF NOT EXISTS reconcile_finding (
        id serial PRIMARY KEY,
        source varchar(20) NOT NULL,
        kind varchar(30) NOT NULL,
        external_id varchar(120) NOT NULL,
        day date NOT NULL,
        payment integer NULL REFERENCES payment (id) ON DELETE RESTRICT,
        amount varchar(20) NOT NULL DEFAULT '',
        currency varchar(3) NOT NULL DEFAULT '',
        note text NOT NULL DEFAULT '',
        found_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (source, kind, external_id)
    )""",
    "CREATE INDEX IF NOT EXISTS reconcile_finding_payment ON reconcile_finding (payment)",
    "CREATE INDEX IF NOT EXISTS reconcile_finding_day ON reconcile_finding (day)",
]

BACKWARDS = [
    "DROP TABLE IF EXISTS reconcile_finding",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
