"""GET /brand/logo: the gym's logo for pages (public: the pay page shows it); GET /favicon.ico:
the tab icon browsers ask for on every page, staff and member alike."""

from __future__ import annotations

from pathlib import Path

from litestar import get
from litestar.response import Response

from portal.documents import branding


@get("/brand/logo")
async def brand_logo() -> Response:
    data, kind = branding.logo()
    return Response(data, media_type=kind, headers={"cache-control": "public, max-age=86400"})


FAVICON = Path(__file__).resolve().parents[2] / "static" / "favicon.ico"


@get("/favicon.ico")
async def favicon() -> Response:
    return Response(FAVICON.read_bytes(), media_type="image/vnd.microsoft.icon",
                    headers={"cache-control": "public, max-age=604800"})


routes = [brand_logo, favicon]
