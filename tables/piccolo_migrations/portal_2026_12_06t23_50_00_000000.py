"""Payment events get a kind: `status` (a move of the state machine, or the payment's birth) or
`settlement` (what a completed payment settled, and the balances right after). Until now the
settlement was an event whose reason was the string "settled", found by matching that string."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar

ID = "2026-12-06T23:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "payment_event kind"

async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_column(
        table_class_name="PaymentEvent",
        tablename="payment_event",
        column_name="kind",
        db_column_name="kind",
        column_class_name="Varchar",
        column_class=Varchar,
        params={"length": 20, "default": "status", "null": False, "primary_key": False, "unique": False,
                "index": False, "index_method": None, "choices": None, "db_column_name": None, "secret": False},
        schema=None,
    )
    return manager
