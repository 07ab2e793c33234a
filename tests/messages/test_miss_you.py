"""'We miss you' from the list of members not seen for a while (portal/members/absent.py): one
click per member or for all shown, by each member's own channel, at most once a week, never to
one who opted out; the email arrives with when they were last in; the SMS fits one part."""

import re
from datetime import timedelta

import pytest

from portal.gateways.africastalking import sms_parts
from portal.lib.clock import now, today
from portal.members import absent
from portal.messages import content
from tables.audit import AuditLog
from tables.members import Member
from tables.messages import Message
from tables.visits import Visit
from tests.factories import make_member, make_membership, make_plan
from tests.messages.conftest import wait_for_message


async def _running(first: str, last: str, number: str, **kw) -> int:
    plan = await make_plan(f"Plan {number}")
    member = await make_member(first, last, number=number, **kw)
    await make_membership(member, plan, today() - timedelta(days=40), today() + timedelta(days=20), "active")
    return member


async def _last_in(member: int, days_ago: int) -> None:
    await Visit.insert(Visit(member=member, at=now() - timedelta(days=days_ago), colour="green", outcome="allowed"))


def _rows(html: str) -> dict[int, str]:
    return {int(m): cell for m, cell in re.findall(r'data-testid="absent-row" data-member="(\d+)">(.*?)</tr>', html, re.S)}


async def test_a_manager_reminds_one_then_all_and_nobody_twice_in_a_week(alice, bob):
    sms_only = await _running("Otieno", "Odhiambo", "PTF0101")
    by_email = await _running("Wairimu", "Njeri", "PTF0102", email="wairimu@example.com", message_channel="email")
    opted_out = await _running("Kiprono", "Bett", "PTF0103", reminder_opt_out=True)
    regular = await _running("Came", "Yesterday", "PTF0104")
    for member, days in ((sms_only, 30), (by_email, 20), (opted_out, 25), (regular, 1)):
        await _last_in(member, days)

    page = await bob.get("/checkin/visits?days=14")
    assert set(_rows(page.text)) == {sms_only, by_email, opted_out}
    assert "Remind all 3 not reminded this week" in page.text

    # The front desk cannot, nor can a page without the token.
    assert (await alice.post("/checkin/visits/remind", {"member": sms_only, "days": 14})).status_code == 403
    assert (await bob.post("/checkin/visits/remind", {"member": sms_only, "days": 14}, csrf=False)).status_code == 403
    assert await Message.count() == 0

    r = await bob.post("/checkin/visits/remind", {"member": sms_only, "days": 14})
    assert r.status_code == 303 and r.headers["location"] == "/checkin/visits?days=14&reminded=1.0.0#not-seen"
    (sms,) = await Message.select().where(Message.member == sms_only)
    phone = await Member.select(Member.phone).where(Member.id == sms_only).first()
    assert (sms["kind"], sms["channel"], sms["to_address"]) == ("miss_you", "sms", "+" + phone["phone"])
    assert sms["dedupe_key"] == f"{absent.week_key(sms_only, today())}:sms"

    page = await bob.get("/checkin/visits?days=14&reminded=1.0.0")
    assert "1 reminded now." in page.text
    rows = _rows(page.text)
    assert 'data-testid="reminded-on">Reminded' in rows[sms_only] and 'data-testid="remind"' in rows[by_email]
    assert "Remind all 2 not reminded this week" in page.text

    # "Remind all" sends the posted members (a stale page may still list the first): once each a week.
    r = await bob.post("/checkin/visits/remind", {"member": [sms_only, by_email, opted_out], "days": 14})
    assert r.headers["location"] == "/checkin/visits?days=14&reminded=1.1.1#not-seen"
    page = await bob.get(r.headers["location"].split("#")[0])
    assert "1 reminded now, 1 already this week, 1 not sent (opted out, left, or no phone or email)." in page.text
    assert {(m["member"], m["channel"]) for m in await Message.select(Message.member, Message.channel)} == {
        (sms_only, "sms"), (by_email, "email")}
    audited = await AuditLog.select(AuditLog.entity_id).where(AuditLog.action == "member.reminded_absent")
    assert sorted(int(a["entity_id"]) for a in audited) == sorted([sms_only, by_email])

    # Next week the same member may be reminded again.
    again = await absent.remind([sms_only], None, on=today() + timedelta(days=7))
    assert again.queued == [sms_only]


