"""The daily reminder job at real size: on each bench data set, the run for every day of a week
(so every step of the schedule meets real invoices), timed, then a second run of the same day
(which must write nothing). The messages it wrote are removed again, so the data set stays as
loaded. Results are appended to test-artifacts/bench.md.

    BENCH_SIZES=20000x500000 make bench
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.bench import datasets, pages
from tests.bench.test_pages import REPORT, _sizes

pytestmark = pytest.mark.bench


async def test_reminder_job_timings():
    from portal.lib.clock import today
    from portal.messages import reminders
    from tables.messages import Message

    lines = ["", "## Daily reminder job", "", "| size | day | invoices at a step | messages written | seconds | "
             "second run writes |", "|---|---|---:|---:|---:|---:|"]
    for members, payments in _sizes():
        data = datasets.prepare(members, payments)
        async with pages.engine_on(data.url):
            await Message.delete().where(Message.kind.like("reminder_%"))
            for back in range(7):
                day = today() - timedelta(days=back)
                first = await reminders.send_reminders(on=day)
                second = await reminders.send_reminders(on=day)
                assert second.created == 0
                lines.append(f"| {data.label} | {day} | {first.invoices} | {first.created} | {first.seconds:.2f} | "
                             f"{second.created} |")
            await Message.delete().where(Message.kind.like("reminder_%"))
    text = "\n".join(lines) + "\n"
    print(text)
    Path(REPORT).parent.mkdir(parents=True, exist_ok=True)
    with open(REPORT, "a") as report:
        report.write(text)
