"""The check-in screen over HTTP: a number typed or scanned answers green, amber or red with the
reason and the action; red can be let in with a reason (audited); every check-in is a visit, shown
on the member page and counted on the managers' page; the answer costs the same number of queries
whatever the number of members, invoices or visits."""

import re
from datetime import timedelta

import pytest

from portal.lib.clock import today
from tables.audit import AuditLog
from tables.billing import Invoice
from tables.visits import Visit
from tests.billing.helpers import invoice_for
from tests.factories import make_member, make_members, make_membership, make_plan


async def _on_plan(number: str, first: str = "Wanjiku", last: str = "Kamau", ends_in: int = 30, **kw) -> int:
    plan = await make_plan(f"Plan {number}")
    member = await make_member(first, last, number=number, **kw)
    await make_membership(member, plan, today() - timedelta(days=10), today() + timedelta(days=ends_in), "active")
    return member


async def _overdue(member: int, amount: str, days: int) -> dict:
    inv = await invoice_for(member, amount)
    await Invoice.update({Invoice.due_date: today() - timedelta(days=days)}).where(Invoice.id == inv["id"])
    return inv


def _answer(html: str) -> dict:
    colour = re.search(r'data-testid="checkin-answer" data-colour="(\w+)" data-visit="(\d+)"', html)
    reasons = re.search(r'data-testid="checkin-reasons">(.*?)</ul>', html, re.S).group(1)
    return {"colour": colour.group(1), "visit": int(colour.group(2)),
            "reasons": [re.sub(r"<.*?>", "", r).strip() for r in re.findall(r"<li[^>]*>(.*?)</li>", reasons, re.S)],
            "actions": dict(re.findall(r'href="([^"]+)" data-testid="checkin-action-(\w+)"', html))}


async def test_the_page_is_one_key_away_and_in_the_menu(alice):
    page = await alice.get("/checkin")
    assert page.status_code == 200
    assert 'id="checkin-q"' in page.text and "autofocus" in page.text
    members = await alice.get("/members")
    assert 'data-testid="nav-checkin"' in members.text and 'aria-keyshortcuts="F2"' in members.text
    assert '<script src="/static/checkin.js" defer></script>' in members.text
    js = await alice.get("/static/checkin.js")
    assert js.status_code == 200 and "'F2'" in js.text


async def test_green_amber_and_red_with_reasons_and_actions(alice):
    green = await _on_plan("PTF0001", "Green", "Member")
    amber = await _on_plan("PTF0002", "Amber", "Member")
    await _overdue(amber, "1500", 3)
    red = await _on_plan("PTF0003", "Red", "Member")
    inv = await _overdue(red, "3000", 20)

    r = await alice.post("/checkin", {"q": "PTF0001"}, htmx=True)
    assert r.status_code == 200
    a = _answer(r.text)
    assert a["colour"] == "green" and a["actions"] == {}
    assert a["reasons"] == [f"Active until {today() + timedelta(days=30):%d %b %Y}; nothing overdue."]
    assert 'data-testid="override-form"' not in r.text

    # A scanner types the number in whatever case the card has.
    a = _answer((await alice.post("/checkin", {"q": "ptf0002"}, htmx=True)).text)
    assert a["colour"] == "amber"
    assert a["reasons"] == ["Owes KES 1,500 overdue (3 days late; on hold after 14 days)."]
    assert a["actions"] == {f"/members/{amber}#pay": "pay", f"/members/{amber}#mpesa": "mpesa"}

    r = await alice.post("/checkin", {"q": "PTF0003"})  # without htmx: the whole page
    assert r.status_code == 200 and "<h1>Check-in</h1>" in r.text
    a = _answer(r.text)
    assert a["colour"] == "red"
    assert a["reasons"] == [f"On hold: invoice {inv['number']} is 20 days overdue (more than 14 days). Owes KES 3,000 overdue."]
    assert f"/members/{red}#pay" in a["actions"]
    assert 'data-testid="override-form"' in r.text and "Stop: do not let in" in r.text

    # Every check-in is a visit: two let in, one turned away.
    visits = await Visit.select(Visit.member, Visit.colour, Visit.outcome).order_by(Visit.id)
    assert [(v["member"], v["colour"], v["outcome"]) for v in visits] == [
        (green, "green", "allowed"), (amber, "amber", "allowed"), (red, "red", "refused")]


