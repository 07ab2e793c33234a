"""Payment figures (tables/figures.py): counts and sums per UTC hour and for all time, kept by
statement triggers on `payment` in the same transaction as the money, and filled from the
payments there are. The analytics' money series and outcomes and the payments list's totals read
them, so they cost in proportion to the hours asked for, not to the payments in them or in all
history (portal/payments/figures.py). And the refund entries by time, for the series' refunds."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-09T04:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "payment figures kept by trigger"

COLUMNS = "method, status, staff, location, created_at, completed_at, amount, refunded"

# Each change's difference, per key: +1 for a row as it is now, -1 for the row as it was. A
# payment's created-hour and all-time rows carry its status, staff and location; its completed-hour
# row only its method (the series of money received reads no more). Keys are written in one order,
# so two statements never take the same rows in opposite orders.
ADD = """
INSERT INTO payment_figure AS f (basis, hour, method, status, staff, location, slot, n, amount, refunded)
SELECT k.basis, k.hour, d.method, k.status, k.staff, k.location, {slot},
       sum(d.sign), sum(d.sign * d.amount), sum(d.sign * coalesce(d.refunded, 0))
FROM ({rows}) d
CROSS JOIN LATERAL (VALUES
    ('created', date_trunc('hour', d.created_at), d.status, coalesce(d.staff, 0), coalesce(d.location, 0)),
    ('completed', date_trunc('hour', d.completed_at), '', 0, 0),
    ('all', 'epoch'::timestamptz, d.status, coalesce(d.staff, 0), coalesce(d.location, 0))
) AS k (basis, hour, status, staff, location)
WHERE k.hour IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6
HAVING sum(d.sign) <> 0 OR sum(d.sign * d.amount) <> 0 OR sum(d.sign * coalesce(d.refunded, 0)) <> 0
ORDER BY 1, 2, 3, 4, 5, 6
ON CONFLICT (basis, hour, method, status, staff, location, slot) DO UPDATE
SET n = f.n + EXCLUDED.n, amount = f.amount + EXCLUDED.amount, refunded = f.refunded + EXCLUDED.refunded
"""
SLOT = "(pg_backend_pid() % 16)::smallint"
NEW_ROWS = f"SELECT 1 AS sign, {COLUMNS} FROM new_rows"
OLD_ROWS = f"SELECT -1 AS sign, {COLUMNS} FROM old_rows"


def _function(name: str, rows: str) -> str:
    return (f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
            f"{ADD.format(slot=SLOT, rows=rows)};\nRETURN NULL;\nEND\n$$")


FORWARDS = [
    """CREATE TABLE payment_figure (
        id bigserial PRIMARY KEY,
        basis varchar(10) NOT NULL CHECK (basis IN ('created', 'completed', 'all')),
        hour timestamptz NOT NULL,
        method varchar(10) NOT NULL,
        status varchar(20) NOT NULL,
        staff bigint NOT NULL,
        location bigint NOT NULL,
        slot smallint NOT NULL,
        n bigint NOT NULL,
        amount numeric(16, 2) NOT NULL,
        refunded numeric(16, 2) NOT NULL
    )""",
    "CREATE UNIQUE INDEX payment_figure_key ON payment_figure (basis, hour, method, status, staff, location, slot)",
    # What is there already, in one pass (slot 0: no writer's).
    ADD.format(slot="0::smallint", rows=f"SELECT 1 AS sign, {COLUMNS} FROM payment"),
    _function("payment_figures_inserted", NEW_ROWS),
    _function("payment_figures_updated", f"{NEW_ROWS} UNION ALL {OLD_ROWS}"),
    _function("payment_figures_deleted", OLD_ROWS),
    "CREATE TRIGGER payment_figures_inserted AFTER INSERT ON payment REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION payment_figures_inserted()",
    "CREATE TRIGGER payment_figures_updated AFTER UPDATE ON payment REFERENCING OLD TABLE AS old_rows "
    "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION payment_figures_updated()",
    "CREATE TRIGGER payment_figures_deleted AFTER DELETE ON payment REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION payment_figures_deleted()",
    "ANALYZE payment_figure",
    # The series' refunds, found among a period's refund entries only (not every entry of the
    # period: at 500,000 payments 119 refunds in 30 days sat among 24,000 other entries).
    "CREATE INDEX IF NOT EXISTS ledger_entry_refund_at ON ledger_entry (at) WHERE kind = 'refund'",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS ledger_entry_refund_at",
    "DROP TRIGGER IF EXISTS payment_figures_inserted ON payment",
    "DROP TRIGGER IF EXISTS payment_figures_updated ON payment",
    "DROP TRIGGER IF EXISTS payment_figures_deleted ON payment",
    "DROP FUNCTION IF EXISTS payment_figures_inserted()",
    "DROP FUNCTION IF EXISTS payment_figures_updated()",
    "DROP FUNCTION IF EXISTS payment_figures_deleted()",
    "DROP TABLE IF EXISTS payment_figure",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
