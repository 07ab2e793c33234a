"""'We miss you': a manager's one click from the list of members not seen for a while.

At most one a week per member, however often the button is pressed (the outbox's dedupe key
names the ISO week), by the channels the member chose; never to a member who opted out of
reminders or has left. The message is built when it goes: if the member came in since it was
queued, it is skipped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from portal import audit
from portal.lib import db
from portal.lib.clock import today
from portal.messages import outbox
from tables.members import Member
from tables.messages import Message

KIND = "miss_you"
LOOK_BACK = timedelta(days=7)  # "reminded on ..." shows a reminder of the last week


def week_key(member_id: int, day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{KIND}:{member_id}:{year}-W{week:02d}"


@dataclass
class Reminded:
    queued: list[int] = field(default_factory=list)  # members a message was queued for now
    already: list[int] = field(default_factory=list)  # reminded this week already
    opted_out: list[int] = field(default_factory=list)  # opted out, left, or no phone or address


async def remind(member_ids: list[int], staff_id: int | None, on: date | None = None) -> Reminded:
    """A fixed number of queries however many members are chosen ("remind all" on a gym's whole
    list): the members, one insert of every message (the week's dedupe keys keep it at most one a
    week), one look at the keys already taken, one insert of the audit rows; then the worker is
    nudged once the rows are committed."""
    day = on or today()
    done = Reminded()
    wanted = sorted(set(member_ids))
    if not wanted:
        return done
    rows = await Member.select(Member.id, Member.email, Member.phone, Member.message_channel,
                               Member.reminder_opt_out, Member.status).where(Member.id.is_in(wanted)).order_by(Member.id)
    messages, reachable = [], []
    for member in rows:
        if member["reminder_opt_out"] or member["status"] != Member.Status.active.value:
            done.opted_out.append(member["id"])
            continue
        key = week_key(member["id"], day)
        to_send = [Message(member=member["id"], channel=channel, kind=KIND, to_address=to[:255],
                           dedupe_key=f"{key}:{channel}", params={})
                   for channel in outbox.channels_for(member, KIND) if (to := outbox.address(member, channel))]
        if not to_send:
            done.opted_out.append(member["id"])
            continue
        messages += to_send
        reachable.append(member["id"])
    if not messages:
        return done
    async with db.transaction():
        created = await Message.insert(*messages).on_conflict(
            target=Message.dedupe_key, action="DO NOTHING").returning(Message.id, Message.member)
        by_member: dict[int, list[int]] = {}
        for r in created:
            by_member.setdefault(r["member"], []).append(r["id"])
        waiting = [m for m in reachable if m not in by_member]
        taken = {r["member"] for r in await Message.raw(
            "SELECT DISTINCT member FROM message WHERE member = ANY({}) AND dedupe_key LIKE ANY({})",
            waiting, [f"{week_key(m, day)}:%" for m in waiting])} if waiting else set()
        for member_id in reachable:
            if member_id in by_member:
                done.queued.append(member_id)
            elif member_id in taken:
                done.already.append(member_id)
            else:  # its row went between the two statements (a message removed): nothing sent now
                done.opted_out.append(member_id)
        await audit.record_many("member.reminded_absent", "member", [
            (member_id, {"messages": by_member[member_id]}) for member_id in done.queued], staff_id=staff_id)
        await db.after_commit(lambda: outbox.nudge([r["id"] for r in created]))
    return done


async def reminded_lately(member_ids: list[int], since: datetime) -> dict[int, datetime]:
    """When each of these members was last sent a 'we miss you' since `since` (one query)."""
    if not member_ids:
        return {}
    rows = await Message.raw(
        "SELECT member, max(created_at) AS at FROM message WHERE kind = {} AND member = ANY({}) "
        "AND created_at >= {} GROUP BY member", KIND, list(member_ids), since)
    return {r["member"]: r["at"] for r in rows}