async def test_the_email_says_when_they_were_last_in_and_the_sms_fits_one_part(bob, worker, smtp_server, settings):
    member = await _running("Nyokabi-Wanjiru", "Kamau-Githinji", "PTF0111", email="nyokabi@example.com",
                            message_channel="both")
    await _last_in(member, 21)
    await bob.post("/checkin/visits/remind", {"member": member, "days": 14})

    (_, rcpt_tos, msg), = await smtp_server.wait_for(1)
    assert rcpt_tos == ["nyokabi@example.com"] and msg["Subject"] == f"We have missed you at {settings.gym_name}"
    text = msg.get_body(preferencelist=("plain",)).get_content()
    last_in = (now() - timedelta(days=21)).astimezone(settings.tz).strftime("%d %b %Y")
    ends = (today() + timedelta(days=20)).strftime("%d %b %Y")
    assert "Hello Nyokabi-Wanjiru Kamau-Githinji" in text and f"since {last_in}" in text
    assert f"Your membership runs until {ends}: come in any time" in text

    (sms,) = await Message.select().where((Message.member == member) & (Message.channel == "sms"))
    sent = await wait_for_message(sms["id"], {"sent", "delivered", "failed"})
    assert sent["body_text"].startswith(f"{settings.gym_name}: hello Nyokabi-Wanjiru")
    assert sms_parts(sent["body_text"])[1] == 1, sent["body_text"]


async def test_a_member_who_came_in_before_it_went_is_not_sent_it(db):
    member = await _running("Came", "Back", "PTF0121")
    await _last_in(member, 30)
    done = await absent.remind([member], None)
    assert done.queued == [member]
    (message,) = await Message.select().where(Message.member == member)
    assert (await content.build(message)).text  # before they come back: it would go
    await _last_in(member, 0)
    with pytest.raises(content.Skip, match="came in after it was queued"):
        await content.build(message)


def test_every_miss_you_sms_variant_fits_one_part_for_a_long_name():
    from portal.documents.context import base

    ctx = {**base(), "member": {"first_name": "Nyokabi-Wanjiru-Wambui", "name": "x"},
           "last_seen": now() - timedelta(days=40), "runs_until": today() + timedelta(days=300)}
    text = content.sms_text("miss-you", ctx)
    assert "Nyokabi-Wanjiru-Wambui" in text and sms_parts(text)[1] == 1, text


async def test_a_swahili_member_is_missed_in_swahili(db):
    member = await _running("Baraka", "Mwangi", "PTF0131", language="sw", email="baraka@example.com",
                            message_channel="both")
    await _last_in(member, 30)
    await absent.remind([member], None)
    built = {m["channel"]: await content.build(m) for m in
             await Message.select().where(Message.member == member).output(load_json=True)}
    assert built["sms"].text.startswith("Paul's Tropical Fitness: habari Baraka, tumekukosa tangu ")
    assert sms_parts(built["sms"].text)[1] == 1
    assert built["email"].subject.startswith("Tumekukosa ") and "Habari Baraka Mwangi," in built["email"].text
    assert "Uanachama wako unaendelea hadi" in built["email"].text


async def test_reminding_a_whole_list_costs_the_same_queries_as_reminding_three(db):
    """'Remind all' on a long list: the members, the messages, the keys already taken, the audit
    rows (and the transaction around them), whether 3 or 30 are chosen; the week's rule still
    holds for each (already reminded, opted out, by their own channels)."""
    from portal.lib.db import count_queries

    async def members(prefix: str, n: int) -> list[int]:
        return [await _running("Many", f"{prefix}{i}", f"{prefix}{i:04d}",
                               **({"email": f"{prefix}{i}@example.com", "message_channel": "both"} if i % 3 == 0 else {}))
                for i in range(n)]

    few, many = await members("F", 3), await members("M", 30)
    opted_out = await _running("Kiprono", "Bett", "OPT0001", reminder_opt_out=True)
    counts = []
    for chosen in (few, many):
        with count_queries() as n:
            done = await absent.remind(chosen + [opted_out], staff_id=None)
        counts.append(n.value)
        assert sorted(done.queued) == sorted(chosen) and done.opted_out == [opted_out] and done.already == []
    assert counts[0] == counts[1] <= 7, counts
    # Every third member takes both channels: 30 members, 40 messages; each one audited once.
    assert await Message.count().where(Message.member.is_in(many)) == 40
    assert await AuditLog.count().where(AuditLog.action == "member.reminded_absent") == 33
    with count_queries() as n:
        again = await absent.remind(many, staff_id=None)
    assert sorted(again.already) == sorted(many) and again.queued == [] and n.value <= 7
    assert await Message.count().where(Message.member.is_in(many)) == 40
