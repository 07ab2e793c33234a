"""Visits read back: a member's recent ones (the member page), counts by day and by week, and the
members with a running membership not seen for a number of days (the managers' page). Each is
one query whatever the number of visits or members. Days and weeks are the gym's (TIMEZONE)."""

from __future__ import annotations

from datetime import date, timedelta

from portal.lib.clock import today
from portal.settings import get_settings
from tables.visits import Visit

RECENT = 10
NOT_SEEN_LIMIT = 100
# A visit counts as one where the member came in: let in by the rule or by an override.
CAME_IN = "v.outcome IN ('allowed', 'override')"


async def recent_visits(member_id: int, limit: int = RECENT) -> list[dict]:
    return await Visit.raw(
        "SELECT v.id, v.at, v.colour, v.outcome, v.reason, v.override_reason, l.name AS location_name, "
        "u.username AS staff_username FROM visit v LEFT JOIN location l ON l.id = v.location "
        "LEFT JOIN staff s ON s.id = v.staff LEFT JOIN piccolo_user u ON u.id = s.user "
        f"WHERE v.member = {{}} ORDER BY v.at DESC, v.id DESC LIMIT {int(limit)}", member_id)


BY_BUCKET_SQL = """
SELECT b.bucket::date AS bucket,
       count(v.id) FILTER (WHERE v.outcome IN ('allowed', 'override')) AS came_in,
       count(v.id) FILTER (WHERE v.outcome = 'override') AS overridden,
       count(v.id) FILTER (WHERE v.outcome = 'refused') AS refused,
       count(DISTINCT v.member) FILTER (WHERE v.outcome IN ('allowed', 'override')) AS members
FROM generate_series({{}}::date, {{}}::date, '1 {unit}'::interval) AS b(bucket)
LEFT JOIN visit v ON v.at >= (b.bucket::timestamp AT TIME ZONE {{}})
                 AND v.at < ((b.bucket + '1 {unit}'::interval)::timestamp AT TIME ZONE {{}})
GROUP BY b.bucket ORDER BY b.bucket DESC
"""


async def visits_by(unit: str, first: date, last: date) -> list[dict]:
    """Visits per day or week from `first` to `last` (each bucket, with zeros), newest first."""
    assert unit in ("day", "week")
    tz = get_settings().timezone
    return await Visit.raw(BY_BUCKET_SQL.format(unit=unit), first, last, tz, tz)


def day_and_week_ranges(on: date | None = None, days: int = 14, weeks: int = 12) -> dict:
    day = on or today()
    monday = day - timedelta(days=day.weekday())
    return {"days": (day - timedelta(days=days - 1), day), "weeks": (monday - timedelta(weeks=weeks - 1), monday)}


NOT_SEEN_SQL = """
SELECT m.id, m.member_number, m.first_name, m.last_name, m.phone, last.at AS last_seen,
       count(*) OVER () AS total
FROM member m
LEFT JOIN LATERAL (
    SELECT v.at FROM visit v WHERE v.member = m.id AND {came_in} ORDER BY v.at DESC LIMIT 1
) last ON true
WHERE m.status = 'active'
  AND EXISTS (SELECT 1 FROM membership ms WHERE ms.member = m.id AND ms.status IN ('active', 'pending')
              AND ms.start_date <= {{}} AND ms.end_date >= {{}})
  AND (last.at IS NULL OR last.at < ({{}}::date::timestamp AT TIME ZONE {{}}))
ORDER BY last.at NULLS FIRST, lower(m.last_name), m.id
LIMIT {limit}
"""


async def not_seen(days: int, on: date | None = None, limit: int = NOT_SEEN_LIMIT) -> tuple[list[dict], int]:
    """Members with a membership running today who have not come in for `days` days (or never),
    longest absent first: (the first `limit`, how many in all)."""
    day = on or today()
    since = day - timedelta(days=days - 1)  # seen on any of the last `days` days (today included) counts
    rows = await Visit.raw(NOT_SEEN_SQL.format(came_in=CAME_IN, limit=int(limit)), day, day, since,
                           get_settings().timezone)
    return rows, (rows[0]["total"] if rows else 0)
