"""M-Pesa statements and their lines (tables/reconcile.py)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-08T05:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "mpesa_statement"

OUTCOMES = ("matched", "amount_differs", "credited", "unmatched", "waiting", "reversal", "not_payment",
            "not_completed")

FORWARDS = [
    """CREATE TABLE mpesa_statement (
        id serial PRIMARY KEY,
        file_hash varchar(71) NOT NULL UNIQUE,
        filename varchar(200) NOT NULL DEFAULT '',
        period_start date NOT NULL,
        period_end date NOT NULL,
        line_count integer NOT NULL CHECK (line_count >= 0),
        paid_in numeric(12, 2) NOT NULL,
        withdrawn numeric(12, 2) NOT NULL,
        imported_by integer NULL REFERENCES staff (id) ON DELETE RESTRICT,
        imported_at timestamptz NOT NULL DEFAULT now(),
        seconds numeric(8, 3) NOT NULL DEFAULT 0,
        summary jsonb NOT NULL DEFAULT '{}',
        CHECK (period_start <= period_end)
    )""",
    f"""CREATE TABLE mpesa_statement_line (
        id serial PRIMARY KEY,
        statement integer NOT NULL REFERENCES mpesa_statement (id) ON DELETE CASCADE,
        line_no integer NOT NULL,
        receipt varchar(20) NOT NULL,
        direction varchar(3) NOT NULL CHECK (direction IN ('in', 'out')),
        completed_at timestamptz NOT NULL,
        details text NOT NULL DEFAULT '',
        status varchar(40) NOT NULL DEFAULT '',
        paid_in numeric(12, 2) NOT NULL DEFAULT 0 CHECK (paid_in >= 0),
        withdrawn numeric(12, 2) NOT NULL DEFAULT 0 CHECK (withdrawn >= 0),
        reason_type varchar(80) NOT NULL DEFAULT '',
        other_party varchar(200) NOT NULL DEFAULT '',
        linked_receipt varchar(20) NOT NULL DEFAULT '',
        account varchar(60) NOT NULL DEFAULT '',
        outcome varchar(20) NOT NULL CHECK (outcome IN {OUTCOMES!r}),
        payment integer NULL REFERENCES payment (id) ON DELETE RESTRICT,
        member integer NULL REFERENCES member (id) ON DELETE RESTRICT,
        callback integer NULL,
        note text NOT NULL DEFAULT '',
        UNIQUE (statement, receipt, direction)
    )""",
    "CREATE INDEX mpesa_statement_line_statement_outcome ON mpesa_statement_line (statement, outcome, line_no)",
    "CREATE INDEX mpesa_statement_line_receipt ON mpesa_statement_line (receipt)",
]

BACKWARDS = ["DROP TABLE IF EXISTS mpesa_statement_line", "DROP TABLE IF EXISTS mpesa_statement"]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