async def test_the_member_page_links_are_where_the_actions_point(alice):
    member = await _on_plan("PTF0009", ends_in=2)
    a = _answer((await alice.post("/checkin", {"q": "PTF0009"}, htmx=True)).text)
    assert a["colour"] == "amber" and a["actions"] == {f"/members/{member}#plan": "renew"}
    page = await alice.get(f"/members/{member}")
    for anchor in ('id="pay"', 'id="mpesa"', 'id="plan"'):
        assert anchor in page.text


async def test_phone_and_name_find_the_member_and_several_matches_are_listed(alice):
    await _on_plan("PTF0011", "Achieng", "Odhiambo", phone="254722111222")
    await _on_plan("PTF0012", "Achieng", "Otieno")
    only = await _on_plan("PTF0013", "Brian", "Mutua")
    a = _answer((await alice.post("/checkin", {"q": "0722 111 222"}, htmx=True)).text)
    assert a["colour"] == "green"
    r = await alice.post("/checkin", {"q": "brian mutua"}, htmx=True)
    assert f'href="/members/{only}" data-testid="checkin-member"' in r.text
    r = await alice.post("/checkin", {"q": "achieng"}, htmx=True)
    assert r.text.count('data-testid="checkin-match"') == 2 and 'data-testid="checkin-answer"' not in r.text
    assert await Visit.count() == 2  # a list of matches is no visit yet
    chosen = re.findall(r'name="member" value="(\d+)"', r.text)[-1]  # Achieng Otieno, not checked in yet
    a = _answer((await alice.post("/checkin", {"member": chosen}, htmx=True)).text)
    assert a["colour"] == "green" and await Visit.count() == 3


@pytest.mark.parametrize("form, status, message", [
    ({"q": ""}, 422, "Type or scan a member number"),
    ({"q": "   "}, 422, "Type or scan a member number"),
    ({"q": "PTF9999"}, 200, "No member found for “PTF9999”."),
    ({"member": "999999"}, 422, "That member is not there any more"),
    ({"q": "x" * 5000}, 200, "No member found"),
])
async def test_bad_or_unknown_input_gets_a_clear_answer(alice, form, status, message):
    r = await alice.post("/checkin", form, htmx=True)
    assert r.status_code == status
    assert message in re.search(r'data-testid="checkin-error">([^<]*)<', r.text).group(1)
    assert await Visit.count() == 0


async def test_override_needs_a_reason_and_is_audited(alice):
    member = await make_member("Late", "Payer", number="PTF0021")
    visit = _answer((await alice.post("/checkin", {"q": "PTF0021"}, htmx=True)).text)["visit"]

    r = await alice.post(f"/checkin/visits/{visit}/override", {"reason": " "}, htmx=True)
    assert r.status_code == 422
    assert re.search(r'data-testid="error-override">([^<]*)<', r.text).group(1) == "Say why you are letting them in (a few words)."
    assert f'href="/members/{member}#plan" data-testid="checkin-action-renew"' in r.text  # still beside the form
    assert (await Visit.select(Visit.outcome).where(Visit.id == visit).first())["outcome"] == "refused"

    r = await alice.post(f"/checkin/visits/{visit}/override", {"reason": "Owner's guest today"}, htmx=True)
    assert r.status_code == 200
    assert "Let in by override" in r.text and "Owner&#39;s guest today" in r.text
    assert 'data-testid="override-form"' not in r.text
    row = await AuditLog.select().where(AuditLog.action == "visit.override").first()
    assert (row["entity_id"], row["reason"]) == (str(visit), "Owner's guest today")

    r = await alice.post(f"/checkin/visits/{visit}/override", {"reason": "twice"}, htmx=True)
    assert r.status_code == 422 and "already let in" in r.text
    assert await AuditLog.count().where(AuditLog.action == "visit.override") == 1
    assert (await alice.post("/checkin/visits/999999/override", {"reason": "no such"}, htmx=True)).status_code == 404

    page = await alice.get(f"/members/{member}")
    rows = re.findall(r'data-testid="visit-row" data-outcome="(\w+)"', page.text)
    assert rows == ["override"]
    assert "let in by override" in page.text and "Owner&#39;s guest today" in page.text


async def test_check_in_and_override_refuse_a_post_without_the_csrf_token(alice):
    await make_member(number="PTF0031")
    r = await alice.post("/checkin", {"q": "PTF0031"}, csrf=False)
    assert r.status_code == 403 and await Visit.count() == 0
    visit = _answer((await alice.post("/checkin", {"q": "PTF0031"}, htmx=True)).text)["visit"]
    r = await alice.post(f"/checkin/visits/{visit}/override", {"reason": "forged"}, csrf=False)
    assert r.status_code == 403
    assert (await Visit.select(Visit.outcome).where(Visit.id == visit).first())["outcome"] == "refused"


