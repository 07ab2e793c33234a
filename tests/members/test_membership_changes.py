"""Freezes, renewals, upgrades and downgrades of memberships (portal/members/changes.py), as worked
examples: every figure is computed by hand in the docstring, and the books agree after each.

T is today (the business day); dates are written relative to it."""

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from portal.lib.clock import today
from portal.lib.errors import RuleBroken
from portal.lib.money import Money
from portal.members import changes, checkin
from portal.members.enrol import put_on_plan
from portal.members.members import member_with_hold
from portal.messages import reminders
from portal.settings import get_settings
from tables.audit import AuditLog
from tables.billing import CreditNote, Invoice, InvoiceLine
from tables.freezes import MembershipFreeze
from tables.members import Membership
from tables.messages import Message
from tests.billing.helpers import assert_books_agree, balances, desk_staff, invoice_for, pay
from tests.factories import make_member, make_membership, make_plan


async def _due_on(member: int, amount, due) -> dict:
    inv = await invoice_for(member, amount)
    await Invoice.update({Invoice.due_date: due}).where(Invoice.id == inv["id"])
    return inv


async def test_a_20_day_freeze_moves_the_end_date_and_silences_reminders_and_the_hold(db):
    """Wanjiku and Otieno are both on Monthly, T-5 to T+24, and both owe: an invoice of 2,000 due
    today (T) and one of 1,500 due T-20 (more than HOLD_GRACE_DAYS = 14 overdue: a hold).

    Wanjiku freezes from T to T+19: 19 - 0 + 1 = 20 days, fee 500.
      end date T+24 + 20 days = T+44; a "Freeze fee" invoice of 500.00 (VAT inclusive at 16%:
      net 431.03, VAT 68.97).
    Today's reminder run: Otieno gets the "due" reminder for the 2,000; Wanjiku nothing.
    Hold: Otieno is on hold (1,500 is 20 days overdue), Wanjiku is not while frozen.
    Check-in: Wanjiku red, "Frozen until <T+19>".
    After the freeze (the first reminder step more than 19 days after T), Wanjiku is reminded again.
    """
    t = today()
    plan = await make_plan("Monthly", "3000", 1)
    staff = await desk_staff()
    wanjiku = await make_member("Wanjiku", "Kamau", phone="254711000001")
    otieno = await make_member("Otieno", "Odhiambo", phone="254711000002")
    ms_w = await make_membership(wanjiku, plan, t - timedelta(days=5), t + timedelta(days=24), "active")
    ms_o = await make_membership(otieno, plan, t - timedelta(days=5), t + timedelta(days=24), "active")
    for member in (wanjiku, otieno):
        await _due_on(member, 2000, t)
        await _due_on(member, 1500, t - timedelta(days=20))
    assert (await member_with_hold(wanjiku))["hold_invoice"] is not None  # before the freeze: held too

    row = await changes.freeze(ms_w, t, t + timedelta(days=19), "Travelling to Mombasa", Money(Decimal("500")), staff)
    assert row["days"] == 20
    ms = await Membership.select().where(Membership.id == ms_w).first()
    assert ms["end_date"] == t + timedelta(days=44)
    assert (await Membership.select().where(Membership.id == ms_o).first())["end_date"] == t + timedelta(days=24)
    fee = await Invoice.select().where(Invoice.id == row["fee_invoice"]).first()
    line = await InvoiceLine.select().where(InvoiceLine.invoice == fee["id"]).first()
    assert line["description"].startswith("Freeze fee")
    assert (fee["total"], fee["subtotal"], fee["tax_total"]) == (Decimal("500.00"), Decimal("431.03"), Decimal("68.97"))
    audit = await AuditLog.select().where(AuditLog.action == "membership.frozen").first()
    assert audit["staff"] == staff and audit["reason"] == "Travelling to Mombasa"

    result = await reminders.send_reminders(on=t)
    sent = await Message.select(Message.member).where(Message.kind.like("reminder_%"))
    assert result.created >= 1
    assert {m["member"] for m in sent} == {otieno}  # something for Otieno, nothing for frozen Wanjiku
    with pytest.raises(RuleBroken, match="frozen"):  # nor by hand from the dues page
        await reminders.remind_now(fee["id"], staff)

    assert (await member_with_hold(otieno))["hold_invoice"] is not None
    assert (await member_with_hold(wanjiku))["hold_invoice"] is None

    answer = await checkin.check(wanjiku)
    assert answer.colour == checkin.RED
    assert f"Frozen until {t + timedelta(days=19):%d %b %Y}." in answer.text
    assert (await checkin.check(otieno)).colour == checkin.RED  # on hold, not frozen
    assert "Frozen" not in (await checkin.check(otieno)).text

    # After the freeze: Wanjiku's 2,000 (due T) is reminded at its next step.
    later = sorted(s.offset for s in reminders.schedule() if s.offset > 19)
    if later:
        day = t + timedelta(days=later[0])
        await reminders.send_reminders(on=day)
        assert await Message.count().where((Message.member == wanjiku) & Message.kind.like("reminder_%")) >= 1
    await assert_books_agree()


