"""The door controller's status carries the check-in screen's answer: the same rule
(portal/members/checkin.py), so the API and the desk never disagree on the colour."""

from datetime import timedelta

from portal.lib.clock import today
from tables.billing import Invoice
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member, make_membership, make_plan


async def test_access_status_gives_the_check_in_colour_and_reasons(reader, alice):
    plan = await make_plan()
    member = await make_member("Otieno", "Late", number="PTF0301")
    await make_membership(member, plan, today() - timedelta(days=25), today() + timedelta(days=30), "active")
    inv = await invoice_for(member, 3000)
    await Invoice.update({Invoice.due_date: today() - timedelta(days=20)}).where(Invoice.id == inv["id"])

    door = (await reader.get(f"/api/v1/members/{member}/access")).json()
    assert door["checkin_colour"] == "red"
    assert door["checkin_reasons"] == [
        f"On hold: invoice {inv['number']} is 20 days overdue (more than 14 days). Owes KES 3,000 overdue."]
    desk = await alice.post("/checkin", {"q": "PTF0301"}, htmx=True)
    assert 'data-colour="red"' in desk.text and door["checkin_reasons"][0] in desk.text

    await pay(member, 3000, invoice_id=inv["id"])
    door = (await reader.get(f"/api/v1/members/{member}/access")).json()
    assert (door["checkin_colour"], door["allowed"]) == ("green", True)
    assert door["checkin_reasons"] == [f"Active until {today() + timedelta(days=30):%d %b %Y}; nothing overdue."]
    assert (await reader.get("/api/v1/members/999999/access")).status_code == 404


async def test_the_door_allows_exactly_whom_the_desk_lets_in(reader):
    """`allowed` is the check-in rule's (not red): an amount owed past CHECKIN_RED_OWED_AMOUNT
    stops a member at the door as at the desk, though they are not on hold; amber lets in."""
    from tests.support.env import setting

    plan = await make_plan()
    member = await make_member("Owes", "Much", number="PTF0302")
    await make_membership(member, plan, today() - timedelta(days=25), today() + timedelta(days=30), "active")
    inv = await invoice_for(member, 3000)
    await Invoice.update({Invoice.due_date: today() - timedelta(days=3)}).where(Invoice.id == inv["id"])
    door = (await reader.get(f"/api/v1/members/{member}/access")).json()
    assert (door["checkin_colour"], door["allowed"], door["on_hold"], door["reason"]) == ("amber", True, False, None)
    with setting("CHECKIN_RED_OWED_AMOUNT", "2000"):
        door = (await reader.get(f"/api/v1/members/{member}/access")).json()
    assert (door["checkin_colour"], door["allowed"], door["on_hold"]) == ("red", False, False)
    assert door["reason"] == " ".join(door["checkin_reasons"][:1]) and "3,000" in door["reason"]
