"""Check-ins for the simulated gym (demo.history): who came in at the door and when.

Played after the money, over the memberships the members paid for, with a random generator of
its own, so the money history of a seed stays exactly what it was. Only the last VISIT_DAYS days:
the visits page looks back 12 weeks and a member page at the last few visits, and a 20,000-member
load must not spend minutes writing years of door scans nobody reads.

- each member has a habit (how often they come) and a time of day they prefer;
- on a day their membership runs they may come in: green, or amber in its last week (with the
  words portal.members.checkin writes);
- in the days after a membership ran out some come anyway and are turned away red; now and then
  the desk lets one in with a reason (an override);
- today's visits are before now.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from demo.history import DAY, MINUTE, History, MembershipRow, Row, _final_status

VISIT_DAYS = 120
# Per-day chance of coming in, by habit: the odd visit, once a week, twice, thrice, most days.
HABITS = [0.05, 0.15, 0.3, 0.45, 0.7]
HABIT_WEIGHTS = [15, 25, 30, 20, 10]
# Morning before work, lunch, evening: (first minute, last minute) of the day at the gym.
TIMES = [(6 * 60, 9 * 60), (12 * 60, 14 * 60), (17 * 60, 21 * 60)]
TIME_WEIGHTS = [35, 15, 50]
AMBER_DAYS = 7  # CHECKIN_AMBER_EXPIRY_DAYS's default
REFUSED_WITHIN = 10  # days after the end during which a lapsed member may still turn up
OVERRIDE_SHARE = 0.2
OVERRIDE_REASONS = ["Paying by M-Pesa at the desk now", "Renewing today, card at home",
                    "Manager agreed: pays on Friday"]


class VisitRow(Row):
    __slots__ = ("member", "staff", "location", "colour", "outcome", "reason", "override_reason", "overridden_by",
                 "overridden_us")


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def simulate_visits(history: History, days: int = VISIT_DAYS) -> list[VisitRow]:
    gym = history.gym
    rng = random.Random(history.seed * 7919 + 13)
    first_day = gym.today - timedelta(days=days - 1)
    paid: dict[int, list[MembershipRow]] = {}
    for ms in history.memberships:
        if _final_status(ms, gym.today) not in ("unpaid", "cancelled") and ms.end >= first_day - DAY * REFUSED_WITHIN:
            paid.setdefault(id(ms.member), []).append(ms)
    frozen: dict[int, list[tuple[date, date]]] = {}
    for f in history.freezes:  # nobody comes in while frozen
        frozen.setdefault(id(f.member), []).append((f.start, f.end))
    visits: list[VisitRow] = []
    for member in history.members:
        runs = sorted(paid.get(id(member), []), key=lambda ms: ms.start)
        if not runs:
            continue
        habit = rng.choices(HABITS, HABIT_WEIGHTS)[0]
        slot = rng.choices(TIMES, TIME_WEIGHTS)[0]
        desk = gym.desk.get(member.location) or [s for staff in gym.desk.values() for s in staff]
        day = max(first_day, runs[0].start)
        while day <= gym.today:
            running = next((ms for ms in runs if ms.start <= day <= ms.end), None)
            lapsed = None if running else next(
                (ms for ms in reversed(runs) if ms.end < day <= ms.end + REFUSED_WITHIN * DAY), None)
            chance = habit if running else (habit * 0.3 if lapsed else 0)
            if chance and id(member) in frozen and any(a <= day <= b for a, b in frozen[id(member)]):
                chance = 0
            if chance and rng.random() < chance:
                at = _moment(history, day, rng.randint(*slot))
                if at is not None and at > member.us:  # not before they joined, on the day they did
                    visits.append(_visit(member, rng.choice(desk), at, day, running, lapsed, rng, history))
            day += DAY
    visits.sort(key=lambda v: v.us)
    for seq, visit in enumerate(visits):
        visit.seq = seq
    return visits


def _moment(history: History, day: date, minute: int) -> int | None:
    us = history.midnight(day) + minute * MINUTE
    return us if us < history.now_us - 5 * MINUTE else None


def _visit(member, staff: int, at: int, day: date, running: MembershipRow | None, lapsed: MembershipRow | None,
           rng: random.Random, history: History) -> VisitRow:
    v = VisitRow()
    v.id, v.us, v.member, v.staff, v.location = None, at, member, staff, member.location
    v.override_reason, v.overridden_by, v.overridden_us = "", None, None
    if running is not None:
        left = (running.end - day).days
        v.outcome = "allowed"
        if left <= AMBER_DAYS:
            when = "today is the last day" if left == 0 else ("tomorrow is the last day" if left == 1
                                                             else f"{_days(left)} left")
            v.colour, v.reason = "amber", f"The membership ends on {running.end:%d %b %Y}: {when}."
        else:
            v.colour, v.reason = "green", f"Active until {running.end:%d %b %Y}; nothing overdue."
        return v
    ago = (day - lapsed.end).days
    when = "yesterday" if ago == 1 else f"{_days(ago)} ago"
    v.colour, v.outcome = "red", "refused"
    v.reason = f"The membership expired on {lapsed.end:%d %b %Y} ({when})."
    if rng.random() < OVERRIDE_SHARE:
        v.outcome, v.override_reason = "override", rng.choice(OVERRIDE_REASONS)
        v.overridden_by, v.overridden_us = history.gym.manager, min(at + 2 * MINUTE, history.now_us - MINUTE)
    return v
