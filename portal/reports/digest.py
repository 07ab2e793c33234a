"""The owner's daily digest: one email each morning to every manager and admin who opted in.

What it says, for the digest sent on day D (in the gym's time zone) about day D-1, "yesterday":
- collections: payments completed yesterday by method (count, amount as received), less the
  refunds paid back yesterday from that method's money account; net per method and in total
  (the analytics page's definitions, portal/reports/analytics.py).
- due this week: open invoices due from D to D+7 (the dues page's "due in 3" and "due in 7"
  cards together), what is still owed on them; and everything overdue (due before D).
- failed and expired payments: those that became failed or expired yesterday (their status
  now: one that later succeeded is money received, not a failure), the count and the latest ten.
- unmatched M-Pesa: Paybill payments waiting for staff to match them now, and their amount
  (portal.payments.mpesa.c2b.UNMATCHED_WHERE, the navigation badge's number).
- on hold: members with an invoice more than HOLD_GRACE_DAYS overdue (portal.members.holds.hold_sql).
- reconciled: whether a manager marked yesterday reconciled on /reconcile (and who); if not, the
  differences still open between the gateways' books and the ledger, their count and amount
  (portal.reconcile.days: the page's own figures).

Five queries whatever the data size (`figures`), computed once per run and stored in each
message's params: every recipient gets the same snapshot of 07:00, and a retried or resent
digest says what it said then rather than mixing in later figures.

Exactly once per staff member per day: the message's dedupe key is `digest:<staff id>:<D>`,
so a second run (or two workers at once) queues nothing more (portal/messages/outbox.py).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from portal.auth import real_email
from portal.lib.clock import today
from portal.members.holds import hold_cutoff, hold_sql
from portal.messages import outbox
from portal.payments.mpesa.c2b import UNMATCHED_WHERE
from portal.payments.service import METHOD_LABELS
from portal.reconcile import days
from portal.settings import get_settings
from tables.billing import Payment
from tables.messages import Message
from tables.statuses import OPEN_INVOICE_SQL

log = logging.getLogger(__name__)

KIND = "digest"
FAILED_LISTED = 10
DUE_DAYS = 7
MONEY_ACCOUNTS = "('cash', 'bank', 'cheque', 'mpesa', 'card')"

ROLES = ("manager", "admin")


def opt_in_problem(role: str, email: str | None) -> str | None:
    """Why this staff member cannot take the digest, or None when they can."""
    if role not in ROLES:
        return "The daily digest is for managers and admins"
    if not real_email(email):
        return "Add an email address to send the digest to"
    return None


# Who gets it: opted in, still a manager or admin (a demoted one keeps the flag but gets none),
# able to log in, and with a real address (see portal.auth.real_email: staff made without one
# have a placeholder on the .invalid domain, which no mail server accepts).
def recipients_sql(opted_in: str) -> str:
    """The managers and admins with `opted_in` (a staff column: daily_digest, weekly_money_edits)."""
    return f"""
SELECT s.id AS staff_id, u.email,
       coalesce(nullif(trim(u.first_name || ' ' || u.last_name), ''), u.username) AS name
FROM staff s JOIN piccolo_user u ON u.id = s."user"
WHERE s.{opted_in} AND s.role IN {ROLES} AND u.active
  AND u.email LIKE '%_@_%' AND lower(u.email) NOT LIKE '%.invalid'
ORDER BY s.id
"""


# Money in (by completion time) and refunds out (by the refund entry's time), per method.
COLLECTIONS_SQL = f"""
SELECT 'in' AS kind, p.method, count(*) AS n, sum(p.amount) AS amount
FROM payment p
WHERE p.completed_at >= {{}} AND p.completed_at < {{}}
GROUP BY p.method
UNION ALL
SELECT 'refund', l.account, count(DISTINCT e.id), -sum(l.amount)
FROM ledger_entry e JOIN ledger_leg l ON l.entry = e.id
WHERE e.kind = 'refund' AND l.account IN {MONEY_ACCOUNTS} AND e.at >= {{}} AND e.at < {{}}
GROUP BY l.account
"""

def standing_sql() -> str:
    """One row: dues, overdue, members on hold and unmatched Paybill payments. Args: D four times
    (the week, counted and summed), D twice (overdue, likewise), the hold cut-off. Built at each
    use: the hold rule carries HOLD_GRACE_DAYS, read when the SQL is made."""
    return f"""
