"""Changes to a membership once it exists: freeze (pause) it, renew it, switch it to another plan.

One rule for "until when is a member covered": the membership's `end_date`. A freeze moves it
later by the frozen days (ending the freeze early moves it back by the days not used); a switch
moves it earlier, to the day before the new plan starts. The nightly refresh
(memberships.refresh_membership_statuses), check-in, renewals and reminders all read that column.
"Frozen on a day" is one SQL statement too (portal/members/holds.frozen_sql): while frozen a
member gets no payment reminders, is never flagged "hold", and check-in answers red "Frozen until".

Freeze
    From and to dates (both frozen), a reason, and an optional fee (billed at once on an invoice of
    its own, one "Freeze fee" line). Between FREEZE_MIN_DAYS and FREEZE_MAX_DAYS long, starting at
    least FREEZE_NOTICE_DAYS after the day it is asked for, inside the membership (on or before
    its end date), and not over another freeze of it. A later membership already waiting (a paid
    renewal, an unpaid next plan) moves by the same days, so none overlaps. Ending a freeze early
    (with a reason) gives back the days not used: from the day it is ended to its last day; ended
    before it began, it is cancelled and every day comes back. A freeze fee is not given back.

Renew
    Raises the membership's renewal invoice now: the same invoice the nightly job raises
    RENEWAL_DAYS_BEFORE the end (portal/members/renewals.py), and paying it in full starts the next
    membership of the same plan the day after this one ends (memberships.on_invoice_paid). A
    membership has at most one live renewal invoice (a unique index), so pressing Renew twice
    gives the one invoice and, once paid, one membership.

Switch plan (upgrade or downgrade) on a day
    The new plan starts on the switch day; the old membership ends the day before. The days the
    member paid for and will not use come back as credit, prorated by day:

        term_days   = end_date - start_date + 1 - days frozen (the days the price paid for)
        unused_days = old end_date - switch day + 1         (the switch day is the new plan's)
        credit      = round_half_up(paid × unused_days / term_days, 2)

    One rounding, at the end, to the cent, half a cent up (ROUND_HALF_UP). `paid` is the total of
    the invoice that started the membership (VAT included), or its agreed price when it came from
    a renewal (which is that invoice's total). The credit's VAT is taken back in the same ratio as
    the invoice charged it: vat = round_half_up(credit × invoice VAT / invoice total, 2), the rest
    is revenue. The credit is a credit note (kind "prorate") and a ledger entry (revenue and VAT
    debited, member credit credited), then applied to the new plan's invoice first. A downgrade
    whose credit is more than the new invoice leaves the rest as member credit (the member page
    shows it; it pays the next invoice). The new membership waits `unpaid` for its invoice like
    any new one: fully paid by the credit it starts at once, else the day the rest is paid.

    A membership not yet paid (`unpaid`) used nothing: switching voids its invoice (what was paid
    on it becomes credit, as any void) and puts the member on the new plan from the same start.
    A membership frozen on or after the switch day must have its freeze ended first; one with a
    later membership waiting is refused (switch that one). A live renewal invoice of the old
    membership is voided (it would renew the old plan).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import asyncpg

from portal import audit
from portal.billing import ledger
from portal.billing.invoices import (
    Line,
    apply_credit,
    create_credit_note,
    issue_invoice,
    lock_member,
    plan_line,
    void_invoice,
)
from portal.billing.ledger import credit, debit
from portal.lib import db
from portal.lib.clock import now, today
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from portal.lib.money import CENT, Money
from portal.members.holds import announce_holds
from portal.members.memberships import membership_end, status_on
from portal.messages import outbox
from portal.settings import get_settings
from tables.billing import Invoice
from tables.freezes import MembershipFreeze
from tables.members import Membership, Plan

LIVE = ("active", "pending")  # paid memberships
REASON_MAX = 500


def round_half_up(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _days(n: int) -> str:
    return f"{n} day{'' if n == 1 else 's'}"


async def _membership(membership_id: int, lock: bool = True) -> dict:
    ms = await Membership.select(Membership.all_columns(), Membership.plan.name.as_alias("plan_name")).where(
        Membership.id == membership_id).first()
    if not ms:
        raise NotFound("membership")
    if lock:
        await lock_member(ms["member"])
        ms = await Membership.select(Membership.all_columns(), Membership.plan.name.as_alias("plan_name")).where(
            Membership.id == membership_id).first()
    return ms


def clean_reason(text: str, what: str = "freezing") -> str:
    reason = " ".join((text or "").split())
    if len(reason) < 3:
        raise RuleBroken(f"Say why you are {what} (a few words)", field="reason")
    if len(reason) > REASON_MAX:
        raise RuleBroken(f"Keep the reason under {REASON_MAX} characters", field="reason")
    return reason


# --- freeze ----------------------------------------------------------------------------------

async def _shift_later(ms: dict, days: int) -> list[int]:
    """Move the member's memberships that wait after this one by `days` (negative: earlier)."""
    rows = await Membership.raw(
        "UPDATE membership SET start_date = start_date + {}::int, end_date = end_date + {}::int "
        "WHERE member = {} AND id <> {} AND start_date > {}::date AND status IN ('pending', 'unpaid') RETURNING id",
        days, days, ms["member"], ms["id"], ms["end_date"])
    return [r["id"] for r in rows]


