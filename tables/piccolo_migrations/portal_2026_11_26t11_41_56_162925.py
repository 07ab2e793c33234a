from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar

ID = "2026-11-26T11:41:56:162925"
VERSION = "1.38.0"
DESCRIPTION = "document_subject_length"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="portal", description=DESCRIPTION
    )

    manager.alter_column(
        table_class_name="Document",
        tablename="document",
        column_name="subject",
        db_column_name="subject",
        params={"length": 120},
        old_params={"length": 40},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    return manager
