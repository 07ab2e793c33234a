"""Who may open what: personas against every staff page."""

import pytest

STAFF_PAGES = ["/members", "/members/new"]
MANAGER_PAGES = ["/plans", "/plans/new", "/audit"]
ADMIN_PAGES = ["/staff", "/staff/new"]


@pytest.mark.parametrize("path", STAFF_PAGES + MANAGER_PAGES + ADMIN_PAGES)
async def test_it_sends_outsiders_to_login(anon, path):
    r = await anon.get(path)
    assert r.status_code == 303
    assert r.headers["location"] == f"/login?next={path}"


async def test_it_tells_htmx_to_redirect_to_login(anon):
    r = await anon.get("/members?q=wan", htmx=True)
    assert r.status_code == 401
    assert r.headers["hx-redirect"] == "/login?next=/members"


@pytest.mark.parametrize("path", MANAGER_PAGES + ADMIN_PAGES)
async def test_it_refuses_front_desk_manager_and_admin_pages(alice, path):
    r = await alice.get(path)
    assert r.status_code == 403
    assert "You do not have access" in r.text or "This page is for" in r.text


@pytest.mark.parametrize("path", ADMIN_PAGES)
async def test_it_refuses_managers_admin_pages(bob, path):
    r = await bob.get(path)
    assert r.status_code == 403


@pytest.mark.parametrize("path", MANAGER_PAGES)
async def test_it_lets_managers_manage_plans(bob, path):
    assert (await bob.get(path)).status_code == 200


@pytest.mark.parametrize("path", STAFF_PAGES + MANAGER_PAGES + ADMIN_PAGES)
async def test_it_lets_admins_in_everywhere(carol, path):
    assert (await carol.get(path)).status_code == 200


async def test_it_refuses_a_form_posted_without_csrf_token(alice):
    r = await alice.post("/members/new", {"first_name": "Amina", "last_name": "Hassan", "phone": "0712345678"}, csrf=False)
    assert r.status_code == 403
    assert "expired" in r.text
    search = await alice.get("/members?q=Amina")
    assert "0 matches" in search.text


async def test_it_refuses_an_htmx_post_with_a_forged_token(alice):
    await alice.csrf_token()
    r = await alice.http.post("/members/new", data={"first_name": "Amina"},
                              headers={"HX-Request": "true", "X-CSRFToken": "forged" * 20})
    assert r.status_code == 403


async def test_it_refuses_logout_without_csrf(alice):
    r = await alice.post("/logout", csrf=False)
    assert r.status_code == 403
    assert (await alice.get("/members")).status_code == 200


async def test_it_sets_security_headers(alice):
    r = await alice.get("/members")
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "script-src 'self'" in r.headers["content-security-policy"]


async def test_session_cookie_is_httponly_and_samesite(app, db, queue):
    from portal.auth import create_staff
    from tests.support.client import PortalClient

    await create_staff("dora", "dora-password-1", "front_desk")
    async with PortalClient(app) as client:
        r = await client.post("/login", {"username": "dora", "password": "dora-password-1"})
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("id="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()


async def test_piccolo_admin_is_for_admins_on_the_same_login(carol, bob):
    r = await carol.get("/admin/api/tables/")
    assert r.status_code == 200 and "member" in r.json()
    assert (await bob.get("/admin/api/tables/")).status_code == 403  # the portal's role check
