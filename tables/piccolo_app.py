import os

from piccolo.conf.apps import AppConfig, table_finder

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="portal",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "piccolo_migrations"),
    table_classes=table_finder(
        modules=["tables.locations", "tables.staff", "tables.members", "tables.audit", "tables.billing", "tables.ledger", "tables.gateway",
                 "tables.gateway_tokens", "tables.rate_limits", "tables.closes", "tables.messages", "tables.api", "tables.visits", "tables.webhooks",
                 "tables.freezes", "tables.reconcile", "tables.payers", "tables.sales", "tables.figures", "tables.discounts"],
        exclude_imported=True,
    ),
    migration_dependencies=[
        "piccolo.apps.user.piccolo_app",
        "piccolo_api.session_auth.piccolo_app",
    ],
    commands=[],
)
