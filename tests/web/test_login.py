"""Logging in and out, and the limits on guessing."""

from piccolo.apps.user.tables import BaseUser

from portal.auth import create_staff
from tests.support.client import PortalClient


async def test_it_logs_in_and_returns_to_the_page_asked_for(anon):
    await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith")
    r = await anon.post("/login", {"username": "faith", "password": "faith-password-1", "next": "/members?q=kam"})
    assert r.status_code == 303
    assert r.headers["location"] == "/members?q=kam"
    page = await anon.get("/members")
    assert page.status_code == 200
    assert "Faith · Front desk" in page.text


async def test_it_never_redirects_off_site_after_login(anon):
    await create_staff("faith", "faith-password-1", "front_desk")
    r = await anon.post("/login", {"username": "faith", "password": "faith-password-1", "next": "//evil.example/x"})
    assert r.headers["location"] == "/"


async def test_it_refuses_a_wrong_password_and_keeps_the_user_name(anon):
    await create_staff("faith", "faith-password-1", "front_desk")
    r = await anon.post("/login", {"username": "faith", "password": "nope"})
    assert r.status_code == 400
    assert "do not match" in r.text
    assert 'value="faith"' in r.text
    assert (await anon.get("/members")).status_code == 303


async def test_it_refuses_an_inactive_account(anon):
    await create_staff("faith", "faith-password-1", "front_desk")
    await BaseUser.update({BaseUser.active: False}).where(BaseUser.username == "faith")
    r = await anon.post("/login", {"username": "faith", "password": "faith-password-1"})
    assert r.status_code == 400


async def test_it_ends_sessions_of_deactivated_staff(alice):
    assert (await alice.get("/members")).status_code == 200
    await BaseUser.update({BaseUser.active: False}).where(BaseUser.username == "alice")
    assert (await alice.get("/members")).status_code == 303


async def test_it_throttles_guessing_per_user_name(app, anon, settings):
    await create_staff("faith", "faith-password-1", "front_desk")
    for _ in range(settings.login_max_failures):
        assert (await anon.post("/login", {"username": "faith", "password": "guess"})).status_code == 400
    # Even the right password is refused until the window passes.
    r = await anon.post("/login", {"username": "faith", "password": "faith-password-1"})
    assert r.status_code == 429
    assert "Too many failed attempts" in r.text
    # The limit is in the database, so another web process (another client here) sees it too.
    async with PortalClient(app) as other:
        assert (await other.post("/login", {"username": "faith", "password": "faith-password-1"})).status_code == 429


async def test_it_logs_out(alice):
    r = await alice.post("/logout")
    assert r.status_code == 303
    assert (await alice.get("/members")).status_code == 303


async def test_staff_without_a_profile_cannot_log_in(anon):
    # A bare Piccolo user (e.g. made with piccolo's own CLI) is not staff.
    await BaseUser.create_user(username="ghost", password="ghost-password-1", email="g@example.com", active=True)
    r = await anon.post("/login", {"username": "ghost", "password": "ghost-password-1"})
    assert r.status_code == 400
