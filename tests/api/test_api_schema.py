"""The API describes itself: an OpenAPI 3.1 document at /api/v1/openapi.json (public, API only),
with every /api/v1 route in it, and a docs page from static/ that reads it (no CDN)."""

import json
import re

from litestar.routes import HTTPRoute

SCHEMA_ROUTES = {"/api/v1", "/api/v1/openapi.json", "/api/v1/{path:str}"}  # the schema's own


def _openapi_path(path: str) -> str:
    return re.sub(r"\{([a-z_]+):[a-z]+\}", r"{\1}", path)


async def test_openapi_document_lists_every_api_route_and_nothing_else(api, app):
    async with api.client(None) as c:
        r = await c.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = json.loads(r.text)
    assert doc["openapi"].startswith("3.1")
    expected = set()
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path.startswith("/api/v1") and route.path not in SCHEMA_ROUTES:
            for method in route.methods - {"OPTIONS", "HEAD"}:
                expected.add((_openapi_path(route.path), method.lower()))
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert expected and documented == expected
    assert all(p.startswith("/api/v1/") for p in doc["paths"])  # no staff page is described
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    # Money is described as a string, never a number.
    assert doc["components"]["schemas"]["Amount"]["properties"]["amount"]["type"] == "string"


async def test_no_schema_anywhere_else(anon):
    for path in ("/schema", "/docs", "/openapi.json", "/schema/openapi.json"):
        assert (await anon.get(path)).status_code == 404, path


async def test_docs_page_is_served_from_static_without_a_cdn(anon):
    r = await anon.get("/static/api-docs.html")
    assert r.status_code == 200 and "/api/v1/openapi.json" in r.text
    assert not re.search(r"""(src|href)=["']https?://""", r.text)
    script = await anon.get("/static/api-docs.js")
    assert script.status_code == 200 and "openapi.json" in script.text


async def test_unknown_api_addresses_and_methods_answer_problem_json(reader):
    for method, path, status in (("GET", "/api/v1/members/abc", 404), ("DELETE", "/api/v1/plans", 405),
                                 ("GET", "/api/v2/members", 404)):
        r = await reader.request(method, path)
        assert r.status_code == status and r.headers["content-type"].startswith("application/problem+json"), path
