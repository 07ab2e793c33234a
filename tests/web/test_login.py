"""Logging in and out, and the limits on guessing."""

from datetime import timedelta

import pytest
from piccolo.apps.user.tables import BaseUser

from portal.auth import ADDRESS_FAILURES_FACTOR, ATTACK_COOLDOWN, create_staff
from portal.lib.clock import now
from tables.staff import LoginAttempt
from tests.support.client import PortalClient, field_error

# Who is logged in, in the menu bar (the role shows on wider screens).
WHOAMI = 'data-testid="whoami">Faith<span class="role"> · Front desk</span>'


async def test_it_logs_in_and_returns_to_the_page_asked_for(anon):
    await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith")
    r = await anon.post("/login", {"username": "faith", "password": "faith-password-1", "next": "/members?q=kam"})
    assert r.status_code == 303
    assert r.headers["location"] == "/members?q=kam"
    page = await anon.get("/members")
    assert page.status_code == 200
    assert WHOAMI in page.text


async def test_the_user_name_matches_whatever_the_case(anon):
    await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith")
    r = await anon.post("/login", {"username": " FaiTH ", "password": "faith-password-1"})
    assert r.status_code == 303
    assert WHOAMI in (await anon.get("/members")).text


async def test_two_user_names_differing_only_by_case_cannot_be_created(carol):
    await create_staff("Faith", "faith-password-1", "manager")  # e.g. from `portal createuser`
    with pytest.raises(ValueError, match="taken"):
        await create_staff("FAITH", "faith-password-2", "manager")
    r = await carol.post("/staff/new", {"username": "faith", "first_name": "Faith", "role": "manager",
                                        "password": "faith-password-3"})
    assert r.status_code == 422
    assert field_error(r.text, "username") == "That user name is taken"
    assert await BaseUser.count().where(BaseUser.username.ilike("faith")) == 1


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


async def test_it_throttles_guessing_per_user_name_and_address(app, anon, settings):
    await create_staff("faith", "faith-password-1", "front_desk")
    for _ in range(settings.login_max_failures):
        assert (await anon.post("/login", {"username": "faith", "password": "guess"})).status_code == 400
    # Even the right password is refused until the window passes.
    r = await anon.post("/login", {"username": "faith", "password": "faith-password-1"})
    assert r.status_code == 429
    assert "Too many failed attempts" in r.text
    # The limit is in the database, so another web process (another client from the same address
    # here) sees it too.
    async with PortalClient(app) as other:
        assert (await other.post("/login", {"username": "faith", "password": "faith-password-1"})).status_code == 429


async def test_guessing_from_one_address_does_not_lock_the_user_out_elsewhere(app, anon, settings):
    await create_staff("faith", "faith-password-1", "front_desk")
    async with PortalClient(app, client_ip="203.0.113.66") as attacker, \
            PortalClient(app, client_ip="198.51.100.7") as faith:
        for _ in range(settings.login_max_failures * 3):
            assert (await attacker.post("/login", {"username": "Faith", "password": "guess"})).status_code in (400, 429)
        assert (await attacker.post("/login", {"username": "faith", "password": "faith-password-1"})).status_code == 429
        # The real user, from her own address, with her password: in.
        assert (await faith.post("/login", {"username": "faith", "password": "faith-password-1"})).status_code == 303
        assert (await faith.get("/members")).status_code == 200


async def test_a_user_name_guessed_from_many_addresses_slows_each_address_but_not_the_user(app, anon, settings):
    await create_staff("faith", "faith-password-1", "front_desk")
    addresses = [f"203.0.113.{i}" for i in range(1, settings.login_max_failures + 1)]
    bots = [PortalClient(app, client_ip=a) for a in addresses]
    try:
        for bot in bots:  # one guess each: no address is near its own limit
            assert (await bot.post("/login", {"username": "faith", "password": "guess"})).status_code == 400
        # Now under attack: an address that has guessed must wait before its next guess...
        r = await bots[0].post("/login", {"username": "faith", "password": "guess-2"})
        assert r.status_code == 429 and "Wait 1 minute," in r.text
        # ...and may guess again once the delay has passed (a delay, not a lock).
        await LoginAttempt.update({LoginAttempt.at: now() - ATTACK_COOLDOWN - timedelta(seconds=1)}).where(
            LoginAttempt.ip == addresses[0])
        assert (await bots[0].post("/login", {"username": "faith", "password": "guess-3"})).status_code == 400
    finally:
        for bot in bots:
            await bot.__aexit__()
    # The right password from an address with no failures is never refused.
    async with PortalClient(app, client_ip="198.51.100.7") as faith:
        assert (await faith.post("/login", {"username": "faith", "password": "faith-password-1"})).status_code == 303


async def test_one_address_spraying_many_user_names_is_stopped(app, anon, settings):
    await create_staff("faith", "faith-password-1", "front_desk")
    async with PortalClient(app, client_ip="203.0.113.66") as sprayer:
        for i in range(settings.login_max_failures * ADDRESS_FAILURES_FACTOR):
            assert (await sprayer.post("/login", {"username": f"user{i}", "password": "Summer2026!"})).status_code == 400
        assert (await sprayer.post("/login", {"username": "faith", "password": "faith-password-1"})).status_code == 429
    async with PortalClient(app, client_ip="198.51.100.7") as faith:
        assert (await faith.post("/login", {"username": "faith", "password": "faith-password-1"})).status_code == 303


async def test_it_logs_out(alice):
    r = await alice.post("/logout")
    assert r.status_code == 303
    assert (await alice.get("/members")).status_code == 303


async def test_staff_without_a_profile_cannot_log_in(anon):
    # A bare Piccolo user (e.g. made with piccolo's own CLI) is not staff.
    await BaseUser.create_user(username="ghost", password="ghost-password-1", email="g@example.com", active=True)
    r = await anon.post("/login", {"username": "ghost", "password": "ghost-password-1"})
    assert r.status_code == 400
