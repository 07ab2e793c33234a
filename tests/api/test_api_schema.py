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


# The operations issue 13 asked for beyond the first read endpoints, each with what it answers.
OPERATIONS = {
    ("/api/v1/payments", "post"): "201", ("/api/v1/payments/{payment_id}/status", "get"): "200",
    ("/api/v1/payments/{payment_id}/verify", "post"): "200", ("/api/v1/payments/{payment_id}/refund", "post"): "200",
    ("/api/v1/payments/{payment_id}/receipt", "get"): "200", ("/api/v1/members/{member_id}/memberships", "get"): "200",
    ("/api/v1/members/{member_id}/memberships", "post"): "201", ("/api/v1/invoices", "get"): "200",
    ("/api/v1/invoices", "post"): "201", ("/api/v1/invoices/{invoice_id}", "get"): "200",
    ("/api/v1/invoices/{invoice_id}/void", "post"): "200", ("/api/v1/analytics", "get"): "200",
}


async def test_the_money_operations_are_described(api):
    async with api.client(None) as c:
        doc = (await c.get("/api/v1/openapi.json")).json()
    for (path, method), success in OPERATIONS.items():
        op = doc["paths"][path][method]
        assert success in op["responses"] and "401" in op["responses"] and "403" in op["responses"], (path, method)
        assert op["summary"], (path, method)
    receipt = doc["paths"]["/api/v1/payments/{payment_id}/receipt"]["get"]["responses"]
    assert "application/pdf" in receipt["200"]["content"] and "202" in receipt
    schemas = doc["components"]["schemas"]
    # Money sent in is a decimal string too, never a number.
    assert schemas["PaymentIn"]["properties"]["amount"]["type"] == "string"
    assert set(schemas["PaymentIn"]["required"]) == {"member_id", "method", "amount"}
    assert schemas["VoidIn"]["required"] == ["reason"] and "reason" in schemas["RefundIn"]["required"]
    assert {p["name"] for p in doc["paths"]["/api/v1/analytics"]["get"]["parameters"]} >= {"from", "to"}
    assert {p["name"] for p in doc["paths"]["/api/v1/invoices"]["get"]["parameters"]} >= {"member", "status", "cursor", "limit"}


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
