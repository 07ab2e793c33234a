"""A new password ends the user's other sessions: an admin's reset signs the person out
everywhere; an admin changing their own password stays signed in only where they changed it."""

from portal.auth import create_staff
from tables.staff import Staff
from tests.factories import make_location
from tests.support.client import PortalClient


async def _edit(client: PortalClient, username: str, role: str, password: str, location: int | None = None):
    staff = await Staff.objects().where(Staff.user.username == username).first()
    form = {"first_name": username.title(), "role": role, "active": "on", "password": password}
    if location:
        form["location"] = str(location)
    r = await client.post(f"/staff/{staff.id}/edit", form)
    assert r.status_code == 303, r.text
    return r


async def test_an_admin_reset_ends_every_session_of_that_user(app, carol):
    loc = await make_location()
    await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith", location_id=loc)
    async with PortalClient(app) as desk, PortalClient(app) as phone:
        await desk.login("faith", "faith-password-1")
        await phone.login("faith", "faith-password-1")
        assert (await desk.get("/members")).status_code == 200
        assert (await phone.get("/members")).status_code == 200
        await _edit(carol, "faith", "front_desk", "faith-password-2", loc)
        assert (await desk.get("/members")).status_code == 303
        assert (await phone.get("/members")).status_code == 303
        # The new password works; the admin who reset it is still signed in.
        async with PortalClient(app) as again:
            await again.login("faith", "faith-password-2")
            assert (await again.get("/members")).status_code == 200
    assert (await carol.get("/staff")).status_code == 200


async def test_changing_ones_own_password_keeps_this_session_and_ends_the_others(app, carol):
    async with PortalClient(app) as other:
        await other.login("carol", "carol-password-1")
        assert (await other.get("/staff")).status_code == 200
        await _edit(carol, "carol", "admin", "carol-password-2")
        assert (await carol.get("/staff")).status_code == 200
        assert (await other.get("/staff")).status_code == 303