async def freeze(membership_id: int, start: date, end: date, reason: str, fee: Money | None,
                 staff_id: int | None, on: date | None = None) -> dict:
    """Freeze a paid membership from `start` to `end` (both frozen). Returns the freeze row.
    Refusals are RuleBroken naming the field to blame (start_date, end_date, reason, fee)."""
    day = on or today()
    s = get_settings()
    reason = clean_reason(reason)
    if end < start:
        raise RuleBroken(S_("The freeze must end on or after the day it starts"), field="end_date")
    days = (end - start).days + 1
    if days < s.freeze_min_days:
        raise RuleBroken(f"A freeze lasts at least {_days(s.freeze_min_days)}; this is {_days(days)}", field="end_date")
    if days > s.freeze_max_days:
        raise RuleBroken(f"A freeze lasts at most {_days(s.freeze_max_days)}; this is {_days(days)}", field="end_date")
    earliest = day + timedelta(days=s.freeze_notice_days)
    if start < earliest:
        notice = f" ({_days(s.freeze_notice_days)} notice)" if s.freeze_notice_days else ""
        raise RuleBroken(f"A freeze can start on {earliest:%d %b %Y} at the earliest{notice}", field="start_date")
    if fee is not None and fee.amount < 0:
        raise RuleBroken(S_("The fee cannot be negative"), field="fee")
    async with db.transaction():
        ms = await _membership(membership_id)
        if ms["status"] not in LIVE:
            raise RuleBroken(S_("Only a paid membership that has not ended can be frozen"), field="start_date")
        if start < ms["start_date"] or start > ms["end_date"]:
            raise RuleBroken(f"The freeze must start within the membership ({ms['start_date']:%d %b %Y} to "
                             f"{ms['end_date']:%d %b %Y})", field="start_date")
        overlap = await MembershipFreeze.exists().where(
            (MembershipFreeze.membership == membership_id) & (MembershipFreeze.status == "active")
            & (MembershipFreeze.start_date <= end) & (MembershipFreeze.end_date >= start))
        if overlap:
            raise RuleBroken(S_("This membership is already frozen on some of those days"), field="start_date")
        moved = await _shift_later(ms, days)
        new_end = ms["end_date"] + timedelta(days=days)
        await Membership.update({Membership.end_date: new_end}).where(Membership.id == membership_id)
        fee_invoice = None
        if fee is not None and fee.amount > 0:
            st = get_settings()
            line = Line(f"Freeze fee ({start:%d %b %Y} – {end:%d %b %Y})", fee, 1, st.vat_rate, st.prices_include_vat)
            fee_invoice = await issue_invoice(ms["member"], [line], kind="other", due_date=day, staff_id=staff_id)
        row = (await MembershipFreeze.insert(MembershipFreeze(
            membership=membership_id, member=ms["member"], start_date=start, end_date=end, days=days,
            reason=reason, fee=fee.amount if fee else Decimal("0"),
            fee_invoice=fee_invoice["id"] if fee_invoice else None, created_by=staff_id,
        )).returning(*MembershipFreeze.all_columns()))[0]
        await audit.record("membership.frozen", "membership", membership_id, staff_id=staff_id, reason=reason,
                           details={"freeze": row["id"], "from": str(start), "to": str(end), "days": days,
                                    "end_before": str(ms["end_date"]), "end_after": str(new_end),
                                    "fee": str(row["fee"]), "fee_invoice": fee_invoice["number"] if fee_invoice else None,
                                    "moved_later_memberships": moved})
        await announce_holds([ms["member"]])
    if fee_invoice:
        await outbox.nudge_invoice(fee_invoice["id"])
    return row


