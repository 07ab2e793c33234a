"""The check-in rule's worked examples, at each boundary (portal/members/checkin.py).

The gym's rule in these examples: red above KES 5,000 overdue (CHECKIN_RED_OWED_AMOUNT), red when
an invoice is more than 14 days overdue (the hold, HOLD_GRACE_DAYS), amber when the membership ends
within 7 days (CHECKIN_AMBER_EXPIRY_DAYS). The first half calls the rule with the facts written
out; the second half builds the members in the database and asks `check`, so the one query that
reads the facts is held to the same examples."""

import itertools
import json
from datetime import date, timedelta
from decimal import Decimal

import pytest

from portal.lib.errors import RuleBroken
from portal.members import checkin
from portal.members.checkin import AMBER, GREEN, RED, Rules, Standing, decide
from tables.audit import AuditLog
from tables.billing import Invoice
from tables.members import Member
from tables.visits import Visit
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member, make_membership, make_plan

DAY = date(2026, 3, 10)
RULES = Rules(red_owed_amount=Decimal("5000"), amber_expiry_days=7, hold_grace_days=14)
ACTIVE = Standing(covered_until=DAY + timedelta(days=30))
_plans = itertools.count(1)


def _with(**facts) -> Standing:
    return Standing(**{**ACTIVE.__dict__, **facts})


def test_active_with_nothing_overdue_is_green():
    answer = decide(ACTIVE, DAY, RULES)
    assert (answer.colour, answer.text, answer.actions) == (GREEN, "Active until 09 Apr 2026; nothing overdue.", [])
    assert answer.allowed


@pytest.mark.parametrize("overdue, colour", [("4999.99", AMBER), ("5000", AMBER), ("5000.01", RED)])
def test_the_amount_rule_at_below_and_above_the_limit(overdue, colour):
    answer = decide(_with(overdue=Decimal(overdue), oldest_due=DAY - timedelta(days=3)), DAY, RULES)
    assert answer.colour == colour
    assert answer.actions == ["pay", "mpesa"]
    if colour == RED:
        assert answer.text == "Owes KES 5,000.01 overdue, more than the KES 5,000 allowed."
        assert not answer.allowed
    else:
        assert answer.text.startswith(f"Owes KES {Decimal(overdue):,} overdue (3 days late; on hold after 14 days)")


def test_without_an_amount_rule_any_amount_inside_the_grace_period_is_amber():
    answer = decide(_with(overdue=Decimal("90000"), oldest_due=DAY - timedelta(days=14)), DAY,
                    Rules(red_owed_amount=Decimal(0)))
    assert answer.colour == AMBER


def test_on_hold_is_red_whatever_the_amount():
    answer = decide(_with(overdue=Decimal("100"), on_hold=True, hold_invoice="INV-2026-00007", hold_days=15,
                          oldest_due=DAY - timedelta(days=15)), DAY, RULES)
    assert answer.colour == RED
    assert answer.text == "On hold: invoice INV-2026-00007 is 15 days overdue (more than 14 days). Owes KES 100 overdue."
    assert answer.actions == ["pay", "mpesa"]


@pytest.mark.parametrize("days_left, colour, words", [
    (0, AMBER, "The membership ends on 10 Mar 2026: today is the last day."),
    (1, AMBER, "The membership ends on 11 Mar 2026: tomorrow is the last day."),
    (7, AMBER, "The membership ends on 17 Mar 2026: 7 days left."),
    (8, GREEN, "Active until 18 Mar 2026; nothing overdue."),
])
def test_the_expiry_band_at_below_and_above_its_days(days_left, colour, words):
    answer = decide(_with(covered_until=DAY + timedelta(days=days_left)), DAY, RULES)
    assert (answer.colour, answer.text) == (colour, words)
    assert answer.actions == ([] if colour == GREEN else ["renew"])


def test_expired_yesterday_is_red_with_renew():
    answer = decide(Standing(last_ended=DAY - timedelta(days=1)), DAY, RULES)
    assert (answer.colour, answer.text, answer.actions) == (RED, "The membership expired on 09 Mar 2026 (yesterday).", ["renew"])
    answer = decide(Standing(last_ended=DAY - timedelta(days=40)), DAY, RULES)
    assert answer.text == "The membership expired on 29 Jan 2026 (40 days ago)."


