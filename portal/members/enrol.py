"""Put a member on a plan: a membership waiting `unpaid` and the invoice raised with it."""

from __future__ import annotations

from datetime import date

from portal import audit
from portal.billing.invoices import issue_invoice, lock_member, plan_line
from portal.lib import db
from portal.lib.clock import today
from portal.lib.errors import RuleBroken
from portal.lib.i18n import S_
from portal.members.memberships import membership_end
from portal.messages import outbox
from tables.members import Membership, Plan


async def put_on_plan(member_id: int, plan_id: int, start: date, staff_id: int | None) -> Membership:
    """Start a membership: it waits, `unpaid`, for the invoice raised with it; paying that invoice
    in full activates it (portal.members.memberships.on_invoice_paid). A start inside a current membership
    is refused: renew instead."""
    async with db.transaction():
        await lock_member(member_id)
        plan = await Plan.select().where(Plan.id == plan_id).first()
        if not plan or not plan["active"]:
            raise RuleBroken(S_("Choose an active plan"))
        if plan["price"] <= 0:  # a plan saved free before plans had to cost something
            raise RuleBroken(S_("This plan costs nothing, so there is nothing to bill: give it a price first"))
        overlap = await Membership.exists().where(
            (Membership.member == member_id)
            & Membership.status.is_in(["active", "pending", "unpaid"])
            & (Membership.end_date >= start)
        )
        if overlap:
            raise RuleBroken(S_("This member already has a membership covering that date: renew it instead"))
        end = membership_end(start, plan["duration_months"], plan["duration_days"])
        membership = Membership(
            member=member_id, plan=plan_id, start_date=start, end_date=end, status="unpaid",
            price=plan["price"], currency=plan["currency"], created_by=staff_id,
        )
        await membership.save()
        await audit.record("membership.created", "membership", membership.id, staff_id=staff_id,
                           details={"member": member_id, "plan": plan["name"], "start": start.isoformat(),
                                    "end": end.isoformat(), "price": str(plan["price"])})
        period = f"{start:%d %b %Y} – {end:%d %b %Y}"
        invoice = await issue_invoice(member_id, [plan_line(plan, period)], kind="new", plan_id=plan_id,
                                      membership_id=membership.id, period_start=start, due_date=max(start, today()),
                                      staff_id=staff_id)
    await outbox.nudge_invoice(invoice["id"])
    return membership