async def end_freeze(freeze_id: int, reason: str, staff_id: int | None, on: date | None = None) -> dict:
    """End a freeze early: the member trains again from `on` (today). The days from `on` to the
    freeze's last day come back off the membership's end date; a freeze that had not begun is
    cancelled whole. Returns {"freeze", "given_back", "end_date"}."""
    day = on or today()
    reason = clean_reason(reason, "ending the freeze")
    found = await MembershipFreeze.select().where(MembershipFreeze.id == freeze_id).first()
    if not found:
        raise NotFound("freeze")
    async with db.transaction():
        ms = await _membership(found["membership"])
        fz = await MembershipFreeze.select().where(MembershipFreeze.id == freeze_id).lock_rows().first()
        if fz["status"] != "active" or fz["end_date"] < day:
            raise RuleBroken(S_("This freeze is already over"), field="reason")
        if day <= fz["start_date"]:
            given_back, last, days, status = fz["days"], fz["end_date"], 0, "cancelled"
        else:
            given_back = (fz["end_date"] - day).days + 1
            last, days, status = day - timedelta(days=1), (day - fz["start_date"]).days, "active"
        new_end = ms["end_date"] - timedelta(days=given_back)
        await Membership.update({Membership.end_date: new_end}).where(Membership.id == ms["id"])
        moved = await _shift_later(ms, -given_back)
        await MembershipFreeze.update({
            MembershipFreeze.end_date: last, MembershipFreeze.days: days, MembershipFreeze.status: status,
            MembershipFreeze.ended_early_reason: reason, MembershipFreeze.ended_by: staff_id,
            MembershipFreeze.ended_at: now()}).where(MembershipFreeze.id == freeze_id)
        await audit.record("membership.unfrozen", "membership", ms["id"], staff_id=staff_id, reason=reason,
                           details={"freeze": freeze_id, "on": str(day), "days_given_back": given_back,
                                    "end_before": str(ms["end_date"]), "end_after": str(new_end),
                                    "moved_earlier_memberships": moved})
        await announce_holds([ms["member"]])
    return {"freeze": freeze_id, "given_back": given_back, "end_date": new_end}


async def freezes_of(membership_id: int) -> list[dict]:
    return await MembershipFreeze.select(
        MembershipFreeze.all_columns(), MembershipFreeze.fee_invoice.number.as_alias("fee_invoice_number"),
    ).where(MembershipFreeze.membership == membership_id).order_by(MembershipFreeze.start_date)


# --- renew -----------------------------------------------------------------------------------