SELECT count(*) FILTER (WHERE i.due_date BETWEEN {{}}::date AND {{}}::date + {DUE_DAYS}) AS due_n,
       coalesce(sum(i.total - i.paid) FILTER (WHERE i.due_date BETWEEN {{}}::date AND {{}}::date + {DUE_DAYS}), 0) AS due_owed,
       count(*) FILTER (WHERE i.due_date < {{}}::date) AS overdue_n,
       coalesce(sum(i.total - i.paid) FILTER (WHERE i.due_date < {{}}::date), 0) AS overdue_owed,
       (SELECT count(*) FROM member m WHERE {hold_sql()}) AS on_hold,
       (SELECT count(*) FROM gateway_callback WHERE {UNMATCHED_WHERE}) AS unmatched,
       -- The processor records each confirmation's TransAmount as text (empty until processed).
       (SELECT coalesce(sum(CASE WHEN amount ~ '^[0-9]+([.][0-9]+)?$' THEN amount::numeric END), 0)
        FROM gateway_callback WHERE {UNMATCHED_WHERE}) AS unmatched_amount
FROM invoice i
WHERE i.status IN {OPEN_INVOICE_SQL}
"""


# A failed or expired payment reached that status once (the only way out is a late success,
# which makes it completed), so its event into the current status says when it failed.
FAILED_SQL = f"""
SELECT p.id, p.status, p.method, p.amount, e.at, e.reason,
       m.id AS member_id, m.member_number, m.first_name || ' ' || m.last_name AS member_name,
       count(*) OVER () AS n, sum(p.amount) OVER () AS total
FROM payment p
JOIN payment_event e ON e.payment = p.id AND e.new_status = p.status
LEFT JOIN member m ON m.id = p.member
WHERE p.status IN ('failed', 'expired') AND e.at >= {{}} AND e.at < {{}}
ORDER BY e.at DESC, p.id DESC
LIMIT {FAILED_LISTED}
"""


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The gym's day as an instant range (midnight to midnight in TIMEZONE)."""
    tz = get_settings().tz
    return datetime.combine(day, time.min, tz), datetime.combine(day + timedelta(days=1), time.min, tz)


async def recipients(opted_in: str = "daily_digest") -> list[dict]:
    return await Payment.raw(recipients_sql(opted_in))


