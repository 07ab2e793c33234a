"""The nightly membership job, run by a real SAQ worker, on controlled dates."""

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from tables.audit import AuditLog
from tables.members import Membership
from tests.factories import make_member, make_membership, make_plan


async def _status(ms_id: int) -> str:
    return (await Membership.select(Membership.status).where(Membership.id == ms_id).first())["status"]


async def test_the_worker_expires_ended_and_starts_pending_memberships(worker, queue):
    plan = await make_plan()
    ended = await make_membership(await make_member(), plan, date(2026, 11, 1), date(2026, 11, 30), "active")
    last_day = await make_membership(await make_member(), plan, date(2026, 11, 2), date(2026, 12, 1), "active")
    starts = await make_membership(await make_member(), plan, date(2026, 12, 1), date(2026, 12, 31), "pending")
    later = await make_membership(await make_member(), plan, date(2026, 12, 5), date(2027, 1, 4), "pending")

    # The night of 30 Nov -> 1 Dec (Nairobi): job runs for business day 2026-12-01.
    result = await queue.apply("refresh_memberships", as_of="2026-12-01", timeout=30)
    assert result == {"expired": 1, "started": 1}
    assert [await _status(i) for i in (ended, last_day, starts, later)] == ["expired", "active", "active", "pending"]

    # Running it again for the same day changes nothing (the cron may fire twice after a restart).
    assert await queue.apply("refresh_memberships", as_of="2026-12-01", timeout=30) == {"expired": 0, "started": 0}

    # On 4 Jan two more have ended, and the last one starts (its final day).
    assert await queue.apply("refresh_memberships", as_of="2027-01-04", timeout=30) == {"expired": 2, "started": 1}
    assert [await _status(i) for i in (ended, last_day, starts, later)] == ["expired", "expired", "expired", "active"]
    nightly = await AuditLog.select().where(AuditLog.action == "membership.nightly")
    assert len(nightly) == 2 and nightly[0]["staff"] is None


async def test_the_cron_is_scheduled_just_after_midnight_in_nairobi(worker, queue):
    # Starting the worker schedules the next cron run; it is 00:05 Africa/Nairobi (21:05 UTC).
    job = None
    for _ in range(400):
        job = await queue.job("cron:refresh_memberships")
        if job:
            break
        await __import__("asyncio").sleep(0.05)
    assert job is not None, "cron job was not scheduled"
    when = datetime.fromtimestamp(job.scheduled, tz=timezone.utc).astimezone(ZoneInfo("Africa/Nairobi"))
    assert (when.hour, when.minute) == (0, 5)
    assert timedelta(0) < when - datetime.now(timezone.utc) <= timedelta(days=1)
    assert job.timeout == 300
