"""Piccolo's configuration: one engine, pointed wherever portal.db resolves the database to be."""

from piccolo.conf.apps import AppRegistry

from portal.lib.db import PortalEngine, resolve_dsn
from portal.settings import get_settings

DB = PortalEngine(config={"dsn": resolve_dsn(get_settings())})

APP_REGISTRY = AppRegistry(
    apps=[
        "tables.piccolo_app",
        "piccolo.apps.user.piccolo_app",
        "piccolo_api.session_auth.piccolo_app",
    ]
)