async def test_a_freeze_outside_the_gyms_limits_is_refused_with_a_clear_message(db):
    """FREEZE_MIN_DAYS = 7, FREEZE_MAX_DAYS = 90 (the defaults).
    T to T+5 is 5 - 0 + 1 = 6 days: refused, "at least 7 days; this is 6 days".
    T to T+90 is 91 days: refused, "at most 90 days; this is 91 days".
    T to T+6 is exactly 7: accepted. Nothing refused changed the end date."""
    t = today()
    plan = await make_plan("Monthly", "3000", 1)
    member = await make_member()
    ms = await make_membership(member, plan, t - timedelta(days=1), t + timedelta(days=28), "active")
    with pytest.raises(RuleBroken, match="at least 7 days; this is 6 days") as short:
        await changes.freeze(ms, t, t + timedelta(days=5), "Injury", None, None)
    assert short.value.field == "end_date"
    with pytest.raises(RuleBroken, match="at most 90 days; this is 91 days"):
        await changes.freeze(ms, t, t + timedelta(days=90), "Injury", None, None)
    with pytest.raises(RuleBroken, match="Say why"):
        await changes.freeze(ms, t, t + timedelta(days=10), " ", None, None)
    assert (await Membership.select().where(Membership.id == ms).first())["end_date"] == t + timedelta(days=28)
    assert await MembershipFreeze.count() == 0
    await changes.freeze(ms, t, t + timedelta(days=6), "Injury", None, None)
    assert (await Membership.select().where(Membership.id == ms).first())["end_date"] == t + timedelta(days=35)
    with pytest.raises(RuleBroken, match="already frozen"):
        await changes.freeze(ms, t + timedelta(days=3), t + timedelta(days=12), "Again", None, None)


async def test_notice_days_are_enforced(db):
    """FREEZE_NOTICE_DAYS = 3: asked today, a freeze starts on T+3 at the earliest."""
    from tests.support.env import setting

    t = today()
    plan = await make_plan("Monthly", "3000", 1)
    member = await make_member()
    ms = await make_membership(member, plan, t - timedelta(days=1), t + timedelta(days=28), "active")
    with setting("FREEZE_NOTICE_DAYS", "3"):
        with pytest.raises(RuleBroken, match=f"{t + timedelta(days=3):%d %b %Y} at the earliest") as e:
            await changes.freeze(ms, t + timedelta(days=2), t + timedelta(days=12), "Travel", None, None)
        assert e.value.field == "start_date"
        await changes.freeze(ms, t + timedelta(days=3), t + timedelta(days=12), "Travel", None, None)


