"""The desk's membership pages: freeze, end a freeze, renew, change plan. Bad input re-renders the
form with the field's message and what was typed (422, never a 500); query counts are pinned."""

from datetime import timedelta
from decimal import Decimal

from portal.lib.clock import today
from tables.billing import Invoice
from tables.freezes import MembershipFreeze
from tables.members import Membership
from tests.billing.helpers import assert_books_agree, pay
from tests.factories import make_member, make_membership, make_plan
from tests.support.client import field_error, field_value


async def _member_on_monthly(days_left: int = 20):
    t = today()
    plan = await make_plan("Monthly", "3000", 1)
    member = await make_member()
    ms = await make_membership(member, plan, t - timedelta(days=29 - days_left), t + timedelta(days=days_left), "active")
    return member, plan, ms


async def test_the_freeze_form_keeps_what_was_typed_and_says_what_is_wrong(alice):
    member, _, ms = await _member_on_monthly()
    t = today()
    r = await alice.post(f"/memberships/{ms}/freeze", {"start_date": t.isoformat(), "end_date": (t + timedelta(days=2)).isoformat(),
                                                       "reason": "Travel", "fee": "abc"})
    assert r.status_code == 422
    assert field_error(r.text, "fee") == "Enter the fee as an amount, e.g. 500, or leave it empty"
    assert field_value(r.text, "reason") == "Travel" and field_value(r.text, "fee") == "abc"
    r = await alice.post(f"/memberships/{ms}/freeze", {"start_date": t.isoformat(), "end_date": (t + timedelta(days=2)).isoformat(),
                                                       "reason": "Travel", "fee": ""})
    assert r.status_code == 422
    assert field_error(r.text, "end_date") == "A freeze lasts at least 7 days; this is 3 days"
    assert field_value(r.text, "end_date") == (t + timedelta(days=2)).isoformat()
    r = await alice.post(f"/memberships/{ms}/freeze", {"start_date": "not a date", "end_date": "", "reason": "", "fee": "-5"})
    assert r.status_code == 422
    assert field_error(r.text, "start_date") == "Enter the first frozen day"
    assert field_error(r.text, "end_date") == "Enter the last frozen day"
    assert field_value(r.text, "start_date") == "not a date"
    assert await MembershipFreeze.count() == 0

    r = await alice.post(f"/memberships/{ms}/freeze", {"start_date": t.isoformat(), "end_date": (t + timedelta(days=19)).isoformat(),
                                                       "reason": "Travelling", "fee": "500"})
    assert r.status_code == 303 and r.headers["location"] == f"/members/{member}?notice=membership_frozen"
    page = await alice.get(f"/members/{member}")
    assert "frozen" in page.text and f"{t + timedelta(days=40):%d %b %Y}" in page.text  # end T+20 + 20 days
    assert await Invoice.count().where(Invoice.member == member) == 1  # the fee's invoice

    fz = await MembershipFreeze.select().first()
    r = await alice.post(f"/freezes/{fz['id']}/end", {"reason": ""})
    assert r.status_code == 422 and field_error(r.text, "end-reason") == "Say why you are ending the freeze (a few words)"
    r = await alice.post(f"/freezes/{fz['id']}/end", {"reason": "Came back early"})
    assert r.status_code == 303
    # Ended on its first day: every day given back, the end date is T+20 again.
    assert (await Membership.select().where(Membership.id == ms).first())["end_date"] == t + timedelta(days=20)
    await assert_books_agree()


async def test_renew_from_the_member_page_twice_makes_one_invoice(alice):
    member, _, ms = await _member_on_monthly(days_left=3)
    page = await alice.get(f"/members/{member}")
    assert 'data-testid="renew"' in page.text
    first = await alice.post(f"/memberships/{ms}/renew")
    second = await alice.post(f"/memberships/{ms}/renew")
    assert first.status_code == second.status_code == 303
    assert first.headers["location"].endswith("notice=renewal_raised")
    assert second.headers["location"].endswith("notice=renewal_exists")
    assert first.headers["location"].split("?")[0] == second.headers["location"].split("?")[0]
    assert await Invoice.count().where(Invoice.kind == "renewal") == 1
    page = await alice.get(f"/members/{member}")
    assert 'data-testid="renewal-link"' in page.text
    await pay(member, 3000)
    assert await Membership.count().where(Membership.member == member) == 2


