"""A test client that behaves like a browser running our pages: keeps cookies, and sends the CSRF
token the way our forms (hidden field) and htmx (X-CSRFToken header) do."""

from __future__ import annotations

import re

import httpx

CSRF_COOKIE = "portal_csrf"


class PortalClient:
    """In-process (ASGI) by default; with app=None, over real HTTP to `base_url` (one keep-alive
    connection, as a browser tab holds it)."""

    def __init__(self, app, base_url: str = "http://testserver", client_ip: str = "127.0.0.1"):
        transport = (httpx.ASGITransport(app=app, client=(client_ip, 50000)) if app is not None
                     else httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)))
        self.http = httpx.AsyncClient(transport=transport, base_url=base_url, follow_redirects=False,
                                      headers={"accept": "text/html"},
                                      timeout=httpx.Timeout(5.0) if app is not None else httpx.Timeout(60.0))

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.http.aclose()

    async def csrf_token(self) -> str:
        if CSRF_COOKIE not in self.http.cookies:
            await self.http.get("/login")
        return self.http.cookies[CSRF_COOKIE]

    async def get(self, path: str, *, htmx: bool = False, **kw) -> httpx.Response:
        headers = {"HX-Request": "true"} if htmx else {}
        return await self.http.get(path, headers=headers, **kw)

    async def post(self, path: str, data: dict | None = None, *, csrf: bool = True, htmx: bool = False) -> httpx.Response:
        """A form post as the browser sends it: the token in the hidden field (or, for htmx, in
        the header). csrf=False posts exactly what an attacker's page could."""
        data = dict(data or {})
        headers = {}
        if csrf:
            token = await self.csrf_token()
            if htmx:
                headers["X-CSRFToken"] = token
            else:
                data["_csrf_token"] = token
        if htmx:
            headers["HX-Request"] = "true"
        return await self.http.post(path, data=data, headers=headers)

    async def login(self, username: str, password: str) -> httpx.Response:
        response = await self.post("/login", {"username": username, "password": password, "next": "/"})
        assert response.status_code == 303, f"login failed for {username}: {response.status_code}"
        return response


def field_value(html: str, name: str) -> str | None:
    """The value attribute of the input named `name` (to check a form kept what was typed)."""
    m = re.search(r'<input[^>]*name="%s"[^>]*value="([^"]*)"' % re.escape(name), html)
    return m.group(1) if m else None


def field_error(html: str, name: str) -> str | None:
    m = re.search(r'data-testid="error-%s">([^<]*)<' % re.escape(name), html)
    return m.group(1).strip() if m else None
