"""'We miss you': a manager's one click from the list of members not seen for a while.

At most one a week per member, however often the button is pressed (the outbox's dedupe key
names the ISO week), by the channels the member chose; never to a member who opted out of
reminders or has left. The message is built when it goes: if the member came in since it was
queued, it is skipped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from portal import audit
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
    day = on or today()
    done = Reminded()
    wanted = sorted(set(member_ids))
    if not wanted:
        return done
    rows = await Member.select(Member.id, Member.email, Member.phone, Member.message_channel,
                               Member.reminder_opt_out, Member.status).where(Member.id.is_in(wanted))
    for member in rows:
        if member["reminder_opt_out"] or member["status"] != Member.Status.active.value:
            done.opted_out.append(member["id"])
            continue
        key = week_key(member["id"], day)
        created = await outbox.send_to_member(member["id"], KIND, key=key, member=member)
        if created:
            done.queued.append(member["id"])
            await audit.record("member.reminded_absent", "member", member["id"], staff_id=staff_id,
                               details={"messages": created})
        elif await Message.exists().where(Message.dedupe_key.like(f"{key}:%")):
            done.already.append(member["id"])
        else:
            done.opted_out.append(member["id"])
    return done


async def reminded_lately(member_ids: list[int], since: datetime) -> dict[int, datetime]:
    """When each of these members was last sent a 'we miss you' since `since` (one query)."""
    if not member_ids:
        return {}
    rows = await Message.raw(
        "SELECT member, max(created_at) AS at FROM message WHERE kind = {} AND member = ANY({}) "
        "AND created_at >= {} GROUP BY member", KIND, list(member_ids), since)
    return {r["member"]: r["at"] for r in rows}
