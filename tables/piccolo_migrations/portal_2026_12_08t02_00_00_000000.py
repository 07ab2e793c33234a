"""The catalogue, desk sales, custom invoices and session packs (tables/sales.py)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-08T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "catalogue and sales"

FORWARDS = [
    """CREATE TABLE catalogue_item (
        id serial PRIMARY KEY,
        name varchar(60) NOT NULL UNIQUE,
        category varchar(20) NOT NULL CHECK (category IN ('day_pass', 'personal_training', 'locker',
            'joining_fee', 'drinks', 'supplements', 'other')),
        price numeric(12, 2) NOT NULL CHECK (price > 0),
        currency varchar(3) NOT NULL DEFAULT 'KES',
        vat_rate numeric(5, 2) NOT NULL DEFAULT 0 CHECK (vat_rate >= 0 AND vat_rate <= 100),
        vat_inclusive boolean NOT NULL DEFAULT true,
        revenue_account varchar(30) NOT NULL DEFAULT 'revenue',
        kind varchar(10) NOT NULL DEFAULT 'simple' CHECK (kind IN ('simple', 'pack')),
        sessions integer NOT NULL DEFAULT 0 CHECK ((kind = 'pack') = (sessions > 0)),
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE sale (
        id serial PRIMARY KEY,
        invoice integer NOT NULL UNIQUE REFERENCES invoice (id) ON DELETE RESTRICT,
        kind varchar(10) NOT NULL DEFAULT 'sale' CHECK (kind IN ('sale', 'custom')),
        member integer NULL REFERENCES member (id) ON DELETE RESTRICT,
        buyer_name varchar(80) NOT NULL DEFAULT '',
        buyer_phone varchar(12) NOT NULL DEFAULT '',
        method varchar(10) NOT NULL,
        payment integer NULL REFERENCES payment (id) ON DELETE RESTRICT,
        tendered numeric(12, 2) NULL,
        change numeric(12, 2) NULL CHECK (change IS NULL OR change >= 0),
        reason text NOT NULL DEFAULT '',
        idempotency_key varchar(80) NOT NULL UNIQUE,
        staff integer NULL REFERENCES staff (id) ON DELETE RESTRICT,
        location integer NULL REFERENCES location (id) ON DELETE RESTRICT,
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    "CREATE INDEX sale_member ON sale (member) WHERE member IS NOT NULL",
    "CREATE INDEX sale_payment ON sale (payment) WHERE payment IS NOT NULL",
    """CREATE TABLE sale_line (
        id serial PRIMARY KEY,
        sale integer NOT NULL REFERENCES sale (id) ON DELETE RESTRICT,
        invoice_line integer NOT NULL UNIQUE REFERENCES invoice_line (id) ON DELETE RESTRICT,
        item integer NULL REFERENCES catalogue_item (id) ON DELETE RESTRICT,
        category varchar(20) NOT NULL DEFAULT 'other'
    )""",
    "CREATE INDEX sale_line_sale ON sale_line (sale)",
    """CREATE TABLE session_pack (
        id serial PRIMARY KEY,
        member integer NOT NULL REFERENCES member (id) ON DELETE RESTRICT,
        item integer NOT NULL REFERENCES catalogue_item (id) ON DELETE RESTRICT,
        sale integer NOT NULL REFERENCES sale (id) ON DELETE RESTRICT,
        sessions integer NOT NULL CHECK (sessions > 0),
        used integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK (used >= 0 AND used <= sessions)
    )""",
    "CREATE INDEX session_pack_member ON session_pack (member)",
    """CREATE TABLE session_use (
        id serial PRIMARY KEY,
        pack integer NOT NULL REFERENCES session_pack (id) ON DELETE RESTRICT,
        visit integer NULL REFERENCES visit (id) ON DELETE RESTRICT,
        staff integer NULL REFERENCES staff (id) ON DELETE RESTRICT,
        at timestamptz NOT NULL DEFAULT now()
    )""",
    "CREATE INDEX session_use_pack ON session_use (pack)",
    # Revenue by stream: the accounts a catalogue item may credit (portal/billing/ledger.py REVENUE_ACCOUNTS).
    "ALTER TABLE ledger_leg DROP CONSTRAINT ledger_leg_known_account",
    """ALTER TABLE ledger_leg ADD CONSTRAINT ledger_leg_known_account CHECK (account IN
        ('cash', 'bank', 'cheque', 'mpesa', 'card', 'receivable', 'member_credit', 'revenue', 'vat_payable',
         'gateway_fees', 'revenue_training', 'revenue_retail', 'revenue_fees'))""",
    # Analytics' revenue by category reads invoices by the day they were issued.
    "CREATE INDEX invoice_issue_date ON invoice (issue_date)",
    # The walk-in account (portal/sales/walkin.py) has no phone, so nothing is ever sent to it.
    "ALTER TABLE member DROP CONSTRAINT member_phone_normalised",
    "ALTER TABLE member ADD CONSTRAINT member_phone_normalised CHECK (phone ~ '^254[17][0-9]{8}$' "
    "OR (member_number = 'WALKIN' AND phone = ''))",
]

BACKWARDS = [
    "DROP INDEX IF EXISTS invoice_issue_date",
    "ALTER TABLE ledger_leg DROP CONSTRAINT ledger_leg_known_account",
    """ALTER TABLE ledger_leg ADD CONSTRAINT ledger_leg_known_account CHECK (account IN
        ('cash', 'bank', 'cheque', 'mpesa', 'card', 'receivable', 'member_credit', 'revenue', 'vat_payable',
         'gateway_fees')) NOT VALID""",
    "ALTER TABLE member DROP CONSTRAINT IF EXISTS member_phone_normalised",
    "DELETE FROM member WHERE member_number = 'WALKIN' AND NOT EXISTS (SELECT 1 FROM invoice WHERE member = member.id)",
    "ALTER TABLE member ADD CONSTRAINT member_phone_normalised CHECK (phone ~ '^254[17][0-9]{8}$') NOT VALID",
    "DROP TABLE IF EXISTS session_use",
    "DROP TABLE IF EXISTS session_pack",
    "DROP TABLE IF EXISTS sale_line",
    "DROP TABLE IF EXISTS sale",
    "DROP TABLE IF EXISTS catalogue_item",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