async def renew(membership_id: int, staff_id: int | None) -> tuple[dict, bool]:
    """The membership's renewal invoice, raised now if it has none: (invoice, raised_now).
    Paying it starts the next membership of the same plan the day after this one ends."""
    existing = await _live_renewal(membership_id)
    if existing:
        return existing, False
    try:
        async with db.transaction():
            ms = await _membership(membership_id)
            existing = await _live_renewal(membership_id)
            if existing:
                return existing, False
            if ms["status"] not in (*LIVE, "expired"):
                raise RuleBroken(S_("Only a paid membership can be renewed"))
            later = await Membership.exists().where(
                (Membership.member == ms["member"]) & (Membership.start_date > ms["end_date"])
                & Membership.status.is_in(["active", "pending", "unpaid"]))
            if later:
                raise RuleBroken(S_("A later membership already follows this one"))
            plan = await Plan.select().where(Plan.id == ms["plan"]).first()
            if not plan["active"]:
                raise RuleBroken(f"{plan['name']} is retired: put the member on a current plan instead")
            start = ms["end_date"] + timedelta(days=1)
            end = membership_end(start, plan["duration_months"], plan["duration_days"])
            invoice = await issue_invoice(ms["member"], [plan_line(plan, f"{start:%d %b %Y} – {end:%d %b %Y}")],
                                          kind="renewal", plan_id=plan["id"], membership_id=ms["id"],
                                          period_start=start, due_date=max(ms["end_date"], today()),
                                          staff_id=staff_id)
            await audit.record("membership.renew_requested", "membership", ms["id"], staff_id=staff_id,
                               details={"invoice": invoice["number"], "start": str(start), "end": str(end)})
    except asyncpg.exceptions.UniqueViolationError:  # pressed twice at once: the other press raised it
        return await _live_renewal(membership_id), False
    await outbox.nudge_invoice(invoice["id"])
    return invoice, True


async def _live_renewal(membership_id: int) -> dict | None:
    return await Invoice.select().where((Invoice.membership == membership_id) & (Invoice.kind == "renewal")
                                        & (Invoice.status != "void")).first()


# --- switch plan ---------------------------------------------------------------------------------

def prorated_credit(paid: Decimal, unused_days: int, term_days: int) -> Decimal:
    """credit = round_half_up(paid × unused_days / term_days, 2): one rounding, at the end."""
    if term_days <= 0 or unused_days <= 0:
        return Decimal("0.00")
    return round_half_up(paid * unused_days / term_days)


async def switch_quote(membership_id: int, plan_id: int, on: date | None = None) -> dict:
    """What switching would do, without doing it: the figures the form shows and `switch` books."""
    day = on or today()
    ms = await _membership(membership_id, lock=False)
    plan = await Plan.select().where(Plan.id == plan_id).first()
    return await _quote(ms, plan, day)


async def _quote(ms: dict, plan: dict | None, day: date) -> dict:
    if not plan or not plan["active"]:
        raise RuleBroken(S_("Choose an active plan"), field="plan")
    if plan["id"] == ms["plan"]:
        raise RuleBroken(S_("That is the plan the member is on: renew it instead"), field="plan")
    if plan["price"] <= 0:
        raise RuleBroken(S_("This plan costs nothing, so there is nothing to bill: give it a price first"), field="plan")
    if ms["status"] == "unpaid":
        return {"kind": "unpaid", "start": max(ms["start_date"], day), "unused_days": 0, "term_days": 0,
                "paid": Decimal("0"), "credit": Decimal("0"), "vat": Decimal("0"), "plan": plan, "old_end": None}
    if ms["status"] not in LIVE or not (ms["start_date"] <= day <= ms["end_date"]):
        raise RuleBroken(S_("Only a membership running on the switch day can change plan"), field="plan")
    frozen = await MembershipFreeze.select(MembershipFreeze.start_date, MembershipFreeze.end_date,
                                           MembershipFreeze.days).where(
        (MembershipFreeze.membership == ms["id"]) & (MembershipFreeze.status == "active"))
    if any(f["end_date"] >= day for f in frozen):
        raise RuleBroken(S_("The membership is frozen on or after that day: end the freeze first"), field="plan")
    later = await Membership.exists().where(
        (Membership.member == ms["member"]) & (Membership.start_date > ms["end_date"])
        & Membership.status.is_in(["active", "pending", "unpaid"]))
    if later:
        raise RuleBroken(S_("A later membership already follows this one: change that one instead"), field="plan")
    invoice = await Invoice.select(Invoice.total, Invoice.tax_total).where(
        (Invoice.membership == ms["id"]) & (Invoice.kind == "new") & (Invoice.status == "paid")).first()
    paid = invoice["total"] if invoice else ms["price"]
    term_days = (ms["end_date"] - ms["start_date"]).days + 1 - sum(f["days"] for f in frozen)
    unused_days = (ms["end_date"] - day).days + 1
    amount = prorated_credit(paid, unused_days, term_days)
    if invoice and invoice["total"] > 0:
        vat = round_half_up(amount * invoice["tax_total"] / invoice["total"])
    else:
        rate = get_settings().vat_rate
        vat = amount - round_half_up(amount / (1 + rate / Decimal(100)))
    return {"kind": "prorate", "start": day, "unused_days": unused_days, "term_days": term_days, "paid": paid,
            "credit": amount, "vat": vat, "plan": plan, "old_end": day - timedelta(days=1)}


