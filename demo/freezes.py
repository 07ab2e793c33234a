"""Freezes in the demo gym: a few members who paused their membership (travel, an injury, exams),
made through the app's own rule (portal.members.changes.freeze), so the end dates they move, the
renewals that wait after them and the audit log are what the app writes.

About one paid-up member in twenty (six at least): some frozen today (check-in says red "Frozen until"), some whose
freeze starts soon, one whose freeze was ended early. Chosen from members paid up and mid-term,
deterministically for a seed. Only the small demo gym has them: the app's rule runs one freeze
at a time, and the bulk loads behind the benchmarks do not need them.
"""

from __future__ import annotations

import random
from datetime import timedelta

from portal.lib.clock import today
from portal.members import changes
from portal.settings import get_settings
from tables.members import Membership
from tables.staff import Staff
from tables.visits import Visit

REASONS = ["Travelling upcountry for work", "Knee injury: the physio says two to three weeks off",
           "University exams", "Out of the country for a family wedding", "Recovering from malaria"]
SHARE = 20  # one paid-up member in SHARE
MIN_FREEZES = 6


async def add_freezes(seed: int = 7) -> int:
    rng = random.Random(seed * 104729 + 1)
    t = today()
    manager = (await Staff.select(Staff.id).where(Staff.role == "manager").order_by(Staff.id).first())["id"]
    # Paid up, mid-term, and with nothing waiting after: a freeze then reads plainly on the member page.
    rows = await Membership.raw(
        "SELECT ms.id, ms.start_date, ms.end_date FROM membership ms WHERE ms.status = 'active' "
        "AND ms.start_date <= {}::date - 10 AND ms.end_date >= {}::date + 8 "
        "AND NOT EXISTS (SELECT 1 FROM membership nx WHERE nx.member = ms.member AND nx.id <> ms.id "
        "AND nx.start_date > ms.end_date) ORDER BY ms.id", t, t)
    wanted = min(len(rows), max(MIN_FREEZES, len(rows) // SHARE))
    chosen = rng.sample(rows, wanted)
    made = 0
    for i, ms in enumerate(chosen):
        reason = REASONS[i % len(REASONS)]
        if i % 3 == 2:  # starts soon, within the membership
            start = t + timedelta(days=rng.randint(2, min(10, (ms["end_date"] - t).days)))
            asked = t
        else:  # running today, asked for the day it began
            start = t - timedelta(days=rng.randint(2, min(9, (t - ms["start_date"]).days)))
            asked = start
        end = start + timedelta(days=rng.randint(13, 29))
        row = await changes.freeze(ms["id"], start, end, reason, None, manager, on=asked)
        made += 1
        # The door's simulated history (demo.visits) was played before: nobody came in while frozen.
        await Visit.raw("DELETE FROM visit WHERE member = {} AND (at AT TIME ZONE {})::date BETWEEN {} AND {}",
                        row["member"], get_settings().timezone, start, end)
        if i == 0 and start < t:  # came back sooner than planned
            await changes.end_freeze(row["id"], "Back in Nairobi earlier than planned", manager)
    return made
