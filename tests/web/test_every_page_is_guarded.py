"""Secure by default: every route needs a logged-in staff member, except the few that must be
public (login, the member's pay pages, gateway callbacks, health, static files). A new route
that forgets its guard fails here, and an anonymous request to it is sent to the login page."""

import re

from litestar.routes import HTTPRoute

from portal.auth import admin_required, manager_required, staff_required

PUBLIC = {
    "/login", "/logout", "/healthz", "/brand/logo", "/favicon.ico",
    # the member's side of pay links: the signed token is the credential (portal/billing/paylinks.py)
    "/pay/{token:str}", "/pay/{token:str}/card", "/pay/{token:str}/mpesa", "/pay/{token:str}/card/return",
    "/pay/{token:str}/payments/{payment_id:int}", "/pay/{token:str}/payments/{payment_id:int}/receipt.pdf",
    "/pay/card/return",  # Flutterwave sends the browser back here; verified server-side
    "/metrics",  # Prometheus: METRICS_TOKEN as a Bearer token is the credential (404 when unset)
}
PUBLIC_PREFIXES = ("/hooks/", "/static")  # gateways authenticate by token, hash or address
# The API's description is public (it lists the API's operations only, no staff page); the
# OpenAPI router also answers /api/v1 and /api/v1/<anything else> with 404.
PUBLIC |= {"/api/v1/openapi.json", "/api/v1", "/api/v1/{path:str}"}
GUARDS = {staff_required, manager_required, admin_required}


def _guarded(handler) -> bool:
    """A staff guard, or the API's key-and-scope guard (portal/web/api_v1.scope_required)."""
    guards = set(handler.guards or [])
    return bool(guards & GUARDS) or any(getattr(g, "api_scope", None) for g in guards)


def _routes(app):
    for route in app.routes:
        if isinstance(route, HTTPRoute) and not route.path.startswith("/admin"):
            yield route


def test_every_route_is_public_on_purpose_or_guarded(app):
    unguarded = []
    for route in _routes(app):
        if route.path in PUBLIC or route.path.startswith(PUBLIC_PREFIXES):
            continue
        for handler in route.route_handlers:
            if handler.http_methods == {"OPTIONS"}:  # Litestar's own CORS preflight answer
                continue
            if not _guarded(handler):
                unguarded.append(f"{sorted(handler.http_methods)} {route.path}")
    assert unguarded == []
    assert len(list(_routes(app))) > 30  # the walk saw the app's routes


async def test_anonymous_requests_to_staff_pages_go_to_the_login_page(app, anon):
    checked = 0
    for route in _routes(app):
        if route.path in PUBLIC or route.path.startswith(PUBLIC_PREFIXES) or "GET" not in route.methods:
            continue
        path = re.sub(r"\{[a-z_]+:str\}", "x", re.sub(r"\{[a-z_]+:int\}", "1", route.path))
        r = await anon.get(path)
        assert r.status_code in (302, 303, 401) and "/login" in r.headers.get("location", "/login"), (path, r.status_code)
        if path.startswith("/api/"):
            assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json"), path
        checked += 1
    assert checked > 15
