"""Memberships: their dates, their status on a day, the nightly refresh, and what paying a
membership invoice in full does (a new membership starts, a renewal extends)."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

from portal import audit, webhooks
from portal.lib import db
from portal.lib.clock import today
from tables.members import Membership, Plan


def add_months(start: date, months: int) -> date:
    """Same day `months` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def membership_end(start: date, duration_months: int, duration_days: int) -> date:
    """The last day covered: a monthly plan from 1 March covers up to 31 March."""
    return add_months(start, duration_months) + timedelta(days=duration_days) - timedelta(days=1)


MEMBER_MEMBERSHIPS_SQL = """
SELECT ms.*, p.name AS plan_name,
       fz.id AS freeze_id, fz.start_date AS frozen_from, fz.end_date AS frozen_until,
       r.id AS renewal_invoice, r.number AS renewal_number, r.status AS renewal_status,
       EXISTS (SELECT 1 FROM membership nxt WHERE nxt.member = ms.member AND nxt.start_date > ms.end_date
               AND nxt.status IN ('active', 'pending', 'unpaid')) AS has_next
FROM membership ms JOIN plan p ON p.id = ms.plan
LEFT JOIN LATERAL (
    SELECT f.id, f.start_date, f.end_date FROM membership_freeze f
    WHERE f.membership = ms.id AND f.status = 'active' AND f.end_date >= {}::date ORDER BY f.start_date LIMIT 1
) fz ON true
LEFT JOIN LATERAL (
    SELECT i.id, i.number, i.status FROM invoice i
    WHERE i.membership = ms.id AND i.kind = 'renewal' AND i.status <> 'void' ORDER BY i.id DESC LIMIT 1
) r ON true
WHERE ms.member = {}
ORDER BY ms.start_date DESC, ms.id DESC
"""


async def member_memberships(member_id: int, on: date | None = None) -> list[dict]:
    """The member's memberships, newest first, each with the freeze now running or next to come
    (freeze_id, frozen_from, frozen_until), its live renewal invoice, and whether a later
    membership follows (has_next). One query."""
    return await Membership.raw(MEMBER_MEMBERSHIPS_SQL, on or today(), member_id)


def status_on(start: date, end: date, day: date) -> str:
    if day < start:
        return Membership.Status.pending.value
    if day > end:
        return Membership.Status.expired.value
    return Membership.Status.active.value


async def refresh_membership_statuses(as_of: date | None = None) -> dict[str, int]:
    """The nightly job: expire what has ended, start what begins today. Idempotent."""
    day = as_of or today()
    columns = (Membership.id, Membership.member, Membership.plan, Membership.status, Membership.start_date,
               Membership.end_date)
    async with db.transaction():
        expired = await Membership.update({Membership.status: "expired"}).where(
            Membership.status.is_in(["active", "pending"]) & (Membership.end_date < day)
        ).returning(*columns)
        started = await Membership.update({Membership.status: "active"}).where(
            (Membership.status == "pending") & (Membership.start_date <= day) & (Membership.end_date >= day)
        ).returning(*columns)
        for kind, rows in (("membership.expired", expired), ("membership.activated", started)):
            for row in sorted(rows, key=lambda r: r["id"]):
                await webhooks.emit(kind, "membership", row["id"], webhooks.membership_data(row))
        if expired or started:
            await audit.record("membership.nightly", "membership", "*", reason=f"status refresh for {day}",
                               details={"expired": [r["id"] for r in expired], "started": [r["id"] for r in started]})
    return {"expired": len(expired), "started": len(started)}


async def on_invoice_paid(invoice: dict, paid_on: date, staff_id: int | None) -> None:
    """Paying a membership invoice in full starts or extends the membership.

    New: the membership waiting on this invoice starts on its planned day, or today if that has
    passed. Renewal: continues from the old end date when it has not lapsed, from the payment day
    when it has."""
    if invoice["kind"] == "new" and invoice["membership"]:
        ms = await Membership.select().where(Membership.id == invoice["membership"]).first()
        if ms and ms["status"] == "unpaid":
            plan = await Plan.select().where(Plan.id == ms["plan"]).first()
            start = max(ms["start_date"], paid_on)
            end = membership_end(start, plan["duration_months"], plan["duration_days"])
            status = status_on(start, end, paid_on)
            await Membership.update({Membership.start_date: start, Membership.end_date: end,
                                     Membership.status: status}).where(Membership.id == ms["id"])
            if status == "active":  # one that starts later is announced by the nightly refresh
                await webhooks.emit("membership.activated", "membership", ms["id"], webhooks.membership_data(
                    {**ms, "start_date": start, "end_date": end, "status": status}))
            await audit.record("membership.activated", "membership", ms["id"], staff_id=staff_id,
                               details={"invoice": invoice["number"], "start": str(start), "end": str(end)})
    elif invoice["kind"] == "renewal" and invoice["membership"]:
        old = await Membership.select().where(Membership.id == invoice["membership"]).first()
        plan = await Plan.select().where(Plan.id == (invoice["plan"] or old["plan"])).first()
        start = old["end_date"] + timedelta(days=1) if old["end_date"] >= paid_on else paid_on
        end = membership_end(start, plan["duration_months"], plan["duration_days"])
        status = status_on(start, end, paid_on)
        new_id = (await Membership.insert(Membership(
            member=invoice["member"], plan=plan["id"], start_date=start, end_date=end,
            status=status, price=invoice["total"], currency=invoice["currency"],
            created_by=staff_id,
        )).returning(Membership.id))[0]["id"]
        if status == "active":
            await webhooks.emit("membership.activated", "membership", new_id, webhooks.membership_data(
                {"id": new_id, "member": invoice["member"], "plan": plan["id"], "status": status,
                 "start_date": start, "end_date": end}))
        await audit.record("membership.renewed", "membership", new_id, staff_id=staff_id,
                           details={"invoice": invoice["number"], "from": old["id"], "start": str(start), "end": str(end)})


ENDED_PERIODS_SQL = """
SELECT i.number, p.name AS plan, m.start_date, m.end_date
FROM invoice i JOIN membership m ON m.id = i.membership JOIN plan p ON p.id = m.plan
WHERE i.id = ANY({}) AND i.kind = 'new' AND m.end_date < {} ORDER BY m.end_date
"""


async def after_paying(member_id: int, invoice_ids: list[int], day: date) -> dict:
    """What a payment did for the member's membership, in words for them and the desk, when it
    needs saying: an invoice paid late for a period that is already over clears the debt (and the
    hold) but brings no membership back. Says what the member has now. Facts for the payment's
    settlement: membership_note ("" when nothing to say) and membership_lapsed (nothing current)."""
    ended = await Membership.raw(ENDED_PERIODS_SQL, invoice_ids, day) if invoice_ids else []
    if not ended:
        return {"membership_note": "", "membership_lapsed": False}
    periods = "; ".join(f"{r['number']} was for {r['plan']}, {r['start_date']:%d %b} to {r['end_date']:%d %b %Y}"
                        for r in ended)
    now_has = await Membership.select(Membership.plan.name.as_alias("plan"), Membership.start_date,
                                      Membership.end_date).where(
        (Membership.member == member_id) & Membership.status.is_in(["active", "pending"])
        & (Membership.end_date >= day)).order_by(Membership.start_date).first()
    if now_has:
        has = f"The current membership is {now_has['plan']} until {now_has['end_date']:%d %b %Y}."
    else:
        has = "There is no current membership: renew to keep training."
    return {"membership_note": f"This payment settled a period that has ended ({periods}). {has}",
            "membership_lapsed": now_has is None}

