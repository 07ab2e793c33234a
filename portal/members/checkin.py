"""Check-in at the door: green, amber or red for a member on a day, with the reasons in plain words
and what to do about each.

The rule is `decide`, a plain function of what is known about the member (a `Standing`) and the
gym's settings (`Rules`):

- red: the member has left or is suspended; the membership is frozen that day (a freeze,
  portal/members/changes.py: "Frozen until <date>"); no membership covers the day (none, not paid yet,
  starts later, or expired); on hold (portal/members/holds.py: an invoice more than HOLD_GRACE_DAYS
  overdue; that is the one statement of "too many days overdue"); or more owed past its due date
  than CHECKIN_RED_OWED_AMOUNT (when that is set).
- amber (let in, with a word): something is overdue but within the rule above; or the membership
  ends within CHECKIN_AMBER_EXPIRY_DAYS.
- green: an active membership and nothing overdue.

`standing` reads the facts in one query, whatever the number of members, invoices or visits: the
door is a queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from portal import audit
from portal.lib.clock import now, today
from portal.lib.errors import RuleBroken
from portal.lib.i18n import S_
from portal.lib.money import Money
from portal.members.holds import hold_cutoff, hold_reason_sql
from portal.settings import get_settings
from tables.members import Member
from tables.statuses import OPEN_INVOICE_SQL
from tables.visits import Visit

GREEN, AMBER, RED = "green", "amber", "red"
_RANK = {GREEN: 0, AMBER: 1, RED: 2}

# What the desk can do about a reason: a label and the part of the member page that does it.
ACTIONS = {
    "pay": ("Take payment", "pay"),
    "mpesa": ("Request M-Pesa", "mpesa"),
    "renew": ("Renew", "plan"),
}


@dataclass(frozen=True)
class Rules:
    red_owed_amount: Decimal = Decimal(0)  # 0: no amount rule, only the hold
    amber_expiry_days: int = 7
    hold_grace_days: int = 14  # only for the words: the hold itself is decided by holds.py's SQL
    currency: str = "KES"

    @classmethod
    def from_settings(cls) -> Rules:
        s = get_settings()
        return cls(red_owed_amount=s.checkin_red_owed_amount, amber_expiry_days=s.checkin_amber_expiry_days,
                   hold_grace_days=s.hold_grace_days, currency=s.currency)


@dataclass(frozen=True)
class Standing:
    """What is known about a member on a day; `standing` reads it, tests may build it."""

    member_status: str = "active"
    covered_until: date | None = None  # last day of the membership that covers the day (renewals included)
    next_start: date | None = None  # a membership that starts after the day
    last_ended: date | None = None  # the last day of the latest membership that has ended
    unpaid: bool = False  # a membership waits for its first invoice to be paid
    overdue: Decimal = Decimal(0)  # still owed on invoices past their due date
    on_hold: bool = False  # holds.py's rule, read in SQL
    hold_invoice: str | None = None  # the most overdue invoice past the grace period
    hold_days: int = 0  # how many days overdue it is
    oldest_due: date | None = None  # the due date of the oldest overdue invoice
    frozen_until: date | None = None  # the last day of a freeze covering the day


@dataclass(frozen=True)
class Reason:
    colour: str
    text: str
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    colour: str
    reasons: tuple[Reason, ...] = field(default_factory=tuple)

    @property
    def allowed(self) -> bool:
        return self.colour != RED

    @property
    def headline(self) -> str:
        return {GREEN: "Let in", AMBER: "Let in, with a word", RED: "Stop: do not let in"}[self.colour]

    @property
    def actions(self) -> list[str]:
        """Each action once, in the order the reasons ask for them."""
        seen: list[str] = []
        for reason in self.reasons:
            seen += [a for a in reason.actions if a not in seen]
        return seen

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.reasons)


def _days(n: int) -> str:
    return f"{n} day{'' if n == 1 else 's'}"


def decide(s: Standing, day: date, rules: Rules) -> Answer:
    """The rule. Every reason found is given (the worst decides the colour), so the desk can deal
    with all of them at once."""
    reasons: list[Reason] = []
    owe = ("pay", "mpesa")
    if s.member_status == Member.Status.left.value:
        reasons.append(Reason(RED, "Has left the gym."))
    elif s.member_status == Member.Status.suspended.value:
        reasons.append(Reason(RED, "Membership is suspended."))

    if s.frozen_until is not None:
        reasons.append(Reason(RED, f"Frozen until {s.frozen_until:%d %b %Y}."))
    elif s.covered_until is None:
        if s.unpaid:
            reasons.append(Reason(RED, "The membership is not paid yet.", owe))
        elif s.next_start is not None:
            reasons.append(Reason(RED, f"The membership starts on {s.next_start:%d %b %Y}."))
        elif s.last_ended is not None:
            ago = (day - s.last_ended).days
            when = "yesterday" if ago == 1 else f"{_days(ago)} ago"
            reasons.append(Reason(RED, f"The membership expired on {s.last_ended:%d %b %Y} ({when}).", ("renew",)))
        else:
            reasons.append(Reason(RED, "No membership.", ("renew",)))
    else:
        left = (s.covered_until - day).days
        if left <= rules.amber_expiry_days:
            when = "today is the last day" if left == 0 else ("tomorrow is the last day" if left == 1
                                                             else f"{_days(left)} left")
            reasons.append(Reason(AMBER, f"The membership ends on {s.covered_until:%d %b %Y}: {when}.", ("renew",)))

    owed = Money(s.overdue, rules.currency)
    if s.on_hold:
        reasons.append(Reason(RED, f"On hold: invoice {s.hold_invoice} is {_days(s.hold_days)} overdue "
                                   f"(more than {_days(rules.hold_grace_days)}). Owes {owed.format()} overdue.", owe))
    elif rules.red_owed_amount > 0 and s.overdue > rules.red_owed_amount:
        limit = Money(rules.red_owed_amount, rules.currency)
        reasons.append(Reason(RED, f"Owes {owed.format()} overdue, more than the {limit.format()} allowed.", owe))
    elif s.overdue > 0:
        late = (day - s.oldest_due).days if s.oldest_due else 0
        reasons.append(Reason(AMBER, f"Owes {owed.format()} overdue ({_days(late)} late; "
                                     f"on hold after {_days(rules.hold_grace_days)}).", owe))

    if not reasons:
        return Answer(GREEN, (Reason(GREEN, f"Active until {s.covered_until:%d %b %Y}; nothing overdue."),))
    colour = max((r.colour for r in reasons), key=_RANK.__getitem__)
    reasons.sort(key=lambda r: -_RANK[r.colour])
    return Answer(colour, tuple(reasons))


# One query: the member (by id or by number), their memberships summed up, what is overdue, and
# the hold (holds.py's SQL, the one statement of it). Placeholders in order: the day, the hold's
# cut-off, the member.
STANDING_SQL = """
WITH asked AS (SELECT {{}}::date AS day)
SELECT m.id, m.member_number, m.first_name, m.last_name, m.phone, m.status AS member_status,
       ms.covered, ms.covered_until, ms.next_start, ms.last_ended, coalesce(ms.unpaid, false) AS unpaid,
       coalesce(inv.overdue, 0) AS overdue, inv.oldest_due,
       hold.number AS hold_invoice, coalesce(asked.day - hold.due_date, 0) AS hold_days,
       (SELECT max(fz.end_date) FROM membership_freeze fz WHERE fz.member = m.id AND fz.status = 'active'
          AND fz.start_date <= asked.day AND fz.end_date >= asked.day) AS frozen_until
