"""Time, in one place: stored in UTC, business days in the gym's time zone (Africa/Nairobi)."""

from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, timezone

from portal.settings import get_settings

# A moment the app's rules run at instead of now: the demo gym's past (demo/sales.py) is made by
# the app's own functions, each at the moment it happened. Never set while serving requests.
_pinned: ContextVar[datetime | None] = ContextVar("clock_pinned", default=None)


def now() -> datetime:
    return _pinned.get() or datetime.now(timezone.utc)


def today() -> date:
    """The business day at the gym, not the server's."""
    return now().astimezone(get_settings().tz).date()


def local(dt: datetime) -> datetime:
    return dt.astimezone(get_settings().tz)


@contextmanager
def pinned(at: datetime):
    """`now()` and `today()` read `at` inside the block (this task only)."""
    token = _pinned.set(at)
    try:
        yield at
    finally:
        _pinned.reset(token)
