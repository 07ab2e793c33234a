"""Every response carries the security headers, whatever answers it: a page, the router's 404 and
405, a static file, a gateway callback (issue 12, item 8). Query counts and timings are for staff
only: a stranger learns nothing about how a page is built."""

import pytest

HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "same-origin",
           "cross-origin-opener-policy": "same-origin"}


def _assert_secured(r, what: str) -> None:
    for name, value in HEADERS.items():
        assert r.headers.get(name) == value, (what, name, dict(r.headers))
    assert "camera=()" in r.headers.get("permissions-policy", ""), what
    csp = r.headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, (what, csp)


@pytest.mark.parametrize("path, status", [
    ("/login", 200),
    ("/no/such/page", 404),
    ("/members/not-a-number", 404),
    ("/static/app.css", 200),
    ("/static/no-such-file.js", 404),
    ("/hooks/flutterwave", 405),  # a GET on a POST-only callback
    ("/pay/not-a-link", 404),
    ("/healthz", 200),
])
async def test_every_response_has_the_security_headers(anon, path, status):
    for accept in ("text/html", "application/json"):
        r = await anon.http.get(path, headers={"accept": accept})
        assert r.status_code == status, (path, r.status_code)
        _assert_secured(r, f"{path} ({accept})")


async def test_a_callback_answer_has_them_too(anon):
    r = await anon.http.post("/hooks/sms/delivery/wrong-token", data={"id": "x", "status": "Success"})
    assert r.status_code == 200
    _assert_secured(r, "sms delivery hook")


async def test_query_counts_and_timings_are_for_staff_only(anon, alice):
    for r in [await anon.get("/login"), await anon.get("/pay/1.not.alink"), await anon.get("/no/such/page"),
              await anon.http.post("/hooks/daraja/stk/wrong-token", content=b"{}"),
              await anon.get("/members")]:  # the redirect to the login page
        assert "x-query-count" not in r.headers and "server-timing" not in r.headers, (r.url, dict(r.headers))
    staff_page = await alice.get("/members")
    assert staff_page.status_code == 200
    assert int(staff_page.headers["x-query-count"]) > 0
    assert "db;desc=\"queries\"" in staff_page.headers["server-timing"]
