"""Staff choose how a member hears from the gym: SMS (the default), email, or both."""

from tables.members import Member
from tests.factories import make_member


def _form(**over) -> dict:
    return {"first_name": "Wanjiku", "last_name": "Kamau", "phone": "0712 345 678", "email": "", "notes": "",
            "home_location": "", **over}


async def test_new_members_get_sms(alice):
    r = await alice.post("/members/new", _form())
    member_id = int(r.headers["location"].split("/")[2].split("?")[0])
    assert (await Member.select(Member.message_channel).where(Member.id == member_id).first())["message_channel"] == "sms"


async def test_email_needs_an_address(alice):
    member = await make_member()
    r = await alice.post(f"/members/{member}/edit", _form(message_channel="email"))
    assert r.status_code == 422 and "Add an email address to send by email" in r.text

    r = await alice.post(f"/members/{member}/edit", _form(message_channel="both", email="w@example.com"))
    assert r.status_code == 303
    row = await Member.select(Member.message_channel, Member.email).where(Member.id == member).first()
    assert row == {"message_channel": "both", "email": "w@example.com"}
    page = await alice.get(f"/members/{member}/edit")
    assert '<option value="both" selected>' in page.text


async def test_an_unknown_channel_is_refused(alice):
    member = await make_member()
    r = await alice.post(f"/members/{member}/edit", _form(message_channel="pigeon"))
    assert r.status_code == 422 and "Choose SMS, email or both" in r.text