async def test_an_overlapping_start_links_to_renew(alice):
    member, plan, ms = await _member_on_monthly()
    r = await alice.post(f"/members/{member}/memberships", {"plan": str(plan), "start_date": today().isoformat()})
    assert r.status_code == 422
    assert f'href="/memberships/{ms}/renew"' in r.text and "renew it instead" in r.text
    confirm = await alice.get(f"/memberships/{ms}/renew")
    assert confirm.status_code == 200 and 'data-testid="renew-submit"' in confirm.text


async def test_change_plan_page_shows_the_figures_and_refuses_bad_choices(alice):
    """Monthly 3,000 (agreed price; no paying invoice in this set-up) from T-11 to T+18; Quarterly
    8,000 today: 19 of 30 days unused, credit 3,000 × 19 / 30 = 1,900.00, to pay 6,100.00."""
    t = today()
    monthly = await make_plan("Monthly", "3000", 1)
    quarterly = await make_plan("Quarterly", "8000", 3)
    member = await make_member()
    ms = await make_membership(member, monthly, t - timedelta(days=11), t + timedelta(days=18), "active")
    r = await alice.get(f"/memberships/{ms}/change?plan={quarterly}")
    assert r.status_code == 200
    assert 'data-testid="quote-unused">19<' in r.text and 'data-testid="quote-credit">KES 1,900<' in r.text
    assert 'data-testid="quote-balance"><strong>KES 6,100<' in r.text
    r = await alice.post(f"/memberships/{ms}/change", {"plan": ""})
    assert r.status_code == 422 and field_error(r.text, "plan") == "Choose the new plan"
    r = await alice.post(f"/memberships/{ms}/change", {"plan": str(monthly)})
    assert r.status_code == 422 and "renew it instead" in field_error(r.text, "plan")
    r = await alice.post(f"/memberships/{ms}/change", {"plan": "999999"})
    assert r.status_code == 422 and field_error(r.text, "plan") == "Choose an active plan"
    r = await alice.post(f"/memberships/{ms}/change", {"plan": str(quarterly)})
    assert r.status_code == 303 and r.headers["location"].endswith("notice=plan_changed")
    inv = await Invoice.select().where(Invoice.kind == "new").first()
    assert (inv["total"], inv["paid"]) == (Decimal("8000.00"), Decimal("1900.00"))
    await assert_books_agree()


async def test_the_renewals_list_shows_a_frozen_end_and_a_renew_button(bob):
    member, _, ms = await _member_on_monthly(days_left=3)
    t = today()
    from portal.members import changes

    await changes.freeze(ms, t, t + timedelta(days=1) + timedelta(days=5), "Injury", None, None)  # 7 days: ends T+10
    r = await bob.get("/renewals?window=14")
    assert r.status_code == 200
    assert 'data-testid="renewal-frozen"' in r.text and f"{t + timedelta(days=10):%d %b %Y}" in r.text
    assert f'action="/memberships/{ms}/renew"' in r.text


async def _count(client, path: str) -> int:
    r = await client.get(path)
    assert r.status_code == 200, r.text[:500]
    return int(r.headers["x-query-count"])


async def test_query_counts_are_fixed(alice):
    t = today()
    monthly = await make_plan("Monthly", "3000", 1)
    quarterly = await make_plan("Quarterly", "8000", 3)
    from portal.members import changes

    for n in (1, 12):
        member = await make_member(f"Member{n}", "Counted")
        ms = await make_membership(member, monthly, t - timedelta(days=11), t + timedelta(days=18), "active")
        for k in range(n):  # n freezes in its history
            start = t + timedelta(days=k * 8)
            await changes.freeze(ms, start, start + timedelta(days=6), f"Trip {k}", None, None)
        # session, the membership (member and plan joined), its freezes (fee invoices joined)
        assert await _count(alice, f"/memberships/{ms}/freeze") == 3
        # session, the membership, its plan
        assert await _count(alice, f"/memberships/{ms}/renew") == 3
        # the member page keeps its count, 11 (tests/web/test_member_search_queries.py: memberships, freezes and
        # renewal invoices in one query)
        assert await _count(alice, f"/members/{member}") == 11
        # A membership with n - 1 freezes behind it and none to come, to change plan.
        other = await make_member(f"Other{n}", "Counted")
        ms2 = await make_membership(other, monthly, t - timedelta(days=8 * n + 20), t + timedelta(days=18), "active")
        for k in range(n - 1):
            start = t - timedelta(days=8 * n + 19) + timedelta(days=k * 8)
            await changes.freeze(ms2, start, start + timedelta(days=6), f"Trip {k}", None, None, on=start)
        # session, the membership, plans; the quote: membership, plan, freezes, later membership, paying invoice
        assert await _count(alice, f"/memberships/{ms2}/change?plan={quarterly}") == 8