async def test_the_visits_page_is_for_managers_and_counts_days_weeks_and_absentees(alice, bob):
    assert (await alice.get("/checkin/visits")).status_code == 403
    seen = await _on_plan("PTF0041", "Seen", "Today")
    await _on_plan("PTF0042", "Never", "Came")
    await make_member("No", "Plan", number="PTF0043")  # no running membership: not expected at the door
    await alice.post("/checkin", {"q": "PTF0041"}, htmx=True)
    await alice.post("/checkin", {"q": "PTF0041"}, htmx=True)  # scanned twice: one visit
    await _on_plan("PTF0044", "Seen", "Twice")
    await alice.post("/checkin", {"q": "PTF0044"}, htmx=True)
    await alice.post("/checkin", {"q": "PTF0043"}, htmx=True)  # red: turned away

    r = await bob.get("/checkin/visits")
    assert r.status_code == 200
    today_row = re.search(rf'<tr data-day="{today().isoformat()}">(.*?)</tr>', r.text, re.S).group(1)
    assert re.findall(r'data-testid="came-in">(\d+)<', today_row) == ["2"]  # PTF0041 once, PTF0044
    assert re.findall(r'data-testid="refused">(\d+)<', today_row) == ["1"]
    assert r.text.count("<tr data-day=") == 14 and r.text.count("<tr data-week=") == 12
    absent = re.findall(r'data-testid="absent-row" data-member="\d+"><td><a href="/members/(\d+)">', r.text)
    assert len(absent) == 1 and int(absent[0]) != seen and "Never Came" in r.text
    assert (await bob.get("/checkin/visits?days=abc")).status_code == 422
    assert (await bob.get("/checkin/visits?days=0")).status_code == 422


async def test_the_member_card_carries_the_number_as_a_qr(alice):
    import segno

    member = await make_member("Card", "Holder", number="PTF0051")
    r = await alice.get(f"/members/{member}/card")
    assert r.status_code == 200
    assert re.search(r'data-testid="card-number">PTF0051<', r.text)
    qr = segno.make("PTF0051", error="m").svg_inline(border=2, omitsize=True, dark="#000", light="#fff")
    assert qr in r.text  # the symbol for exactly this number
    assert "<script>" not in r.text and 'href="/static/card.css"' in r.text
    assert (await alice.get("/members/999999/card")).status_code == 404


@pytest.mark.parametrize("size", [50, 2000])
async def test_the_check_in_answer_costs_the_same_queries_at_any_size(alice, size):
    await make_members(size)
    plan = await make_plan()
    for member in (await _ids(size)):
        await make_membership(member, plan, today() - timedelta(days=3), today() + timedelta(days=27), "active")
    target = await _on_plan("PTF0099", "Target", "Member")
    for days in (3, 20, 40):
        await _overdue(target, "100", days)
    from tables.visits import Visit as V

    await V.insert(*[V(member=target, colour="green", outcome="allowed", reason="") for _ in range(size // 10)])
    r = await alice.post("/checkin", {"q": "PTF0099"}, htmx=True)
    assert r.status_code == 200 and _answer(r.text)["colour"] == "red"
    # the session's staff member, the member's standing (memberships, overdue and hold in one), the visit,
    # the member's session packs with sessions left
    assert int(r.headers["x-query-count"]) == 4
    r = await alice.post(f"/checkin/visits/{_answer(r.text)['visit']}/override", {"reason": "paying now"}, htmx=True)
    # the session, the visit and member, the update, the audit row
    assert r.status_code == 200 and int(r.headers["x-query-count"]) == 4


async def _ids(limit: int) -> list[int]:
    from tables.members import Member

    return [r["id"] for r in await Member.select(Member.id).limit(limit)]


@pytest.mark.parametrize("absentees", [3, 60])
async def test_the_visits_page_costs_the_same_queries_however_many_are_absent(bob, absentees):
    from portal.members import absent

    members = [await _on_plan(f"PTF{2000 + i}", "Away", f"Member{i}") for i in range(absentees)]
    await absent.remind(members[::2], None)
    r = await bob.get("/checkin/visits")
    assert r.status_code == 200 and r.text.count('data-testid="absent-row"') == absentees
    assert r.text.count('data-testid="reminded-on"') == len(members[::2])
    # the session's staff member, visits by day, by week, the not-seen list, who was reminded lately
    assert int(r.headers["x-query-count"]) == 5
