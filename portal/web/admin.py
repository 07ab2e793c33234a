"""piccolo-admin at /admin/ for admins. It reads the same session table (cookie `id`), and only
accepts users flagged admin, which portal.auth sets for the admin role alone."""

from __future__ import annotations

from litestar import asgi
from litestar.types import Receive, Scope, Send
from piccolo_admin.endpoints import create_admin

from portal.settings import get_settings
from tables.piccolo_app import APP_CONFIG

_admin_app = None


def _app():
    global _admin_app
    if _admin_app is None:
        settings = get_settings()
        _admin_app = create_admin(
            tables=APP_CONFIG.table_classes,
            site_name=f"{settings.gym_name} admin",
            production=settings.cookie_secure,
            read_only=False,
        )
    return _admin_app


@asgi("/admin", is_mount=True, copy_scope=True)
async def mount(scope: Scope, receive: Receive, send: Send) -> None:
    # Litestar hands the mount the path below /admin; Starlette (inside piccolo-admin) expects the
    # full path with root_path naming the prefix.
    scope["root_path"] = "/admin"
    scope["path"] = "/admin" + (scope["path"] if scope["path"].startswith("/") else "/" + scope["path"])
    await _app()(scope, receive, send)
