"""GET /brand/logo: the gym's logo for pages (public: the pay page shows it)."""

from __future__ import annotations

from litestar import get
from litestar.response import Response

from portal.documents import branding


@get("/brand/logo")
async def brand_logo() -> Response:
    data, kind = branding.logo()
    return Response(data, media_type=kind, headers={"cache-control": "public, max-age=86400"})


routes = [brand_logo]
