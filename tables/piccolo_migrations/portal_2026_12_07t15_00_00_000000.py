"""Two indexes for the renewals and dues reports (the pages and the API's /renewals and /dues),
found by `make bench` at 20,000 members / 500,000 payments:

- "Renewed" asks, for each membership ending in the window, whether the member has a later
  pending or active one. Through `membership_member` it read all of the member's memberships
  (about 20 at that size) to keep none: 140 ms for a week's 2,500 endings. On (member,
  start_date) over pending and active memberships only, it reads the answer: 4 ms.
- The dues summary (count and amount owed per urgency, over every open invoice) read 6,400
  invoices from the heap through `invoice_status`: 30 ms. Covering the columns it sums, over open
  invoices only, it is an index-only scan: 3 ms.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-07T15:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Indexes for renewed memberships and the dues summary"

FORWARDS = [
    "CREATE INDEX IF NOT EXISTS membership_member_later ON membership (member, start_date) "
    "WHERE status IN ('pending', 'active')",
    "CREATE INDEX IF NOT EXISTS invoice_open_owed ON invoice (due_date) INCLUDE (member, total, paid) "
    "WHERE status IN ('open', 'partially_paid')",
]

BACKWARDS = [
    "DROP INDEX IF EXISTS membership_member_later",
    "DROP INDEX IF EXISTS invoice_open_owed",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