@pytest.mark.parametrize("facts, words", [
    ({"member_status": "suspended"}, "Membership is suspended."),
    ({"member_status": "left"}, "Has left the gym."),
])
def test_a_suspended_or_departed_member_is_red_even_when_paid_up(facts, words):
    answer = decide(_with(**facts), DAY, RULES)
    assert (answer.colour, answer.text) == (RED, words)


@pytest.mark.parametrize("facts, words, actions", [
    ({}, "No membership.", ["renew"]),
    ({"unpaid": True}, "The membership is not paid yet.", ["pay", "mpesa"]),
    ({"next_start": date(2026, 3, 15)}, "The membership starts on 15 Mar 2026.", []),
])
def test_without_a_membership_covering_the_day_it_is_red(facts, words, actions):
    answer = decide(Standing(**facts), DAY, RULES)
    assert (answer.colour, answer.text, answer.actions) == (RED, words, actions)


def test_every_reason_is_given_the_worst_first():
    answer = decide(_with(covered_until=DAY + timedelta(days=2), overdue=Decimal("6000"),
                          oldest_due=DAY - timedelta(days=2)), DAY, RULES)
    assert answer.colour == RED
    assert [r.colour for r in answer.reasons] == [RED, AMBER]
    assert answer.actions == ["pay", "mpesa", "renew"]


# --- the same examples read from the database --------------------------------------------------

async def _member_on_plan(end_in_days: int = 30, status: str = "active", **member) -> int:
    from portal.lib.clock import today

    plan = await make_plan(f"Monthly {next(_plans)}")
    m = await make_member(**member)
    await make_membership(m, plan, today() - timedelta(days=5), today() + timedelta(days=end_in_days), status)
    return m


async def _overdue(member: int, amount: str, days: int) -> dict:
    from portal.lib.clock import today

    inv = await invoice_for(member, amount)
    await Invoice.update({Invoice.due_date: today() - timedelta(days=days)}).where(Invoice.id == inv["id"])
    return inv


@pytest.mark.parametrize("days, colour", [(13, AMBER), (14, AMBER), (15, RED)])
async def test_days_overdue_at_below_and_above_the_hold(db, settings, days, colour):
    assert settings.hold_grace_days == 14
    member = await _member_on_plan()
    inv = await _overdue(member, "1000", days)
    answer = await checkin.check(member, rules=RULES)
    assert answer.colour == colour
    if colour == RED:
        assert answer.text == f"On hold: invoice {inv['number']} is 15 days overdue (more than 14 days). Owes KES 1,000 overdue."
    else:
        assert answer.text == f"Owes KES 1,000 overdue ({days} days late; on hold after 14 days)."


@pytest.mark.parametrize("limit, colour", [("5001", AMBER), ("5000", AMBER), ("4999", RED)])
async def test_amount_overdue_against_the_limit_from_the_database(db, limit, colour):
    member = await _member_on_plan()
    await _overdue(member, "3000", 3)
    second = await _overdue(member, "2500", 2)
    await pay(member, 500, invoice_id=second["id"])  # part-paid: 2,000 still owed on it
    await invoice_for(member, "9000")  # not due yet: not overdue, whatever its size
    answer = await checkin.check(member, rules=Rules(red_owed_amount=Decimal(limit)))
    assert answer.colour == colour, answer.text
    assert "KES 5,000" in answer.text


async def test_expired_yesterday_and_expires_tomorrow_from_the_database(db):
    from portal.lib.clock import today

    plan = await make_plan()
    lapsed = await make_member("Lapsed", "Yesterday")
    # The nightly job has not run yet: the status still says active; the dates decide.
    await make_membership(lapsed, plan, today() - timedelta(days=31), today() - timedelta(days=1), "active")
    answer = await checkin.check(lapsed, rules=RULES)
    assert (answer.colour, answer.text) == (RED, f"The membership expired on {today() - timedelta(days=1):%d %b %Y} (yesterday).")

    ending = await _member_on_plan(end_in_days=1)
    answer = await checkin.check(ending, rules=RULES)
    assert (answer.colour, answer.actions) == (AMBER, ["renew"])
    assert answer.text.endswith("tomorrow is the last day.")

    # Renewed already: the paid next period continues it, so it is not ending.
    renewed = await _member_on_plan(end_in_days=1)
    await make_membership(renewed, plan, today() + timedelta(days=2), today() + timedelta(days=32), "pending")
    assert (await checkin.check(renewed, rules=RULES)).colour == GREEN


