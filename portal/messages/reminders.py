"""Payment reminders for members who pay by push (M-Pesa, cash): on a daily schedule, each saying
what is still owed and carrying the invoice's pay link, stopping the moment it is paid.

The schedule, in days from the due date (settings): before it (7, 3, 1), on it, overdue (1, 7,
14), and a final notice (21). Each day's run finds the open invoices at one of those steps in one
query and writes one message per invoice, step and channel; the message's dedupe key
`reminder:invoice:<id>:<step>:<channel>` makes a second run, or two at once, write nothing more.
The message is built when the worker sends it (portal/messages/content.py), so an invoice paid in
between is skipped and the amount is what is owed then.

Nobody gets reminders who opted out, whose reminders staff paused (member or invoice, with a
reason), whose membership is frozen that day (portal/members/holds.frozen_sql), or whose invoice
is paid, void or settled by credit. A day the job did not run is not
made up the next day: each step is tied to its own day, so a member never gets a stale "due in
3 days" on the day it is due.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta

from portal import audit
from portal.lib import db
from portal.lib.clock import today
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from portal.members.holds import frozen_sql
from portal.messages import outbox
from portal.settings import Settings, get_settings
from tables.billing import Invoice
from tables.members import Member
from tables.messages import Message
from tables.statuses import OPEN_INVOICE, OPEN_INVOICE_SQL

KINDS = {"before": "reminder_before", "due": "reminder_due", "overdue": "reminder_overdue", "final": "reminder_final"}
LABELS = {"reminder_before": "Reminder: due soon", "reminder_due": "Reminder: due today",
          "reminder_overdue": "Reminder: overdue", "reminder_final": "Final notice"}


@dataclass(frozen=True)
class Step:
    key: str  # before-7, due, overdue-1, final-21: part of the dedupe key
    offset: int  # the day it goes out minus the due date
    kind: str  # the message kind (its template)

    @property
    def stage(self) -> str:
        return self.key.split("-")[0]


def schedule(settings: Settings | None = None) -> list[Step]:
    s = settings or get_settings()
    steps = [Step(f"before-{d}", -d, KINDS["before"]) for d in s.reminder_days_before]
    steps.append(Step("due", 0, KINDS["due"]))
    steps += [Step(f"overdue-{d}", d, KINDS["overdue"]) for d in sorted(s.reminder_days_overdue)
              if d != s.reminder_final_day]
    if s.reminder_final_day:
        steps.append(Step(f"final-{s.reminder_final_day}", s.reminder_final_day, KINDS["final"]))
    return steps


def step_for(offset: int, settings: Settings | None = None) -> Step | None:
    return next((s for s in schedule(settings) if s.offset == offset), None)


CANDIDATES_SQL = f"""
SELECT i.id AS invoice, i.member, i.due_date, {{}}::date - i.due_date AS offset_days,
       m.id, m.email, m.phone, m.message_channel
FROM invoice i
JOIN member m ON m.id = i.member
WHERE i.status IN {OPEN_INVOICE_SQL} AND i.total > i.paid
  AND i.due_date = ANY({{}}::date[])
  AND i.reminders_paused = '' AND m.reminders_paused = '' AND NOT m.reminder_opt_out
  AND NOT {frozen_sql("i.member", "{}::date")}
