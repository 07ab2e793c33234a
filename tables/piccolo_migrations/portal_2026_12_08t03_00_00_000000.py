"""Membership freezes (tables/freezes.py): a pause of a membership between two dates."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-08T03:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "membership_freeze"

FORWARDS = [
    """CREATE TABLE membership_freeze (
        id serial PRIMARY KEY,
        membership integer NOT NULL REFERENCES membership (id) ON DELETE RESTRICT,
        member integer NOT NULL REFERENCES member (id) ON DELETE RESTRICT,
        start_date date NOT NULL,
        end_date date NOT NULL,
        days integer NOT NULL CHECK (days >= 0),
        status varchar(10) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
        reason text NOT NULL CHECK (reason <> ''),
        fee numeric(12, 2) NOT NULL DEFAULT 0 CHECK (fee >= 0),
        fee_invoice integer NULL REFERENCES invoice (id) ON DELETE RESTRICT,
        ended_early_reason text NOT NULL DEFAULT '',
        ended_by integer NULL REFERENCES staff (id) ON DELETE RESTRICT,
        ended_at timestamptz NULL,
        created_by integer NULL REFERENCES staff (id) ON DELETE RESTRICT,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK (status = 'cancelled' OR (end_date >= start_date AND days = end_date - start_date + 1))
    )""",
    # "Is this member frozen on day D": reminders, holds and check-in ask it per member.
    "CREATE INDEX membership_freeze_member ON membership_freeze (member, start_date, end_date) WHERE status = 'active'",
    "CREATE INDEX membership_freeze_membership ON membership_freeze (membership)",
]

BACKWARDS = ["DROP TABLE IF EXISTS membership_freeze"]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
