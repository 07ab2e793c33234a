"""Managers manage plans; admins manage staff."""

from piccolo.apps.user.tables import BaseUser

from tables.members import Plan
from tables.staff import Staff
from tests.factories import make_location
from tests.support.client import PortalClient, field_error, field_value


async def test_a_manager_creates_and_edits_a_plan(bob):
    r = await bob.post("/plans/new", {"name": "Student monthly", "price": "2,500", "duration_months": "1",
                                      "duration_days": "0", "active": "on"})
    assert r.status_code == 303
    plan = await Plan.objects().where(Plan.name == "Student monthly").first()
    assert str(plan.price) == "2500.00" and plan.currency == "KES"
    r = await bob.post(f"/plans/{plan.id}/edit", {"name": "Student monthly", "price": "2600", "duration_months": "1",
                                                  "duration_days": "0"})
    assert r.status_code == 303
    plan = await Plan.objects().where(Plan.id == plan.id).first()
    assert str(plan.price) == "2600.00" and plan.active is False
    listing = await bob.get("/plans")
    assert "KES 2,600" in listing.text and "retired" in listing.text


async def test_plan_errors_keep_input(bob):
    r = await bob.post("/plans/new", {"name": "Day pass", "price": "12.345", "duration_months": "0", "duration_days": "0"})
    assert r.status_code == 422
    assert field_error(r.text, "price") == "At most 2 decimal places"
    assert field_error(r.text, "duration_months") == "A plan must last at least one day"
    assert field_value(r.text, "name") == "Day pass"
    assert await Plan.count() == 0


async def test_plan_names_are_unique_regardless_of_case(bob):
    await bob.post("/plans/new", {"name": "Monthly", "price": "3000", "duration_months": "1"})
    r = await bob.post("/plans/new", {"name": "monthly", "price": "3100", "duration_months": "1"})
    assert r.status_code == 422
    assert field_error(r.text, "name") == "Another plan already has this name"


async def test_an_admin_adds_staff_who_can_then_log_in(carol, app):
    loc = await make_location()
    r = await carol.post("/staff/new", {"username": "kevin", "first_name": "Kevin", "last_name": "Barasa",
                                        "role": "manager", "location": str(loc), "password": "kevin-password-1"})
    assert r.status_code == 303
    staff = await Staff.objects().where(Staff.role == "manager").first()
    assert staff.location == loc
    async with PortalClient(app) as kevin:
        await kevin.login("kevin", "kevin-password-1")
        assert (await kevin.get("/plans")).status_code == 200
        assert (await kevin.get("/staff")).status_code == 403


async def test_an_admin_deactivates_staff_and_resets_a_password(carol, alice):
    alice_staff = await Staff.objects().where(Staff.user.username == "alice").first()
    loc = await make_location()
    r = await carol.post(f"/staff/{alice_staff.id}/edit", {"first_name": "Alice", "role": "front_desk", "location": str(loc),
                                                           "password": "new-password-99"})
    assert r.status_code == 303
    assert (await BaseUser.select(BaseUser.active).where(BaseUser.username == "alice").first())["active"] is False
    assert (await alice.get("/members")).status_code == 303
    assert await BaseUser.login("alice", "new-password-99") is not None


async def test_staff_form_errors(carol):
    r = await carol.post("/staff/new", {"username": "X y", "first_name": "", "role": "boss", "password": "short"})
    assert r.status_code == 422
    assert field_error(r.text, "username").startswith("3 to 40")
    assert field_error(r.text, "password") == "At least 10 characters"
    assert field_value(r.text, "username") == "X y"
    assert field_value(r.text, "password") is None or field_value(r.text, "password") == ""


async def test_a_front_desk_login_belongs_to_a_desk(carol):
    """Cash always belongs to a desk: a front-desk login with no location would take cash that no
    day's close counts."""
    loc = await make_location()
    r = await carol.post("/staff/new", {"username": "wanjiru", "first_name": "Wanjiru", "role": "front_desk",
                                        "location": "", "password": "wanjiru-password-1"})
    assert r.status_code == 422
    assert field_error(r.text, "location") == "A front-desk login takes money at a desk: choose its location"
    assert field_value(r.text, "username") == "wanjiru"
    r = await carol.post("/staff/new", {"username": "wanjiru", "first_name": "Wanjiru", "role": "front_desk",
                                        "location": str(loc), "password": "wanjiru-password-1"})
    assert r.status_code == 303
    assert (await Staff.objects().where(Staff.user.username == "wanjiru").first()).location == loc


async def test_an_admin_cannot_lock_themselves_out(carol):
    me = await Staff.objects().where(Staff.user.username == "carol").first()
    r = await carol.post(f"/staff/{me.id}/edit", {"first_name": "Carol", "role": "front_desk", "active": "on"})
    assert r.status_code == 422
    assert (await Staff.objects().where(Staff.id == me.id).first()).role == "admin"