async def figures(on: date) -> dict:
    """The digest sent on `on`, about the day before. Five queries."""
    settings = get_settings()
    day = on - timedelta(days=1)
    since, until = day_bounds(day)
    zero = Decimal("0")

    money_rows = await Payment.raw(COLLECTIONS_SQL, since, until, since, until)
    standing = (await Payment.raw(standing_sql(), on, on, on, on, on, on, hold_cutoff(on)))[0]
    failed_rows = await Payment.raw(FAILED_SQL, since, until)
    day_cells, done = await days.cells(day, on), await days.reconciled(day, on)
    summary = days.summary(day, day_cells, done)

    methods: dict[str, dict] = {}
    for r in money_rows:
        m = methods.setdefault(r["method"], {"method": r["method"], "label": METHOD_LABELS.get(r["method"], r["method"]),
                                             "n": 0, "received": zero, "refund_n": 0, "refunds": zero})
        if r["kind"] == "in":
            m["n"], m["received"] = r["n"], r["amount"]
        else:
            m["refund_n"], m["refunds"] = r["n"], r["amount"]
    # The usual order at the desk, then anything else alphabetically.
    order = list(METHOD_LABELS)
    collections = sorted(methods.values(), key=lambda m: (order.index(m["method"]) if m["method"] in order else 99,
                                                          m["method"]))
    for m in collections:
        m["net"] = m["received"] - m["refunds"]
    total = {"n": sum(m["n"] for m in collections), "received": sum((m["received"] for m in collections), zero),
             "refund_n": sum(m["refund_n"] for m in collections),
             "refunds": sum((m["refunds"] for m in collections), zero)}
    total["net"] = total["received"] - total["refunds"]

    failed = [{"payment_id": r["id"], "status": r["status"], "method": METHOD_LABELS.get(r["method"], r["method"]),
               "amount": r["amount"], "at": r["at"], "reason": (r["reason"] or "")[:120],
               "member_id": r["member_id"], "member_number": r["member_number"] or "",
               "member_name": r["member_name"] or "No member"} for r in failed_rows]
    return {
        "on": on, "day": day, "currency": settings.currency, "base_url": settings.public_base_url,
        "collections": collections, "collected": total,
        "due": {"n": standing["due_n"], "owed": standing["due_owed"], "until": on + timedelta(days=DUE_DAYS)},
        "overdue": {"n": standing["overdue_n"], "owed": standing["overdue_owed"]},
        "failed": {"n": failed_rows[0]["n"] if failed_rows else 0,
                   "amount": failed_rows[0]["total"] if failed_rows else zero, "rows": failed},
        "unmatched": standing["unmatched"], "unmatched_amount": standing["unmatched_amount"],
        "on_hold": standing["on_hold"],
        "hold_grace_days": settings.hold_grace_days,
        "reconciled": {"yes": summary.reconciled is not None,
                       "by": summary.reconciled["username"] if summary.reconciled else "",
                       "open_n": summary.open_count, "open_amount": summary.open_amount},
    }


# --- params: the snapshot as JSON, and back --------------------------------------------------
# Money as strings (never floats), dates and times in ISO form; read back by key name.

_MONEY_KEYS = {"received", "refunds", "net", "owed", "amount", "unmatched_amount", "open_amount"}
_DATE_KEYS = {"on", "day", "until", "monday", "sunday"}  # "monday", "sunday": portal/reports/money_edits.py
_TIME_KEYS = {"at"}


def to_params(value):
    if isinstance(value, dict):
        return {k: to_params(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_params(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def from_params(value, key: str = ""):
    if isinstance(value, dict):
        return {k: from_params(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [from_params(v, key) for v in value]
    if isinstance(value, str) and key in _MONEY_KEYS:
        return Decimal(value)
    if isinstance(value, str) and key in _DATE_KEYS:
        return date.fromisoformat(value)
    if isinstance(value, str) and key in _TIME_KEYS:
        return datetime.fromisoformat(value)
    return value


# --- sending --------------------------------------------------------------------------------

def dedupe_key(staff_id: int, on: date) -> str:
    return f"digest:{staff_id}:{on.isoformat()}"


async def queue_once(kind: str, people: list[dict], keys: dict[int, str], snapshot) -> dict:
    """One email of `kind` to each of `people` who has not had the one their dedupe key names,
    all with the same figures (`await snapshot()`, taken only if someone is still waiting). Safe
    to run twice or concurrently: the dedupe key lets one message per person in."""
    done = {r["dedupe_key"] for r in await Message.select(Message.dedupe_key).where(
        Message.dedupe_key.is_in(list(keys.values())))} if keys else set()
    waiting = [p for p in people if keys[p["staff_id"]] not in done]
    if not waiting:
        return {"recipients": len(people), "queued": 0}
    params = await snapshot()
    queued = 0
    for person in waiting:
        if await outbox.send_message(None, kind, outbox.EMAIL, dedupe_key=keys[person["staff_id"]], to=person["email"],
                                     params={**params, "staff_name": person["name"]}) is not None:
            queued += 1
    return {"recipients": len(people), "queued": queued}


async def send_digests(on: date | None = None) -> dict:
    """Queue today's digest for every recipient who has not had it, and nudge the worker."""
    on = on or today()
    people = await recipients()

    async def snapshot() -> dict:
        return to_params(await figures(on))

    result = await queue_once(KIND, people, {p["staff_id"]: dedupe_key(p["staff_id"], on) for p in people}, snapshot)
    log.info("daily digest for %s: %d queued of %d recipients", on, result["queued"], len(people))
    return result