async def switch(membership_id: int, plan_id: int, staff_id: int | None, on: date | None = None) -> dict:
    """Move the member from this membership to `plan_id` from `on` (today): see the module's
    rule. Returns {"membership": new id, "invoice": the new invoice (after credit), "quote": ...,
    "credit_note": the credit note or None}."""
    day = on or today()
    async with db.transaction():
        ms = await _membership(membership_id)
        plan = await Plan.select().where(Plan.id == plan_id).first()
        quote = await _quote(ms, plan, day)
        cur = ms["currency"]
        note = None
        if quote["kind"] == "unpaid":
            old_invoice = await Invoice.select(Invoice.id).where(
                (Invoice.membership == ms["id"]) & (Invoice.kind == "new") & (Invoice.status != "void")).first()
            if old_invoice:
                await void_invoice(old_invoice["id"], f"Plan changed to {plan['name']}", staff_id)
            await Membership.update({Membership.status: "cancelled"}).where(Membership.id == ms["id"])
        else:
            for renewal in await Invoice.select(Invoice.id).where(
                    (Invoice.membership == ms["id"]) & (Invoice.kind == "renewal") & (Invoice.status != "void")):
                await void_invoice(renewal["id"], f"Plan changed to {plan['name']}: no renewal of {ms['plan_name']}",
                                   staff_id)
            old_end = quote["old_end"]
            old_status = "cancelled" if old_end < ms["start_date"] else status_on(ms["start_date"], old_end, today())
            await Membership.update({Membership.end_date: old_end, Membership.status: old_status}).where(
                Membership.id == ms["id"])
        start = quote["start"]
        end = membership_end(start, plan["duration_months"], plan["duration_days"])
        new = (await Membership.insert(Membership(
            member=ms["member"], plan=plan["id"], start_date=start, end_date=end, status="unpaid",
            price=plan["price"], currency=plan["currency"], created_by=staff_id,
        )).returning(Membership.id))[0]["id"]
        invoice = await issue_invoice(ms["member"], [plan_line(plan, f"{start:%d %b %Y} – {end:%d %b %Y}")],
                                      kind="new", plan_id=plan["id"], membership_id=new, period_start=start,
                                      due_date=max(start, today()), staff_id=staff_id)
        if quote["credit"] > 0:
            amount, vat = Money(quote["credit"], cur), Money(quote["vat"], cur)
            why = (f"{ms['plan_name']} to {plan['name']} on {day:%d %b %Y}: {_days(quote['unused_days'])} unused of "
                   f"{quote['term_days']} × {Money(quote['paid'], cur).format()}")
            await ledger.post("prorate_credit", [
                debit("revenue", amount - vat),
                debit("vat_payable", vat),
                credit("member_credit", amount, member=ms["member"]),
            ], memo=f"Unused days credited: {why}", staff_id=staff_id, invoice_id=invoice["id"])
            note = await create_credit_note("prorate", ms["member"], amount, why, staff_id, invoice_id=invoice["id"])
            await apply_credit(ms["member"], staff_id=staff_id, invoice_id=invoice["id"])
        await audit.record("membership.switched", "membership", ms["id"], staff_id=staff_id,
                           details={"from_plan": ms["plan_name"], "to_plan": plan["name"], "on": str(day),
                                    "new_membership": new, "invoice": invoice["number"],
                                    "unused_days": quote["unused_days"], "term_days": quote["term_days"],
                                    "credit": str(quote["credit"]), "credit_note": note["number"] if note else None})
        await announce_holds([ms["member"]])
        invoice = await Invoice.select().where(Invoice.id == invoice["id"]).first()
    await outbox.nudge_invoice(invoice["id"])
    return {"membership": new, "invoice": invoice, "quote": quote, "credit_note": note}
