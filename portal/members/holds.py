"""Access hold: a member with an open invoice more than HOLD_GRACE_DAYS overdue is on hold.

The rule is stated once, as SQL that the member search, the member page, the dues dashboard and
the digest all embed."""

from __future__ import annotations

from datetime import date, timedelta

from portal import webhooks
from portal.lib import clock
from portal.lib.clock import today
from portal.settings import get_settings
from tables.statuses import OPEN_INVOICE_SQL
from tables.webhooks import WebhookEvent


def _hold_where(member: str) -> str:
    # The one statement of the rule: an open invoice due before the cut-off (today - grace), and
    # the member not frozen today (a membership freeze, portal/members/changes.py, silences the
    # hold while it lasts: today is the cut-off + grace, hc.cut is the one placeholder).
    frozen = frozen_sql("h.member", f"hc.cut + {int(get_settings().hold_grace_days)}")
    return (f"h.member = {member} "
            f"AND h.status IN {OPEN_INVOICE_SQL} AND h.due_date < hc.cut AND NOT {frozen}")


# The invoices a hold looks at, with the cut-off bound once (its one placeholder).
_HOLD_FROM = "invoice h CROSS JOIN (SELECT {}::date AS cut) hc"


def frozen_sql(member: str, day: str) -> str:
    """SQL true when the member has a membership frozen on `day` (SQL expressions, no placeholder):
    the one statement of "frozen", shared by holds, reminders, check-in and the member page."""
    return (f"EXISTS (SELECT 1 FROM membership_freeze fz WHERE fz.member = {member} AND fz.status = 'active' "
            f"AND ({day}) BETWEEN fz.start_date AND fz.end_date)")


def hold_sql(member: str = "m.id") -> str:
    """SQL true when the member has an invoice more than the grace period overdue; one arg: the
    cut-off date (today - grace)."""
    return f"EXISTS (SELECT 1 FROM {_HOLD_FROM} WHERE {_hold_where(member)})"


def hold_reason_sql(member: str = "m.id") -> str:
    """A LATERAL subquery (join it `ON true`) naming why the member is on hold: the most overdue
    invoice past the grace period (`number`, `due_date`) and how many there are (`n`); no row
    when they are not on hold. One arg: the cut-off date, as for hold_sql."""
    # count(*) OVER () is taken before the LIMIT: every invoice past the grace period.
    return (f"SELECT h.number, h.due_date, count(*) OVER () AS n FROM {_HOLD_FROM} WHERE {_hold_where(member)} "
            "ORDER BY h.due_date, h.id LIMIT 1")


def hold_cutoff(on: date | None = None) -> date:
    return (on or today()) - timedelta(days=get_settings().hold_grace_days)


SYNC_HOLDS_SQL = """
WITH now_held AS (
    SELECT m.id FROM member m WHERE ({ids}::int[] IS NULL OR m.id = ANY({ids}::int[])) AND {held}
), added AS (
    INSERT INTO webhook_hold (member, since) SELECT id, {now} FROM now_held ON CONFLICT (member) DO NOTHING
    RETURNING member
), removed AS (
    DELETE FROM webhook_hold h WHERE ({ids}::int[] IS NULL OR h.member = ANY({ids}::int[]))
      AND h.member NOT IN (SELECT id FROM now_held)
    RETURNING member
)
SELECT 'member.on_hold' AS type, member FROM added
UNION ALL SELECT 'member.hold_cleared', member FROM removed
ORDER BY member, type DESC
"""


async def announce_holds(member_ids: list[int] | None = None, on: date | None = None) -> list[tuple[str, int]]:
    """Outbound webhooks for holds that began or ended (of these members, or of everyone): a hold
    is this module's rule over dates, not a stored status, so webhook_hold keeps who was last
    announced as held and this is the difference. Runs in the transaction that paid, voided or
    raised an invoice (the member's lock held), and nightly for holds that time alone began."""
    cutoff = hold_cutoff(on)
    sql = SYNC_HOLDS_SQL.replace("{held}", hold_sql("m.id").replace("{}", "{cutoff}"))
    changes = await WebhookEvent.raw(*webhooks.named(sql, ids=member_ids, now=clock.now(), cutoff=cutoff))
    cut = f"{cutoff:%Y-%m-%d}"
    for row in changes:
        await webhooks.emit(row["type"], "member", row["member"],
                            {"member_id": row["member"], "on_hold": row["type"] == "member.on_hold",
                             "grace_days": get_settings().hold_grace_days, "overdue_before": cut})
    return [(row["type"], row["member"]) for row in changes]
