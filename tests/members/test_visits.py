"""Visits counted by the gym's day (Africa/Nairobi, UTC+3), not the server's: a visit at 23:30 in
Nairobi is that day's, one at 00:30 the next day's; and who has not come for N days."""

from datetime import date, datetime, timedelta, timezone

from portal.members import visits
from tables.visits import Visit
from tests.factories import make_member, make_membership, make_plan

DAY = date(2026, 3, 10)  # a Tuesday
EAT = timezone(timedelta(hours=3))


async def _visit(member: int, at: datetime, outcome: str = "allowed") -> None:
    await Visit.insert(Visit(member=member, at=at, colour="red" if outcome != "allowed" else "green", outcome=outcome,
                             override_reason="let in" if outcome == "override" else ""))


async def test_days_and_weeks_are_the_gyms(db, settings):
    assert settings.timezone == "Africa/Nairobi"
    m = await make_member()
    await _visit(m, datetime(2026, 3, 9, 23, 30, tzinfo=EAT))  # Monday, late
    await _visit(m, datetime(2026, 3, 10, 0, 30, tzinfo=EAT))  # Tuesday, just after midnight (21:30 UTC Monday)
    await _visit(m, datetime(2026, 3, 10, 18, 0, tzinfo=EAT), "override")
    await _visit(m, datetime(2026, 3, 10, 19, 0, tzinfo=EAT), "refused")
    await _visit(m, datetime(2026, 3, 8, 12, 0, tzinfo=EAT))  # Sunday: the week before (weeks start Monday)

    by_day = {r["bucket"]: r for r in await visits.visits_by("day", DAY - timedelta(days=2), DAY)}
    assert [(d, by_day[d]["came_in"], by_day[d]["overridden"], by_day[d]["refused"]) for d in sorted(by_day)] == [
        (date(2026, 3, 8), 1, 0, 0), (date(2026, 3, 9), 1, 0, 0), (date(2026, 3, 10), 2, 1, 1)]
    ranges = visits.day_and_week_ranges(DAY, days=3, weeks=2)
    assert ranges == {"days": (date(2026, 3, 8), DAY), "weeks": (date(2026, 3, 2), date(2026, 3, 9))}
    by_week = await visits.visits_by("week", *ranges["weeks"])
    assert [(r["bucket"], r["came_in"], r["members"], r["refused"]) for r in by_week] == [
        (date(2026, 3, 9), 3, 1, 1), (date(2026, 3, 2), 1, 1, 0)]


async def test_not_seen_counts_days_back_from_today_and_ignores_refused_visits(db):
    plan = await make_plan()
    names = {}
    for name, last in (("Today", DAY), ("Thirteen", DAY - timedelta(days=13)), ("Fourteen", DAY - timedelta(days=14)),
                       ("Never", None), ("Refused", None)):
        m = await make_member(name, "Member")
        names[m] = name
        await make_membership(m, plan, DAY - timedelta(days=60), DAY + timedelta(days=30), "active")
        if last:
            await _visit(m, datetime(last.year, last.month, last.day, 0, 5, tzinfo=EAT))
    refused = [m for m, n in names.items() if n == "Refused"][0]
    await _visit(refused, datetime(2026, 3, 10, 9, 0, tzinfo=EAT), "refused")  # turned away is not "seen"
    lapsed = await make_member("Lapsed", "Member")  # no running membership: not expected
    await make_membership(lapsed, plan, DAY - timedelta(days=90), DAY - timedelta(days=60), "expired")

    rows, total = await visits.not_seen(14, on=DAY)
    # Seen on any of the last 14 days (today and the 13 before) counts; day 14 back does not.
    assert total == 3
    assert sorted(names[r["id"]] for r in rows[:2]) == ["Never", "Refused"]  # never seen: first
    assert names[rows[2]["id"]] == "Fourteen"
    rows, total = await visits.not_seen(1, on=DAY)
    assert total == 4 and "Today" not in {names[r["id"]] for r in rows}
