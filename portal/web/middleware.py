"""Who is asking and what the request cost (plain ASGI middleware), the request's line in the log
with its request id, and the security headers of every response (a before-send hook)."""

from __future__ import annotations

import re
import time
import uuid
from http.cookies import SimpleCookie

from litestar._asgi.utils import wrap_in_exception_handler
from litestar.exceptions import ClientException, NotFoundException

from portal.auth import SESSION_COOKIE, user_for_session
from portal.lib import logs, metrics
from portal.lib.db import count_queries
from portal.lib.forms import INT_MAX

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


# Gateways post to these; their own handlers decide what a malformed body gets (the ack a
# gateway expects), so input is passed to them as it came.
RAW_INPUT_PATHS = ("/hooks/", "/pay/card/return")


def address_problem(scope) -> Exception | None:
    """The address itself, before any handler: a NUL byte (which PostgreSQL cannot store in text)
    is a 400; an id in the path that no row can have (outside PostgreSQL's integer, or written in
    digits that are not ASCII, which Python's int() reads anyway) is a 404, as any missing row is.
    Litestar has routed the request by now, so scope["path_params"] holds the parsed ids."""
    if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"") or b"\x00" in scope.get("query_string", b""):
        return ClientException("The address has a character that cannot be used (a NUL byte).")
    ids = [v for v in (scope.get("path_params") or {}).values() if isinstance(v, int)]
    if ids and (any(not 0 <= v <= INT_MAX for v in ids)
                or any(ch.isdigit() and not ch.isascii() for ch in scope["path"])):
        return NotFoundException("There is nothing here.")
    return None


def _answer_with(exc: Exception):
    """An ASGI app that answers with the app's own error page for `exc`, through this
    middleware's headers (an exception raised here would skip them)."""
    async def raise_it(scope, receive, send):
        raise exc

    return wrap_in_exception_handler(raise_it)


async def form_without_nul(scope, receive):
    """`receive` for a form post, with NUL bytes taken out of the body: nobody types one, no text
    column can hold one, and without it the form is read (and, if need be, shown back) as usual."""
    content_type = dict(scope.get("headers", [])).get(b"content-type", b"")
    if scope.get("method") != "POST" or not content_type.startswith(b"application/x-www-form-urlencoded"):
        return receive
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return _replay([message])
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks).replace(b"%00", b"").replace(b"\x00", b"")
    return _replay([{"type": "http.request", "body": body, "more_body": False}], after=receive)


def _replay(messages, after=None):
    async def receive():
        if messages:
            return messages.pop(0)
        return await after() if after else {"type": "http.disconnect"}

    return receive


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
    """Loads the staff member behind the session cookie into scope["user"] (one query; none under
    /api/, which takes keys, not cookies) and, for staff and API callers whose key was accepted
    only, counts the request's queries into Server-Timing and X-Query-Count headers (a stranger
    learns nothing about our queries or timings), and counts every request by its route template
    and status for /metrics. Enforcement is left to the route
    guards so public pages (login, pay links, callbacks) pass through; the security headers are
    security_headers' (every response)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        app = self.app
        if not scope["path"].startswith(RAW_INPUT_PATHS):
            problem = address_problem(scope)
            if problem is not None:
                app = _answer_with(problem)
            else:
                receive = await form_without_nul(scope, receive)
        with count_queries() as queries:
            # The API takes no cookie (a key in the Authorization header, portal/web/api_v1.py).
            # The address as sent: piccolo-admin's own /admin/api/... is seen here as /api/... .
            api = (scope.get("raw_path") or scope["path"].encode()).startswith(b"/api/")
            scope["user"] = None if api else await user_for_session(_cookie(scope, SESSION_COOKIE))
            tokens = logs.bind(**who(scope))  # every line of the request names the staff member

            status = None

            async def send_with_timing(message):
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                # Staff, and API callers whose key the API's guard accepted (scope["api_caller"]).
                known = scope.get("user") is not None or scope.get("api_caller") is not None
                if message["type"] == "http.response.start" and known:
                    headers = list(message.get("headers", []))
                    elapsed = (time.perf_counter() - started) * 1000
                    headers.append((b"server-timing", f"app;dur={elapsed:.1f}, db;desc=\"queries\";dur={queries.value}".encode()))
                    headers.append((b"x-query-count", str(queries.value).encode()))
                    message = {**message, "headers": headers}
                await send(message)

            try:
                await app(scope, receive, send_with_timing)
            except Exception as e:  # answered by the app's own exception handlers, outside this one
                status = status or getattr(e, "status_code", 500)
                raise
            finally:
                # The route's template (/pay/{token}), never the path itself: no token in a label.
                metrics.observe_request(scope["method"], scope.get("path_template"), status or 500,
                                        time.perf_counter() - started)
                logs.reset(**tokens)


# The addresses whose X-Forwarded-For and X-Request-ID are believed: a proxy on this machine
# (Caddy in deploy/). From anyone else an X-Request-ID could forge or hide another request's trail.
TRUSTED_PROXIES = ["127.0.0.1"]
TRUSTED_PEER = "portal.trusted_peer"
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
access_log = logs.get_logger("portal.access")


class BehindProxy:
    """How `portal run` serves the app: notes whether the connection came from a trusted proxy,
    then lets uvicorn's proxy-headers middleware take the client's address from X-Forwarded-For
    (it rewrites the client, so the peer is noted first)."""

    def __init__(self, app, trusted=TRUSTED_PROXIES):
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        self.trusted = set(trusted)
        self.app = ProxyHeadersMiddleware(app, trusted_hosts=list(trusted))

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            scope[TRUSTED_PEER] = bool(client) and client[0] in self.trusted
        await self.app(scope, receive, send)


def request_id_for(scope) -> str:
    """The trusted proxy's X-Request-ID when it is sane (short, letters, digits and . _ : -), else a
    new one."""
    if scope.get(TRUSTED_PEER):
        for key, value in scope.get("headers", []):
            if key == b"x-request-id":
                text = value.decode("latin-1")
                if REQUEST_ID.fullmatch(text):
                    return text
                break
    return uuid.uuid4().hex


def who(scope) -> dict:
    """The staff member or API key behind a request, for its log line."""
    user, caller = scope.get("user"), scope.get("api_caller")
    if user is not None:
        return {"user": user.username, "staff_id": user.staff_id}
    if caller is not None:
        return {"api_key": caller.name, "api_key_id": caller.key_id}
    return {}


class RequestLog:
    """One line per request, every request (router 404s and 405s too: it wraps the whole app, not a
    route): its request id, who asked, the route's template (/pay/{token}, never the path, which may
    hold a token), method, status and duration. The request id is bound for every other line
    written meanwhile, goes with any job queued (portal.lib.queue) and is sent back as X-Request-ID."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_for(scope)
        tokens = logs.bind(request_id=request_id)
        status = None

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            status = status or 500
            static = (scope.get("path_template") or "").startswith("/static")
            level = "error" if status >= 500 else "debug" if static and status < 400 else "info"
            getattr(access_log, level)(
                "request", method=scope.get("method"), route=scope.get("path_template") or None, status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1), **who(scope))
            logs.reset(**tokens)