async def test_ending_a_freeze_early_gives_back_the_unused_days(db):
    """Monthly T-10 to T+19. Frozen (asked on T-5) from T-5 to T+14: 20 days, end T+39.
    Ended today (T): frozen T-5..T-1 = 5 days used; T..T+14 = 15 days given back:
    end T+39 - 15 = T+24 (= T+19 + the 5 days used). The freeze now reads T-5 to T-1, 5 days.
    A coming freeze (T+30 to T+39, 10 days) cancelled before it starts gives all 10 back."""
    t = today()
    plan = await make_plan("Monthly", "3000", 1)
    member = await make_member()
    ms = await make_membership(member, plan, t - timedelta(days=10), t + timedelta(days=19), "active")
    fz = await changes.freeze(ms, t - timedelta(days=5), t + timedelta(days=14), "Injury", None, None,
                              on=t - timedelta(days=5))
    assert (await Membership.select().where(Membership.id == ms).first())["end_date"] == t + timedelta(days=39)
    done = await changes.end_freeze(fz["id"], "Back early, knee healed", None)
    assert done["given_back"] == 15 and done["end_date"] == t + timedelta(days=24)
    row = await MembershipFreeze.select().where(MembershipFreeze.id == fz["id"]).first()
    assert (row["start_date"], row["end_date"], row["days"], row["status"]) == (
        t - timedelta(days=5), t - timedelta(days=1), 5, "active")
    assert (await checkin.check(member)).colour != checkin.RED or "Frozen" not in (await checkin.check(member)).text

    coming = await changes.freeze(ms, t + timedelta(days=10), t + timedelta(days=19), "Travel", None, None)
    assert (await Membership.select().where(Membership.id == ms).first())["end_date"] == t + timedelta(days=34)
    done = await changes.end_freeze(coming["id"], "Trip cancelled", None)
    assert done["given_back"] == 10 and done["end_date"] == t + timedelta(days=24)
    assert (await MembershipFreeze.select().where(MembershipFreeze.id == coming["id"]).first())["status"] == "cancelled"
    with pytest.raises(RuleBroken, match="already over"):
        await changes.end_freeze(coming["id"], "Again", None)
    actions = await AuditLog.select(AuditLog.action, AuditLog.reason).where(AuditLog.action == "membership.unfrozen")
    assert [a["reason"] for a in actions] == ["Back early, knee healed", "Trip cancelled"]


async def _paid_monthly(member: int, monthly: int, start, end) -> int:
    """Put on Monthly through the desk and pay its 3,000 in cash; then the dates the example needs."""
    ms = await put_on_plan(member, monthly, today(), None)
    await pay(member, 3000)
    await Membership.update({Membership.start_date: start, Membership.end_date: end}).where(Membership.id == ms.id)
    return ms.id


async def test_upgrade_monthly_3000_to_quarterly_8000_on_day_12_of_30(db):
    """Monthly, 3,000 paid (VAT 16% inclusive: net 2,586.21, VAT 413.79), T-11 to T+18: 30 days.
    Upgraded to Quarterly (8,000) today, day 12 of 30. The switch day is the new plan's first:
      old membership ends T-1 (days 1..11 used)
      unused_days = T+18 - T + 1 = 19; term_days = 30
      credit = round_half_up(3,000 × 19 / 30, 2) = 1,900.00
        of which VAT = round_half_up(1,900 × 413.79 / 3,000, 2) = round(262.067) = 262.07,
        revenue 1,637.93
      new invoice: Quarterly 8,000.00; credit applied 1,900.00; balance 8,000 - 1,900 = 6,100.00
    Paying the 6,100.00 starts Quarterly today. Member credit afterwards: 0."""
    t = today()
    monthly = await make_plan("Monthly", "3000", 1)
    quarterly = await make_plan("Quarterly", "8000", 3)
    member = await make_member()
    ms = await _paid_monthly(member, monthly, t - timedelta(days=11), t + timedelta(days=18))

    quote = await changes.switch_quote(ms, quarterly)
    assert (quote["unused_days"], quote["term_days"], quote["credit"], quote["vat"]) == (
        19, 30, Decimal("1900.00"), Decimal("262.07"))
    done = await changes.switch(ms, quarterly, await desk_staff())
    inv = done["invoice"]
    assert (inv["total"], inv["paid"], inv["total"] - inv["paid"], inv["status"]) == (
        Decimal("8000.00"), Decimal("1900.00"), Decimal("6100.00"), "partially_paid")
    old = await Membership.select().where(Membership.id == ms).first()
    assert (old["end_date"], old["status"]) == (t - timedelta(days=1), "expired")
    note = await CreditNote.select().where(CreditNote.kind == "prorate").first()
    assert (note["amount"], note["invoice"]) == (Decimal("1900.00"), inv["id"])
    assert await balances(member) == (Decimal("6100.00"), Decimal("0.00"))
    await assert_books_agree()

    await pay(member, "6100")
    new = await Membership.select().where(Membership.id == done["membership"]).first()
    assert (new["plan"], new["start_date"], new["status"]) == (quarterly, t, "active")
    assert await balances(member) == (Decimal("0.00"), Decimal("0.00"))
    await assert_books_agree()


