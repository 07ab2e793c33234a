"""The reconciliation page (issue 16): what the gateways told us, line by line (gateway_line),
how each difference was settled (reconcile_resolution, one per difference: a second click finds it),
and the days a manager marked reconciled (reconcile_day, one per day); bank statements: each bank's
column mapping (bank_format) and each file imported once (bank_statement, by its SHA-256). Statement lines imported
before this migration are copied into gateway_line, so earlier statements count on the page.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-09T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "gateway_line, reconcile_resolution, reconcile_day, bank_format, bank_statement: the reconciliation page"

FORWARDS = [
    """CREATE TABLE IF NOT EXISTS gateway_line (
        id serial PRIMARY KEY,
        channel varchar(20) NOT NULL CHECK (channel IN ('mpesa', 'card', 'bank')),
        external_id varchar(120) NOT NULL,
        day date NOT NULL,
        amount numeric(12, 2) NOT NULL CHECK (amount > 0),
        source varchar(20) NOT NULL,
        account varchar(120) NOT NULL DEFAULT '',
        payer varchar(200) NOT NULL DEFAULT '',
        callback integer NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (channel, external_id)
    )""",
    "CREATE INDEX IF NOT EXISTS gateway_line_day ON gateway_line (day, channel)",
    "CREATE INDEX IF NOT EXISTS gateway_line_external_id ON gateway_line (external_id)",
    """CREATE TABLE IF NOT EXISTS reconcile_resolution (
        id serial PRIMARY KEY,
        day date NOT NULL,
        channel varchar(20) NOT NULL,
        key varchar(130) NOT NULL,
        action varchar(20) NOT NULL CHECK (action IN ('credited', 'not_ours', 'refunded', 'explained')),
        reason text NOT NULL CHECK (btrim(reason) <> ''),
        amount numeric(12, 2) NOT NULL,
        payment integer NULL REFERENCES payment (id) ON DELETE RESTRICT,
        staff integer NOT NULL REFERENCES staff (id) ON DELETE RESTRICT,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (key)
    )""",
    "CREATE INDEX IF NOT EXISTS reconcile_resolution_day ON reconcile_resolution (day)",
    """CREATE TABLE IF NOT EXISTS reconcile_day (
        id serial PRIMARY KEY,
        day date NOT NULL UNIQUE,
        staff integer NOT NULL REFERENCES staff (id) ON DELETE RESTRICT,
        note text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE IF NOT EXISTS bank_format (
        id serial PRIMARY KEY,
        name varchar(80) NOT NULL UNIQUE,
        date_column varchar(80) NOT NULL,
        date_format varchar(20) NOT NULL,
        description_column varchar(80) NOT NULL,
        reference_column varchar(80) NOT NULL DEFAULT '',
        credit_column varchar(80) NOT NULL DEFAULT '',
        debit_column varchar(80) NOT NULL DEFAULT '',
        amount_column varchar(80) NOT NULL DEFAULT '',
        saved_by integer NULL REFERENCES staff (id) ON DELETE RESTRICT,
        saved_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((amount_column <> '') <> (credit_column <> ''))
    )""",
    """CREATE TABLE IF NOT EXISTS bank_statement (
        id serial PRIMARY KEY,
        file_hash varchar(71) NOT NULL UNIQUE,
        format integer NOT NULL REFERENCES bank_format (id) ON DELETE RESTRICT,
        filename varchar(200) NOT NULL DEFAULT '',
        period_start date NOT NULL,
        period_end date NOT NULL,
        line_count integer NOT NULL,
        credits numeric(12, 2) NOT NULL,
        imported_by integer NULL REFERENCES staff (id) ON DELETE RESTRICT,
        imported_at timestamptz NOT NULL DEFAULT now(),
        summary jsonb NOT NULL DEFAULT '{}'
    )""",
    # Statements imported before the page existed: their money in, once per receipt code.
    """INSERT INTO gateway_line (channel, external_id, day, amount, source, account, payer, callback)
       SELECT DISTINCT ON (receipt)
              'mpesa', receipt, (completed_at AT TIME ZONE 'Africa/Nairobi')::date, paid_in, 'statement', account,
              other_party, callback
         FROM mpesa_statement_line
        WHERE direction = 'in' AND lower(status) = 'completed' AND paid_in > 0
        ORDER BY receipt, id
       ON CONFLICT (channel, external_id) DO NOTHING""",
]

BACKWARDS = [
    "DROP TABLE IF EXISTS bank_statement",
    "DROP TABLE IF EXISTS bank_format",
    "DROP TABLE IF EXISTS reconcile_day",
    "DROP TABLE IF EXISTS reconcile_resolution",
    "DROP TABLE IF EXISTS gateway_line",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
