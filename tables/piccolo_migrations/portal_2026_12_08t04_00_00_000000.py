"""Payers for others: payer, payer_member, invoice_bill_to, payer_payment (tables/payers.py)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-08T04:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "payers"

FORWARDS = [
    """CREATE TABLE payer (
        id serial PRIMARY KEY,
        kind varchar(10) NOT NULL DEFAULT 'person' CHECK (kind IN ('person', 'company')),
        name varchar(120) NOT NULL,
        phone varchar(12) NOT NULL DEFAULT '',
        email varchar(254) NOT NULL DEFAULT '',
        address text NOT NULL DEFAULT '',
        kra_pin varchar(11) NOT NULL DEFAULT '',
        created_by integer NULL REFERENCES staff (id) ON DELETE RESTRICT,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK (kra_pin = '' OR kra_pin ~ '^[A-Z][0-9]{9}[A-Z]$')
    )""",
    "CREATE INDEX payer_name ON payer (lower(name))",
    """CREATE TABLE payer_member (
        id serial PRIMARY KEY,
        payer integer NOT NULL REFERENCES payer (id) ON DELETE RESTRICT,
        member integer NOT NULL UNIQUE REFERENCES member (id) ON DELETE RESTRICT,
        linked_by integer NULL REFERENCES staff (id) ON DELETE RESTRICT,
        linked_at timestamptz NOT NULL DEFAULT now()
    )""",
    "CREATE INDEX payer_member_payer ON payer_member (payer)",
    # Who an invoice was addressed to, as it was at issue: never updated afterwards.
    """CREATE TABLE invoice_bill_to (
        id serial PRIMARY KEY,
        invoice integer NOT NULL UNIQUE REFERENCES invoice (id) ON DELETE RESTRICT,
        payer integer NOT NULL REFERENCES payer (id) ON DELETE RESTRICT,
        kind varchar(10) NOT NULL,
        name varchar(120) NOT NULL,
        address text NOT NULL DEFAULT '',
        kra_pin varchar(11) NOT NULL DEFAULT '',
        phone varchar(12) NOT NULL DEFAULT '',
        email varchar(254) NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX invoice_bill_to_payer ON invoice_bill_to (payer)",
    """CREATE TABLE payer_payment (
        id serial PRIMARY KEY,
        payment integer NOT NULL UNIQUE REFERENCES payment (id) ON DELETE RESTRICT,
        payer integer NOT NULL REFERENCES payer (id) ON DELETE RESTRICT
    )""",
    "CREATE INDEX payer_payment_payer ON payer_payment (payer)",
]

BACKWARDS = ["DROP TABLE IF EXISTS payer_payment", "DROP TABLE IF EXISTS invoice_bill_to",
             "DROP TABLE IF EXISTS payer_member", "DROP TABLE IF EXISTS payer"]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