ORDER BY i.id
"""


@dataclass
class RunResult:
    day: date
    invoices: int  # at a step today
    created: int  # messages this run wrote (a repeat run writes none)
    seconds: float


async def send_reminders(on: date | None = None) -> RunResult:
    """Write (and nudge the worker to send) today's reminders. Safe to run any number of times,
    concurrently too: what a run adds is only what no run has written yet."""
    started = time.perf_counter()
    on = on or today()
    steps = {s.offset: s for s in schedule()}
    rows = await Invoice.raw(CANDIDATES_SQL, on, [on - timedelta(days=offset) for offset in steps], on)
    messages = []
    for row in rows:
        step = steps[row["offset_days"]]
        for channel in outbox.channels_for(row, step.kind):
            to = outbox.address(row, channel)
            if to:
                messages.append(Message(
                    member=row["member"], channel=channel, kind=step.kind, to_address=to[:255], invoice=row["invoice"],
                    dedupe_key=f"reminder:invoice:{row['invoice']}:{step.key}:{channel}",
                    params={"step": step.key, "offset": step.offset, "day": on.isoformat()}))
    created: list[int] = []
    for start in range(0, len(messages), 500):  # one statement per 500, not one per message
        rows_in = await Message.insert(*messages[start:start + 500]).on_conflict(
            target=Message.dedupe_key, action="DO NOTHING").returning(Message.id)
        created += [r["id"] for r in rows_in]
    await outbox.nudge(created)
    return RunResult(on, len(rows), len(created), time.perf_counter() - started)


# --- pauses ---------------------------------------------------------------------------------

async def pause_member(member_id: int, reason: str, staff_id: int | None) -> None:
    await _pause(Member, member_id, reason, staff_id, "member")


async def pause_invoice(invoice_id: int, reason: str, staff_id: int | None) -> None:
    await _pause(Invoice, invoice_id, reason, staff_id, "invoice")


async def resume_member(member_id: int, staff_id: int | None) -> None:
    await _resume(Member, member_id, staff_id, "member")


async def resume_invoice(invoice_id: int, staff_id: int | None) -> None:
    await _resume(Invoice, invoice_id, staff_id, "invoice")


async def _pause(table, row_id: int, reason: str, staff_id: int | None, entity: str) -> None:
    reason = " ".join(reason.split())
    if not reason:
        raise RuleBroken(S_("Give a reason for pausing reminders"))
    async with db.transaction():
        done = await table.update({table.reminders_paused: reason[:500]}).where(table.id == row_id).returning(table.id)
        if not done:
            raise NotFound(entity)
        await audit.record("reminders.paused", entity, row_id, staff_id=staff_id, reason=reason)


async def _resume(table, row_id: int, staff_id: int | None, entity: str) -> None:
    async with db.transaction():
        done = await table.update({table.reminders_paused: ""}).where(table.id == row_id).returning(table.id)
        if not done:
            raise NotFound(entity)
        await audit.record("reminders.resumed", entity, row_id, staff_id=staff_id)


async def remind_now(invoice_id: int, staff_id: int | None, on: date | None = None) -> list[int]:
    """Staff send a reminder for one invoice now (the dues page). Once a day per invoice: a second
    click the same day writes nothing. Pauses and opt-outs are respected here too."""
    on = on or today()
    row = await Invoice.raw(
        "SELECT i.id AS invoice, i.status, i.due_date, i.reminders_paused AS invoice_paused, m.id, m.email, m.phone, "
        "m.message_channel, m.reminders_paused, m.reminder_opt_out, " + frozen_sql("m.id", "{}::date") + " AS frozen "
        "FROM invoice i JOIN member m ON m.id = i.member WHERE i.id = {}", on, invoice_id)
    if not row:
        raise NotFound("invoice")
    row = row[0]
    if row["status"] not in OPEN_INVOICE:
        raise RuleBroken(S_("Only an open invoice can be reminded about"))
    if row["reminder_opt_out"]:
        raise RuleBroken(S_("This member opted out of reminders"))
    if row["frozen"]:
        raise RuleBroken(S_("The membership is frozen: no reminders while it is"))
    if row["reminders_paused"] or row["invoice_paused"]:
        raise RuleBroken(f"Reminders are paused: {row['reminders_paused'] or row['invoice_paused']}")
    offset = (on - row["due_date"]).days
    stage = "before" if offset < 0 else "due" if offset == 0 else "overdue"
    created = await outbox.send_to_member(
        row["id"], KINDS[stage], key=f"reminder:invoice:{invoice_id}:manual-{on.isoformat()}", invoice_id=invoice_id,
        params={"step": f"manual-{stage}", "offset": offset, "day": on.isoformat()}, member=row)
    if created:
        await audit.record("reminder.sent", "invoice", invoice_id, staff_id=staff_id, details={"messages": created})
    return created
