"""End-of-day closes: every ledger entry gets the business day it counts toward, one close per
location and day, and the gateway_fees account (card money net of what Flutterwave keeps)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

from tables.raw_sql import runner

ID = "2026-11-26T10:11:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "day close rules"

FORWARDS = [
    "CREATE UNIQUE INDEX day_close_location_day ON day_close (location, business_date)",
    "ALTER TABLE ledger_leg DROP CONSTRAINT ledger_leg_known_account",
    """ALTER TABLE ledger_leg ADD CONSTRAINT ledger_leg_known_account CHECK (account IN
        ('cash', 'bank', 'cheque', 'mpesa', 'card', 'receivable', 'member_credit', 'revenue', 'vat_payable',
         'gateway_fees'))""",
    # The close sums a location's money legs for one business day.
    "CREATE INDEX ledger_leg_money_by_location ON ledger_leg (location, entry) WHERE account IN "
    "('cash', 'bank', 'cheque', 'mpesa', 'card')",
]

BACKWARDS = [
    "DROP INDEX IF EXISTS ledger_leg_money_by_location",
    "ALTER TABLE ledger_leg DROP CONSTRAINT ledger_leg_known_account",
    """ALTER TABLE ledger_leg ADD CONSTRAINT ledger_leg_known_account CHECK (account IN
        ('cash', 'bank', 'cheque', 'mpesa', 'card', 'receivable', 'member_credit', 'revenue', 'vat_payable'))""",
    "DROP INDEX IF EXISTS day_close_location_day",
]


async def backfill_business_dates():
    # Entries made before closes existed count toward the local day they were made. The ledger
    # refuses UPDATEs by trigger; this one-off fill is the only exception.
    from portal.settings import get_settings

    tz = str(get_settings().tz)
    engine = engine_finder()
    async with engine.transaction():
        await engine.run_ddl("ALTER TABLE ledger_entry DISABLE TRIGGER ledger_entry_append_only")
        await engine.run_ddl(f"UPDATE ledger_entry SET business_date = (at AT TIME ZONE '{tz}')::date "
                             "WHERE business_date IS NULL")
        await engine.run_ddl("ALTER TABLE ledger_entry ENABLE TRIGGER ledger_entry_append_only")
        await engine.run_ddl("ALTER TABLE ledger_entry ALTER COLUMN business_date SET NOT NULL")


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw(backfill_business_dates)
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
