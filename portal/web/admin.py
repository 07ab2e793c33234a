"""piccolo-admin at /admin/, for admins, behind the portal's own login.

There is one way in to the portal: /login (portal.auth.login, with its throttle and its record of
attempts). piccolo-admin brings a second login of its own (/admin/public/login/) with only an
in-memory limit, no login attempts and no check of the staff profile; it is switched off here:
it sends the browser to the portal's login page and never looks at a password. Every other
/admin/ request needs a live portal session (PortalMiddleware puts it in scope["user"]: an active
staff member) with the admin role; piccolo-admin's own session check still runs behind that.
"""

from __future__ import annotations

from litestar import asgi
from litestar.exceptions import PermissionDeniedException
from litestar.types import Receive, Scope, Send

from portal.auth import StaffUser
from portal.settings import Settings
from tables.piccolo_app import APP_CONFIG

_admin_app = None
ADMIN_LOGIN_PATHS = ("/public/login",)  # piccolo-admin's own login (and its MFA steps below it)
CSRF_COOKIE = b"csrftoken"  # piccolo_api's CSRFMiddleware default


def _app(settings: Settings):
    global _admin_app
    if _admin_app is None:
        # Imported on the first admin request: piccolo-admin brings FastAPI, a second or more of
        # every start (most of a second start's import time), for a page few open.
        from piccolo_admin.endpoints import create_admin

        _admin_app = create_admin(
            tables=APP_CONFIG.table_classes,
            site_name=f"{settings.gym_name} admin",
            production=settings.cookie_secure,
            read_only=False,
        )
    return _admin_app


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]] = ()) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def _redirect(send: Send, location: str) -> None:
    await _answer(send, 303, [(b"location", location.encode())])


def _secure_cookies(send: Send) -> Send:
    """piccolo-admin sets its CSRF cookie without Secure (piccolo_api's CSRFMiddleware has no
    option for it): mark it Secure whenever the portal's own cookies are (https)."""

    async def wrapped(message):
        if message["type"] == "http.response.start":
            headers = []
            for key, value in message.get("headers", []):
                if key.lower() == b"set-cookie" and value.startswith(CSRF_COOKIE + b"=") and b"secure" not in value.lower():
                    value += b"; Secure"
                headers.append((key, value))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


@asgi("/admin", is_mount=True, copy_scope=True)
async def mount(scope: Scope, receive: Receive, send: Send) -> None:
    below = scope["path"] if scope["path"].startswith("/") else "/" + scope["path"]
    if below.startswith(ADMIN_LOGIN_PATHS):
        # Never authenticate here, whatever is posted: the portal's login page is the only one.
        await _redirect(send, "/login?next=/admin/")
        return
    user = scope.get("user")
    if not isinstance(user, StaffUser):
        if below.startswith("/api/"):
            await _answer(send, 401)  # the admin app's own calls: it shows its "logged out" state
        else:
            await _redirect(send, "/login?next=/admin/")
        return
    if not user.has_role("admin"):
        raise PermissionDeniedException("This page is for admins")
    # Litestar hands the mount the path below /admin; Starlette (inside piccolo-admin) expects the
    # full path with root_path naming the prefix.
    scope["root_path"] = "/admin"
    scope["path"] = "/admin" + below
    settings: Settings = scope["litestar_app"].state.settings
    if settings.cookie_secure:
        send = _secure_cookies(send)
    await _app(settings)(scope, receive, send)