async def test_downgrade_quarterly_8000_to_monthly_3000_leaves_credit(db):
    """Quarterly, 8,000 paid (VAT inclusive: net 6,896.55, VAT 1,103.45), T-40 to T+49: 90 days.
    Downgraded to Monthly (3,000) today:
      unused_days = T+49 - T + 1 = 50; term_days = 90
      credit = round_half_up(8,000 × 50 / 90, 2) = round(4,444.444…) = 4,444.44
        of which VAT = round_half_up(4,444.44 × 1,103.45 / 8,000, 2) = round(613.026…) = 613.03
      Monthly invoice 3,000.00 paid in full by the credit: Monthly starts today;
      credit left on the account: 4,444.44 - 3,000.00 = 1,444.44."""
    t = today()
    monthly = await make_plan("Monthly", "3000", 1)
    quarterly = await make_plan("Quarterly", "8000", 3)
    member = await make_member()
    ms = await put_on_plan(member, quarterly, t, None)
    await pay(member, 8000)
    await Membership.update({Membership.start_date: t - timedelta(days=40),
                             Membership.end_date: t + timedelta(days=49)}).where(Membership.id == ms.id)
    done = await changes.switch(ms.id, monthly, None)
    assert (done["quote"]["unused_days"], done["quote"]["term_days"]) == (50, 90)
    assert (done["quote"]["credit"], done["quote"]["vat"]) == (Decimal("4444.44"), Decimal("613.03"))
    inv = done["invoice"]
    assert (inv["total"], inv["paid"], inv["status"]) == (Decimal("3000.00"), Decimal("3000.00"), "paid")
    new = await Membership.select().where(Membership.id == done["membership"]).first()
    assert (new["status"], new["start_date"]) == ("active", t)
    assert await balances(member) == (Decimal("0.00"), Decimal("1444.44"))
    await assert_books_agree()


async def test_switching_an_unpaid_membership_voids_its_invoice(db):
    """Put on Monthly (3,000, unpaid), 1,000 paid on it; then switched to Quarterly (8,000):
    nothing was used, so the Monthly invoice is voided (its 1,000 becomes credit) and Quarterly's
    8,000 invoice takes that credit: balance 7,000.00."""
    t = today()
    monthly = await make_plan("Monthly", "3000", 1)
    quarterly = await make_plan("Quarterly", "8000", 3)
    member = await make_member()
    ms = await put_on_plan(member, monthly, t, None)
    await pay(member, 1000)
    done = await changes.switch(ms.id, quarterly, None)
    assert done["quote"]["kind"] == "unpaid" and done["credit_note"] is None
    assert (done["invoice"]["total"], done["invoice"]["paid"]) == (Decimal("8000.00"), Decimal("1000.00"))
    assert (await Membership.select().where(Membership.id == ms.id).first())["status"] == "cancelled"
    assert await balances(member) == (Decimal("7000.00"), Decimal("0.00"))
    await assert_books_agree()


