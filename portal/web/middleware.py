"""Who is asking and what the request cost (plain ASGI middleware), and the security headers of
every response (a before-send hook)."""

from __future__ import annotations

import time
from http.cookies import SimpleCookie

from portal.auth import SESSION_COOKIE, user_for_session
from portal.lib.db import count_queries

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# No inline scripts anywhere: htmx and our app.js come from /static; htmx's indicator styles are
# switched off in base.html so style-src needs no 'unsafe-inline'.
CSP = (b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       b"form-action 'self' {form_action}; frame-ancestors 'none'; base-uri 'self'; object-src 'none'")
# piccolo-admin (/admin/ only, admins only) is a Vue app whose icon library injects <style> elements
# and whose components set style attributes: its pages need inline styles, nothing more. Scripts
# stay 'self' only, and the portal's own pages keep the policy above.
ADMIN_CSP = (b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
             b"font-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
             b"base-uri 'self'; object-src 'none'")


def _under_admin(scope) -> bool:
    # Litestar gives a mount's requests the path below the mount: the full path is in raw_path.
    raw = scope.get("raw_path") or scope["path"].encode()
    return raw == b"/admin" or raw.startswith(b"/admin/")


def _cookie(scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:
                return None
            if name in jar:
                return jar[name].value
    return None


def security_headers(*, hsts: bool, extra_form_action: str = ""):
    """A before-send hook adding the security headers to every response the app sends: pages,
    404s and 405s from the router (which no middleware sees), static files, and piccolo-admin
    under /admin/ with its own, wider style policy."""
    csp = CSP.replace(b"{form_action}", extra_form_action.encode())

    async def hook(message, scope) -> None:
        if message["type"] != "http.response.start" or scope.get("type") != "http":
            return
        headers = list(message.get("headers", []))
        headers.extend(SECURITY_HEADERS)
        if not any(k.lower() == b"content-security-policy" for k, _ in headers):
            headers.append((b"content-security-policy", ADMIN_CSP if _under_admin(scope) else csp))
        if hsts:
            headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        message["headers"] = headers

    return hook


class PortalMiddleware:
    """Loads the staff member behind the session cookie into scope["user"] (one query) and, for
    staff only, counts the request's queries into Server-Timing and X-Query-Count headers (a
    stranger learns nothing about our queries or timings). Enforcement is left to the route
    guards so public pages (login, pay links, callbacks) pass through; the security headers are
    security_headers' (every response)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        with count_queries() as queries:
            scope["user"] = await user_for_session(_cookie(scope, SESSION_COOKIE))

            async def send_with_timing(message):
                if message["type"] == "http.response.start" and scope.get("user") is not None:
                    headers = list(message.get("headers", []))
                    elapsed = (time.perf_counter() - started) * 1000
                    headers.append((b"server-timing", f"app;dur={elapsed:.1f}, db;desc=\"queries\";dur={queries.value}".encode()))
                    headers.append((b"x-query-count", str(queries.value).encode()))
                    message = {**message, "headers": headers}
                await send(message)

            await self.app(scope, receive, send_with_timing)
