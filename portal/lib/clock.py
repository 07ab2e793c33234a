"""Time, in one place: stored in UTC, business days in the gym's time zone (Africa/Nairobi)."""

from datetime import date, datetime, timezone

from portal.settings import get_settings


def now() -> datetime:
    return datetime.now(timezone.utc)


def today() -> date:
    """The business day at the gym, not the server's."""
    return now().astimezone(get_settings().tz).date()


def local(dt: datetime) -> datetime:
    return dt.astimezone(get_settings().tz)
