"""Visits: every check-in at the door (tables/visits.py)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-07T19:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "visit"

FORWARDS = [
    """CREATE TABLE visit (
        id serial PRIMARY KEY,
        member integer NOT NULL REFERENCES member (id) ON DELETE RESTRICT,
        staff integer NULL REFERENCES staff (id) ON DELETE RESTRICT,
        location integer NULL REFERENCES location (id) ON DELETE RESTRICT,
        at timestamptz NOT NULL DEFAULT now(),
        colour varchar(5) NOT NULL CHECK (colour IN ('green', 'amber', 'red')),
        outcome varchar(8) NOT NULL CHECK (outcome IN ('allowed', 'refused', 'override')),
        reason text NOT NULL DEFAULT '',
        override_reason text NOT NULL DEFAULT '',
        overridden_by integer NULL REFERENCES staff (id) ON DELETE RESTRICT,
        overridden_at timestamptz NULL,
        CHECK ((outcome = 'override') = (override_reason <> ''))
    )""",
    # The member page's recent visits and "last seen"; the managers' counts by day.
    "CREATE INDEX visit_member_at ON visit (member, at DESC)",
    "CREATE INDEX visit_at ON visit (at)",
]

BACKWARDS = ["DROP TABLE IF EXISTS visit"]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