async def test_suspended_unpaid_and_future_memberships_from_the_database(db):
    from portal.lib.clock import today

    suspended = await _member_on_plan()
    await Member.update({Member.status: "suspended"}).where(Member.id == suspended)
    assert (await checkin.check(suspended, rules=RULES)).text == "Membership is suspended."
    plan = await make_plan("Later")
    waiting = await make_member("Waiting", "Topay")
    await make_membership(waiting, plan, today(), today() + timedelta(days=30), "unpaid")
    assert (await checkin.check(waiting, rules=RULES)).text == "The membership is not paid yet."
    later = await make_member("Starts", "Later")
    await make_membership(later, plan, today() + timedelta(days=3), today() + timedelta(days=33), "pending")
    assert (await checkin.check(later, rules=RULES)).colour == RED
    assert (await checkin.check(await make_member("No", "Plan"), rules=RULES)).text == "No membership."


async def test_found_by_member_number_in_any_case(db):
    member = await _member_on_plan(number="PTF0042")
    row, standing = await checkin.standing(number=" ptf0042 ")
    assert row["id"] == member and decide(standing, DAY, RULES).colour in (GREEN, AMBER)
    assert await checkin.standing(number="PTF0043") is None


async def test_the_override_needs_a_reason_is_audited_and_happens_once(db):
    from portal.auth import create_staff

    staff = await create_staff("desk", "desk-password-1", "front_desk")
    member = await make_member()
    answer = await checkin.check(member, rules=RULES)
    assert answer.colour == RED
    visit = await checkin.record_visit(member, answer, staff_id=staff, location_id=None)
    assert (await Visit.select(Visit.outcome).where(Visit.id == visit).first())["outcome"] == "refused"

    for reason in ("", "  ", "ok"):
        with pytest.raises(RuleBroken, match="Say why"):
            await checkin.override(visit, reason, staff)
    with pytest.raises(RuleBroken, match="under 500"):
        await checkin.override(visit, "x" * 501, staff)
    assert await AuditLog.count().where(AuditLog.action == "visit.override") == 0

    await checkin.override(visit, "  Paying  by M-Pesa after class ", staff)
    row = await Visit.select().where(Visit.id == visit).first()
    assert (row["outcome"], row["override_reason"], row["overridden_by"]) == ("override", "Paying by M-Pesa after class", staff)
    audit = await AuditLog.select().where(AuditLog.action == "visit.override").first()
    assert (audit["entity_id"], audit["staff"], audit["reason"]) == (str(visit), staff, "Paying by M-Pesa after class")
    assert json.loads(audit["details"])["refused_for"] == "No membership."

    with pytest.raises(RuleBroken, match="not refused"):
        await checkin.override(visit, "again, twice", staff)
    allowed = await checkin.record_visit(await _member_on_plan(), decide(ACTIVE, DAY, RULES), staff_id=staff,
                                         location_id=None)
    with pytest.raises(RuleBroken, match="not refused"):
        await checkin.override(allowed, "a green one", staff)


async def test_a_second_scan_within_a_minute_is_the_same_visit(db):
    from portal.lib.clock import now

    member = await _member_on_plan()
    green = decide(ACTIVE, DAY, RULES)
    first = await checkin.record_visit(member, green, staff_id=None, location_id=None)
    assert await checkin.record_visit(member, green, staff_id=None, location_id=None) == first
    # A different answer is a different visit; so is the same answer a minute later.
    refused = await checkin.record_visit(member, decide(Standing(), DAY, RULES), staff_id=None, location_id=None)
    assert refused != first
    await Visit.update({Visit.at: now() - timedelta(seconds=checkin.SAME_VISIT_SECONDS + 1)}).where(Visit.id == first)
    later = await checkin.record_visit(member, green, staff_id=None, location_id=None)
    assert later not in (first, refused)
    # Once let in by override, a new red scan is a new refusal to decide on.
    await checkin.override(refused, "paying after class", None)
    again = await checkin.record_visit(member, decide(Standing(), DAY, RULES), staff_id=None, location_id=None)
    assert again not in (first, refused, later)
    assert await Visit.count() == 4
