"""Access hold: a member with an open invoice more than HOLD_GRACE_DAYS overdue is on hold.

The rule is stated once, as SQL that the member search, the member page, the dues dashboard and
the digest all embed."""

from __future__ import annotations

from datetime import date, timedelta

from portal.lib.clock import today
from portal.settings import get_settings
from tables.statuses import OPEN_INVOICE_SQL


def _hold_where(member: str) -> str:
    # The one statement of the rule: an open invoice due before the cut-off (today - grace).
    return (f"h.member = {member} "
            f"AND h.status IN {OPEN_INVOICE_SQL} AND h.due_date < {{}}::date")


def hold_sql(member: str = "m.id") -> str:
    """SQL true when the member has an invoice more than the grace period overdue; one arg: the
    cut-off date (today - grace)."""
    return f"EXISTS (SELECT 1 FROM invoice h WHERE {_hold_where(member)})"


def hold_reason_sql(member: str = "m.id") -> str:
    """A LATERAL subquery (join it `ON true`) naming why the member is on hold: the most overdue
    invoice past the grace period (`number`, `due_date`) and how many there are (`n`); no row
    when they are not on hold. One arg: the cut-off date, as for hold_sql."""
    # count(*) OVER () is taken before the LIMIT: every invoice past the grace period.
    return (f"SELECT h.number, h.due_date, count(*) OVER () AS n FROM invoice h WHERE {_hold_where(member)} "
            "ORDER BY h.due_date, h.id LIMIT 1")


def hold_cutoff(on: date | None = None) -> date:
    return (on or today()) - timedelta(days=get_settings().hold_grace_days)
