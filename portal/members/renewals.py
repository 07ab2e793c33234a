"""Renewal invoices: raised a configurable number of days before a membership ends.

Safe to run any number of times, concurrently too: a membership gets one live renewal invoice
(a unique partial index enforces it), and the query skips those that have one.
"""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg

from portal.billing.invoices import issue_invoice, lock_member, plan_line
from portal.lib import db
from portal.lib.clock import today
from portal.members.memberships import membership_end
from portal.messages import outbox
from portal.settings import get_settings
from tables.members import Membership, Plan

DUE_SQL = """
SELECT ms.id, ms.member, ms.plan, ms.end_date
FROM membership ms
JOIN member m ON m.id = ms.member AND m.status = 'active'
JOIN plan p ON p.id = ms.plan AND p.active
WHERE ms.status IN ('active', 'pending') AND ms.end_date BETWEEN {} AND {}
  AND NOT EXISTS (SELECT 1 FROM invoice i WHERE i.membership = ms.id AND i.kind = 'renewal' AND i.status <> 'void')
  AND NOT EXISTS (SELECT 1 FROM membership later WHERE later.member = ms.member AND later.start_date > ms.end_date
                  AND later.status IN ('active', 'pending', 'unpaid'))
ORDER BY ms.end_date, ms.id
"""


async def raise_renewal_invoices(as_of: date | None = None) -> int:
    day = as_of or today()
    horizon = day + timedelta(days=get_settings().renewal_days_before)
    due = await Membership.raw(DUE_SQL, day, horizon)
    raised = 0
    for ms in due:
        try:
            async with db.transaction():
                await lock_member(ms["member"])
                plan = await Plan.select().where(Plan.id == ms["plan"]).first()
                start = ms["end_date"] + timedelta(days=1)
                end = membership_end(start, plan["duration_months"], plan["duration_days"])
                invoice = await issue_invoice(ms["member"], [plan_line(plan, f"{start:%d %b %Y} – {end:%d %b %Y}")],
                                              kind="renewal", plan_id=plan["id"], membership_id=ms["id"],
                                              period_start=start, due_date=ms["end_date"])
                raised += 1
        except asyncpg.exceptions.UniqueViolationError:
            continue  # another run raised it first
        await outbox.nudge_invoice(invoice["id"])
    return raised
