"""One login for the whole portal: piccolo-admin at /admin/ is reached only through the portal's
own session and role check, and its own login endpoint authenticates nobody."""

import dataclasses

import pytest
from piccolo.apps.user.tables import BaseUser

from portal.auth import create_staff
from tables.staff import LoginAttempt
from tests.support.client import PortalClient


async def _admin_csrf(client: PortalClient) -> str:
    """piccolo-admin's own CSRF cookie, as its login page would hand it out (a GET on a public
    admin URL), so the login post below is refused for the password alone, not for CSRF."""
    await client.get("/admin/public/meta/")
    return client.http.cookies.get("csrftoken", "")


@pytest.mark.parametrize("path", ["/admin/public/login/", "/admin/public/login"])
async def test_piccolo_admins_own_login_cannot_log_anyone_in(app, anon, path):
    await create_staff("dora", "dora-password-1", "admin", first_name="Dora")
    async with PortalClient(app) as admin_user:
        token = await _admin_csrf(admin_user)
        r = await admin_user.http.post(path, json={"username": "dora", "password": "dora-password-1"},
                                       headers={"x-csrftoken": token, "accept": "application/json"})
        # Sent to the portal's login page; no session cookie, no way into the admin.
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/admin/"
        assert "id" not in admin_user.http.cookies
        assert (await admin_user.get("/admin/api/tables/")).status_code == 401
        assert (await admin_user.get("/admin/")).status_code == 303
    # Its GET page (the admin's login form) sends the browser to the portal's login as well.
    r = await anon.get(path)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/admin/"


async def test_the_portal_login_is_the_way_in_and_its_attempts_are_recorded(app, anon):
    await create_staff("dora", "dora-password-1", "admin", first_name="Dora")
    async with PortalClient(app) as dora:
        r = await dora.post("/login", {"username": "dora", "password": "dora-password-1", "next": "/admin/"})
        assert r.status_code == 303 and r.headers["location"] == "/admin/"
        page = await dora.get("/admin/")
        assert page.status_code == 200 and "<div id=\"app\">" in page.text
        tables = await dora.get("/admin/api/tables/")
        assert tables.status_code == 200 and "member" in tables.json()
    assert await LoginAttempt.count().where(LoginAttempt.username == "dora") == 1


async def test_front_desk_and_managers_are_refused_at_the_admin(alice, bob):
    for client in (alice, bob):
        for path in ("/admin/", "/admin/api/tables/", "/admin/api/tables/member/"):
            assert (await client.get(path)).status_code == 403, path


async def test_anonymous_visitors_are_sent_to_the_portal_login(anon):
    r = await anon.get("/admin/")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/admin/"
    assert (await anon.get("/admin/api/tables/")).status_code == 401


async def test_a_deactivated_admin_cannot_get_in(carol):
    assert (await carol.get("/admin/api/tables/")).status_code == 200
    await BaseUser.update({BaseUser.active: False}).where(BaseUser.username == "carol")
    assert (await carol.get("/admin/api/tables/")).status_code == 401
    assert (await carol.get("/admin/")).status_code == 303


def _set_cookie(response, name: str) -> str:
    return next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(name + "="))


async def test_the_admins_csrf_cookie_is_secure_when_the_portals_cookies_are(app, anon, settings):
    from portal.app import create_app

    await create_staff("dora", "dora-password-1", "admin", first_name="Dora")
    secure_app = create_app(dataclasses.replace(settings, public_base_url="https://gym.example"), manage_resources=False)
    async with PortalClient(secure_app, base_url="https://testserver") as dora:
        login = await dora.login("dora", "dora-password-1")
        assert "; secure" in _set_cookie(login, "id").lower()  # the portal's own session cookie
        r = await dora.get("/admin/")
        assert r.status_code == 200
        assert "; secure" in _set_cookie(r, "csrftoken").lower()
    # Over plain http (a laptop, these tests) it is left as it was, or the admin could not post.
    async with PortalClient(app) as dora:
        await dora.login("dora", "dora-password-1")
        assert "secure" not in _set_cookie(await dora.get("/admin/"), "csrftoken").lower()


def _policy(response) -> dict[str, str]:
    return {d.split()[0]: " ".join(d.split()[1:]) for d in response.headers["content-security-policy"].split("; ")}


async def test_the_admin_gets_the_styles_it_needs_and_the_portal_keeps_its_strict_policy(carol):
    admin = _policy(await carol.get("/admin/"))
    # Font Awesome and Vue set inline styles; scripts stay our own files only.
    assert admin["style-src"] == "'self' 'unsafe-inline'"
    assert admin["script-src"] == "'self'"
    assert admin["frame-ancestors"] == "'none'" and admin["object-src"] == "'none'"
    assert _policy(await carol.get("/admin/api/tables/")) == admin
    for path in ("/members", "/staff", "/login", "/admin-but-not-the-admin"):
        portal = _policy(await carol.get(path))
        assert portal["style-src"] == "'self'" and portal["script-src"] == "'self'", path
        assert "unsafe" not in " ".join(portal.values()), path
