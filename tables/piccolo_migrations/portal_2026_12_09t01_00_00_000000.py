"""Discounts and promo codes (tables/discounts.py), and the discounts ledger account.

The known-account constraint is rebuilt whole: every account portal/billing/ledger.py knows,
the revenue streams of the catalogue included, plus `discounts` (contra-revenue)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-09T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "discounts and promo codes"

FORWARDS = [
    """CREATE TABLE promo_code (
        id serial PRIMARY KEY,
        code varchar(30) NOT NULL UNIQUE CHECK (code ~ '^[A-Z0-9-]{3,30}$'),
        kind varchar(10) NOT NULL CHECK (kind IN ('percent', 'amount')),
        value numeric(12, 2) NOT NULL CHECK (value > 0 AND (kind = 'amount' OR value <= 100)),
        description text NOT NULL DEFAULT '',
        valid_from date NOT NULL,
        valid_to date NOT NULL,
        max_uses integer NULL CHECK (max_uses > 0),
        max_per_member integer NULL CHECK (max_per_member > 0),
        plans integer[] NOT NULL DEFAULT '{}',
        items integer[] NOT NULL DEFAULT '{}',
        active boolean NOT NULL DEFAULT true,
        created_by integer NULL REFERENCES staff (id) ON DELETE RESTRICT,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK (valid_to >= valid_from)
    )""",
    """CREATE TABLE discount (
        id serial PRIMARY KEY,
        invoice integer NOT NULL REFERENCES invoice (id) ON DELETE RESTRICT,
        member integer NOT NULL REFERENCES member (id) ON DELETE RESTRICT,
        invoice_line integer NULL REFERENCES invoice_line (id) ON DELETE RESTRICT,
        discount_line integer NULL UNIQUE REFERENCES invoice_line (id) ON DELETE RESTRICT,
        kind varchar(10) NOT NULL CHECK (kind IN ('percent', 'amount')),
        value numeric(12, 2) NOT NULL CHECK (value > 0),
        amount numeric(12, 2) NOT NULL CHECK (amount > 0),
        net numeric(12, 2) NOT NULL,
        vat numeric(12, 2) NOT NULL,
        currency varchar(3) NOT NULL DEFAULT 'KES',
        reason text NOT NULL CHECK (length(trim(reason)) > 0),
        promo integer NULL REFERENCES promo_code (id) ON DELETE RESTRICT,
        status varchar(10) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
        requested_by integer NULL REFERENCES staff (id) ON DELETE RESTRICT,
        approved_by integer NULL REFERENCES staff (id) ON DELETE RESTRICT,
        decided_at timestamptz NULL,
        decision_note text NOT NULL DEFAULT '',
        entry integer NULL REFERENCES ledger_entry (id) ON DELETE RESTRICT,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK (net + vat = amount),
        CHECK ((status = 'approved') = (entry IS NOT NULL))
    )""",
    "CREATE INDEX discount_invoice ON discount (invoice)",
    "CREATE INDEX discount_pending ON discount (created_at) WHERE status = 'pending'",
    "CREATE INDEX discount_promo_member ON discount (promo, member) WHERE promo IS NOT NULL AND status <> 'rejected'",
    "ALTER TABLE ledger_leg DROP CONSTRAINT ledger_leg_known_account",
    """ALTER TABLE ledger_leg ADD CONSTRAINT ledger_leg_known_account CHECK (account IN
        ('cash', 'bank', 'cheque', 'mpesa', 'card', 'receivable', 'member_credit', 'revenue', 'vat_payable',
         'gateway_fees', 'revenue_training', 'revenue_retail', 'revenue_fees', 'discounts'))""",
]

BACKWARDS = [
    "ALTER TABLE ledger_leg DROP CONSTRAINT ledger_leg_known_account",
    """ALTER TABLE ledger_leg ADD CONSTRAINT ledger_leg_known_account CHECK (account IN
        ('cash', 'bank', 'cheque', 'mpesa', 'card', 'receivable', 'member_credit', 'revenue', 'vat_payable',
         'gateway_fees', 'revenue_training', 'revenue_retail', 'revenue_fees')) NOT VALID""",
    "DROP TABLE IF EXISTS discount",
    "DROP TABLE IF EXISTS promo_code",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