FROM member m CROSS JOIN asked
LEFT JOIN LATERAL (
    SELECT max(x.end_date) FILTER (WHERE x.status IN ('active', 'pending') AND x.end_date >= asked.day)
               AS covered_until,
           bool_or(x.status IN ('active', 'pending') AND x.start_date <= asked.day AND x.end_date >= asked.day)
               AS covered,
           min(x.start_date) FILTER (WHERE x.status IN ('active', 'pending') AND x.start_date > asked.day) AS next_start,
           max(x.end_date) FILTER (WHERE x.status IN ('active', 'pending', 'expired') AND x.end_date < asked.day)
               AS last_ended,
           bool_or(x.status = 'unpaid') AS unpaid
    FROM membership x WHERE x.member = m.id
) ms ON true
LEFT JOIN LATERAL (
    SELECT sum(i.total - i.paid) AS overdue, min(i.due_date) AS oldest_due
    FROM invoice i WHERE i.member = m.id AND i.status IN {open} AND i.due_date < asked.day
) inv ON true
LEFT JOIN LATERAL ({hold}) hold ON true
WHERE {where}
"""


def _standing_sql(where: str) -> str:
    return STANDING_SQL.format(open=OPEN_INVOICE_SQL, hold=hold_reason_sql(), where=where)


def _standing_of(row: dict) -> Standing:
    # Covered until: the last day of the memberships still running, when one covers the day.
    covered_until = row["covered_until"] if row["covered"] else None
    return Standing(member_status=row["member_status"], covered_until=covered_until,
                    next_start=row["next_start"], last_ended=row["last_ended"], unpaid=row["unpaid"],
                    overdue=row["overdue"], on_hold=row["hold_invoice"] is not None,
                    hold_invoice=row["hold_invoice"], hold_days=row["hold_days"], oldest_due=row["oldest_due"],
                    frozen_until=row.get("frozen_until"))


async def standing(member_id: int | None = None, *, number: str | None = None,
                   on: date | None = None) -> tuple[dict, Standing] | None:
    """(the member's row, their standing) on a day, by id or by member number (as typed or
    scanned, any case); None when there is no such member. One query."""
    day = on or today()
    if number is not None:
        # Numbers are stored upper case (MEMBER_PREFIX is): compared as stored, the unique index finds it.
        rows = await Member.raw(_standing_sql("m.member_number = upper({})"), day, hold_cutoff(day),
                                number.strip())
    else:
        rows = await Member.raw(_standing_sql("m.id = {}"), day, hold_cutoff(day), member_id)
    if not rows:
        return None
    return rows[0], _standing_of(rows[0])


async def check(member_id: int, on: date | None = None, rules: Rules | None = None) -> Answer:
    """The answer for one member (the API's door status, and tests)."""
    day = on or today()
    found = await standing(member_id, on=day)
    if found is None:
        from portal.lib.errors import NotFound

        raise NotFound("member")
    return decide(found[1], day, rules or Rules.from_settings())


# A scanner can read a card twice, and a member may be scanned again while the desk deals with
# them: the same answer for the same member within this many seconds is the same visit.
SAME_VISIT_SECONDS = 60

RECORD_VISIT_SQL = f"""
WITH recent AS (
    SELECT id FROM visit
    WHERE member = {{}} AND outcome = {{}} AND colour = {{}} AND at > {{}}::timestamptz - interval '{SAME_VISIT_SECONDS} seconds'
    ORDER BY at DESC LIMIT 1
), added AS (
    INSERT INTO visit (member, staff, location, at, colour, outcome, reason)
    SELECT {{}}, {{}}, {{}}, {{}}, {{}}, {{}}, {{}} WHERE NOT EXISTS (SELECT 1 FROM recent)
    RETURNING id
)
SELECT id FROM added UNION ALL SELECT id FROM recent
"""


async def record_visit(member_id: int, answer: Answer, *, staff_id: int | None, location_id: int | None) -> int:
    """Every check-in is a visit: let in (green, amber) or refused (red); a repeat of the same
    answer within SAME_VISIT_SECONDS is the visit already recorded. One query."""
    outcome = (Visit.Outcome.allowed if answer.allowed else Visit.Outcome.refused).value
    at = now()
    rows = await Visit.raw(RECORD_VISIT_SQL, member_id, outcome, answer.colour, at,
                           member_id, staff_id, location_id, at, answer.colour, outcome, answer.text)
    return rows[0]["id"]


OVERRIDE_REASON_MAX = 500


def clean_override_reason(text: str) -> str:
    reason = " ".join((text or "").split())
    if len(reason) < 3:
        raise RuleBroken(S_("Say why you are letting them in (a few words)."))
    if len(reason) > OVERRIDE_REASON_MAX:
        raise RuleBroken(f"Keep the reason under {OVERRIDE_REASON_MAX} characters.")
    return reason


async def override(visit_id: int, reason: str, staff_id: int | None) -> dict:
    """Let in a member the rule refused, with why: the visit says so, and the audit log records
    who did it. Only a refused visit can be overridden, once."""
    reason = clean_override_reason(reason)
    rows = await Visit.update({Visit.outcome: Visit.Outcome.override.value, Visit.override_reason: reason,
                               Visit.overridden_by: staff_id, Visit.overridden_at: now()}).where(
        (Visit.id == visit_id) & (Visit.outcome == Visit.Outcome.refused.value)
    ).returning(Visit.id, Visit.member, Visit.reason, Visit.override_reason)
    if not rows:
        raise RuleBroken(S_("This visit was not refused, or was already let in."))
    await audit.record("visit.override", "visit", visit_id, staff_id=staff_id, reason=reason,
                       details={"member": rows[0]["member"], "refused_for": rows[0]["reason"]})
    return rows[0]
