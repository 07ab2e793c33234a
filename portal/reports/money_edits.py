"""Money edits: every change a person made to money already counted, for owners to read weekly.

A week runs Monday to Sunday in the gym's time. What counts as an edit:
- ledger entries of EDIT_KINDS: refunds (desk, M-Pesa reversals and card refunds all post one),
  voided invoices, and discounts and write-offs as those entries appear; the amount is what left
  the till for a refund, the invoice's total for a void, and the entry's debit side otherwise;
- a day's close reopened (the audit log: a close once counted, opened again).
Who, when, the member, and why (the entry's memo carries the reason typed). One query for the
list and its totals per kind, whatever the size of the books.

The Monday email goes to managers and admins who opted in (staff.weekly_money_edits), once per
staff member per week (the outbox's dedupe key names the week's Monday).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from portal.lib.clock import today
from portal.reports.digest import MONEY_ACCOUNTS, queue_once, recipients, to_params
from portal.settings import get_settings
from portal.webhooks import named
from tables.messages import Message

log = logging.getLogger(__name__)

KIND = "money_edits"
EDIT_KINDS = ("refund", "void", "discount", "write_off")
LABELS = {"refund": "Refund", "void": "Invoice voided", "discount": "Discount", "write_off": "Written off",
          "day.reopened": "Close reopened"}
ORDER = list(LABELS)

EDITS_SQL = f"""
WITH ledger_edits AS (
    SELECT e.id AS ref, e.kind, e.at, e.memo AS why, e.staff, e.invoice, e.payment,
           coalesce(i.member, p.member) AS member,
           CASE e.kind
               WHEN 'refund' THEN -sum(l.amount) FILTER (WHERE l.account IN {MONEY_ACCOUNTS})
               WHEN 'void' THEN max(i.total)
               ELSE sum(l.amount) FILTER (WHERE l.amount > 0)
           END AS amount,
           NULL::text AS detail, NULL::date AS detail_day
    FROM ledger_entry e
    JOIN ledger_leg l ON l.entry = e.id
    LEFT JOIN invoice i ON i.id = e.invoice
    LEFT JOIN payment p ON p.id = e.payment
    WHERE e.kind IN {EDIT_KINDS!r} AND e.at >= {{since}} AND e.at < {{until}}
    GROUP BY e.id, i.member, p.member
), reopened AS (
    SELECT a.id AS ref, a.action AS kind, a.at, a.reason AS why, a.staff, NULL::int AS invoice, NULL::int AS payment,
           NULL::int AS member, NULL::numeric AS amount,
           loc.name AS detail, (a.details->>'day')::date AS detail_day
    FROM audit_log a
    LEFT JOIN location loc ON loc.id = (a.details->>'location')::int
    WHERE a.action = 'day.reopened' AND a.at >= {{since}} AND a.at < {{until}}
)
SELECT x.*, iv.number AS invoice_number, py.receipt_number, m.member_number,
       m.first_name || ' ' || m.last_name AS member_name,
       coalesce(nullif(trim(u.first_name || ' ' || u.last_name), ''), u.username, 'the system') AS who
FROM (SELECT * FROM ledger_edits UNION ALL SELECT * FROM reopened) x
LEFT JOIN invoice iv ON iv.id = x.invoice
LEFT JOIN payment py ON py.id = x.payment
LEFT JOIN member m ON m.id = x.member
LEFT JOIN staff s ON s.id = x.staff
LEFT JOIN piccolo_user u ON u.id = s."user"
ORDER BY x.at DESC, x.ref DESC
"""

def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_bounds(monday: date) -> tuple[datetime, datetime]:
    tz = get_settings().tz
    return datetime.combine(monday, time.min, tz), datetime.combine(monday + timedelta(days=7), time.min, tz)


async def week(monday: date) -> dict:
    """The week's edits, newest first, with totals per kind (in LABELS' order)."""
    since, until = week_bounds(monday)
    rows = await Message.raw(*named(EDITS_SQL, since=since, until=until))
    totals: dict[str, dict] = {}
    for r in rows:
        r["label"] = LABELS.get(r["kind"], r["kind"].replace("_", " ").capitalize())
        r["close"] = _close_of(r)
        t = totals.setdefault(r["kind"], {"kind": r["kind"], "label": r["label"], "n": 0, "amount": Decimal("0")})
        t["n"] += 1
        t["amount"] += r["amount"] or Decimal("0")
    ordered = sorted(totals.values(), key=lambda t: ORDER.index(t["kind"]) if t["kind"] in ORDER else 99)
    return {"monday": monday, "sunday": monday + timedelta(days=6), "edits": rows, "totals": ordered,
            "currency": get_settings().currency}


# --- the Monday email -------------------------------------------------------------------------------

def dedupe_key(staff_id: int, monday: date) -> str:
    return f"{KIND}:{staff_id}:{monday.isoformat()}"


def _close_of(row: dict) -> str:
    """'Westlands, 07 Dec 2026' for a reopened close ('' for anything else)."""
    parts = [row["detail"] or "", row["detail_day"].strftime("%d %b %Y") if row["detail_day"] else ""]
    return ", ".join(p for p in parts if p)


def snapshot(figures: dict, base_url: str) -> dict:
    """The week as the message's params: what the email says is what was true when it was queued."""
    edits = [{"label": r["label"], "at": r["at"], "who": r["who"], "why": (r["why"] or "")[:300],
              "amount": r["amount"], "member": r["member_name"] or "", "member_number": r["member_number"] or "",
              "document": r["receipt_number"] or r["invoice_number"] or _close_of(r)}
             for r in figures["edits"]]
    return to_params({"monday": figures["monday"], "sunday": figures["sunday"], "currency": figures["currency"],
                      "totals": figures["totals"], "edits": edits, "base_url": base_url})


async def send_weekly(on: date | None = None) -> dict:
    """On a Monday (or any day: the week before the one `on` is in), queue the week's money edits
    for every opted-in manager and admin who has not had it. Safe to run twice or at once."""
    monday = monday_of(on or today()) - timedelta(days=7)
    people = await recipients("weekly_money_edits")

    async def params() -> dict:
        return snapshot(await week(monday), get_settings().public_base_url)

    result = await queue_once(KIND, people, {p["staff_id"]: dedupe_key(p["staff_id"], monday) for p in people}, params)
    log.info("money edits of the week of %s: %d queued of %d recipients", monday, result["queued"], len(people))
    return result
