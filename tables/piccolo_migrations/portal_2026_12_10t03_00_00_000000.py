"""The promo codes page counts each code's uses and what it gave (portal/web/discounts.py,
PROMOS_SQL): without an index on discount.promo that read every discount there is (a seq scan of
3,611 at 2,000 members / 50,000 payments, 6.5 ms; ten times that at 20,000 / 500,000). Only the
discounts a code gave are indexed: most have none."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-10T03:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "index the discounts a promo code gave"

FORWARDS = [
    "CREATE INDEX IF NOT EXISTS discount_promo ON discount (promo) WHERE promo IS NOT NULL",
    "ANALYZE discount",
]
BACKWARDS = ["DROP INDEX IF EXISTS discount_promo"]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
