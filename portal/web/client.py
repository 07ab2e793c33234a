"""Who is asking: the client's address as the app sees it (uvicorn rewrites it from
X-Forwarded-For only for the proxies it trusts, see portal/runner.py)."""

from __future__ import annotations

from litestar import Request


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