def test_the_remainder_rule_is_half_a_cent_up_once_at_the_end():
    """1,000.10 × 1 / 4 = 250.025 → 250.03 (half up; banker's rounding would give 250.02).
    3,000 × 19 / 31 = 1,838.709… → 1,838.71. Nothing unused: 0.00."""
    assert changes.prorated_credit(Decimal("1000.10"), 1, 4) == Decimal("250.03")
    assert changes.prorated_credit(Decimal("3000"), 19, 31) == Decimal("1838.71")
    assert changes.prorated_credit(Decimal("3000"), 0, 31) == Decimal("0.00")


async def test_a_switch_is_refused_while_frozen_and_to_the_same_plan(db):
    t = today()
    monthly = await make_plan("Monthly", "3000", 1)
    quarterly = await make_plan("Quarterly", "8000", 3)
    member = await make_member()
    ms = await make_membership(member, monthly, t - timedelta(days=3), t + timedelta(days=26), "active")
    with pytest.raises(RuleBroken, match="renew it instead"):
        await changes.switch_quote(ms, monthly)
    await changes.freeze(ms, t + timedelta(days=5), t + timedelta(days=14), "Travel", None, None)
    with pytest.raises(RuleBroken, match="end the freeze first"):
        await changes.switch(ms, quarterly, None)


async def test_renew_pressed_twice_makes_one_membership(db):
    """Monthly T-26 to T+3. Renew pressed twice in a row and twice at once: one renewal invoice of
    3,000 (due T+3). Paid: one new Monthly from T+4 (the day after the old end)."""
    t = today()
    plan = await make_plan("Monthly", "3000", 1)
    member = await make_member()
    ms = await make_membership(member, plan, t - timedelta(days=26), t + timedelta(days=3), "active")
    first, raised = await changes.renew(ms, None)
    again, raised_again = await changes.renew(ms, None)
    both = await asyncio.gather(changes.renew(ms, None), changes.renew(ms, None))
    assert raised and not raised_again and first["id"] == again["id"] == both[0][0]["id"] == both[1][0]["id"]
    assert await Invoice.count().where((Invoice.membership == ms) & (Invoice.kind == "renewal")) == 1
    assert (first["total"], first["due_date"]) == (Decimal("3000.00"), t + timedelta(days=3))
    await pay(member, 3000)
    await changes.renew(ms, None)
    later = await Membership.select().where((Membership.member == member) & (Membership.id != ms))
    assert len(later) == 1 and later[0]["start_date"] == t + timedelta(days=4)
    # One whose next membership already waits (put on a plan from the day after) is not renewed.
    other = await make_member("Otieno", "Odhiambo")
    ms2 = await make_membership(other, plan, t - timedelta(days=26), t + timedelta(days=3), "active")
    await make_membership(other, plan, t + timedelta(days=4), t + timedelta(days=33), "pending")
    with pytest.raises(RuleBroken, match="already follows"):
        await changes.renew(ms2, None)
    await assert_books_agree()


async def test_a_paid_renewal_waiting_moves_with_a_freeze(db):
    """Monthly T-10 to T+19 with its renewal paid (next Monthly T+20 to ...). Freezing T to T+9
    (10 days) moves the old end to T+29 and the waiting one to start T+30, so they never overlap."""
    t = today()
    plan = await make_plan("Monthly", "3000", 1)
    member = await make_member()
    ms = await make_membership(member, plan, t - timedelta(days=10), t + timedelta(days=19), "active")
    await changes.renew(ms, None)
    await pay(member, 3000)
    nxt = await Membership.select().where((Membership.member == member) & (Membership.id != ms)).first()
    assert nxt["start_date"] == t + timedelta(days=20) and nxt["status"] == "pending"
    await changes.freeze(ms, t, t + timedelta(days=9), "Travel", None, None)
    moved = await Membership.select().where(Membership.id == nxt["id"]).first()
    assert (moved["start_date"], moved["end_date"]) == (nxt["start_date"] + timedelta(days=10),
                                                        nxt["end_date"] + timedelta(days=10))
    assert (await Membership.select().where(Membership.id == ms).first())["end_date"] == t + timedelta(days=29)
    assert get_settings().freeze_min_days <= 10
