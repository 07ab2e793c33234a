"""The messages pages: the filtered list (one query for the page, one for the count, however
many messages there are), one message, and a member's recent messages."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import partial

from portal.lib import paging
from portal.lib.errors import NotFound
from portal.lib.i18n import S_
from tables.messages import Message

PAGE_SIZE = 50
STATUSES = [s.value for s in Message.Status]
CHANNELS = [c.value for c in Message.Channel]
# Labels for the kinds we know; any other kind (a new reminder step) shows as written.
KIND_LABELS = {"receipt": "Receipt", "invoice": "Invoice", "pay_link": "Pay link", "digest": "Daily digest",
               "reminder_before": "Reminder: due soon", "reminder_due": "Reminder: due today",
               "reminder_overdue": "Reminder: overdue", "reminder_final": "Final notice",
               "miss_you": "We miss you", "money_edits": "Weekly money edits"}
_KIND = re.compile(r"^[a-z0-9_]{1,30}$")
FAILED = ("failed", "bounced")


@dataclass
class MessageFilters(paging.Filters):
    channel: str = ""
    status: str = ""
    kind: str = ""

    def read(self, params) -> None:
        get = partial(paging.param, params)
        for name, allowed in (("channel", CHANNELS), ("status", STATUSES + ["problem"])):
            value = get(name)
            if value and value not in allowed:
                self.errors[name] = f"Unknown {name} {value[:20]!r}"
            elif value:
                setattr(self, name, value)
        kind = get("kind")
        if kind and not _KIND.match(kind):
            self.errors["kind"] = S_("A kind is a word like receipt or invoice")
        elif kind:
            self.kind = kind

    def values(self) -> dict:
        return {"channel": self.channel, "status": self.status, "kind": self.kind}


def _where(f: MessageFilters) -> tuple[str, list]:
    where = paging.Where()
    where.equal("m.channel", f.channel)
    if f.status == "problem":  # failed or bounced: what staff act on
        where.add("m.status IN ('failed', 'bounced')")
    else:
        where.equal("m.status", f.status)
    where.equal("m.kind", f.kind)
    where.equal("m.member", f.member)
    return where.sql()


ROWS = """
SELECT m.id, m.channel, m.kind, m.to_address, m.subject, left(m.body_text, 200) AS preview, m.status, m.attempts,
       m.last_error, m.provider_status, m.created_at, m.sent_at, m.delivered_at, m.invoice, m.payment,
       m.member AS member_id, mem.member_number, mem.first_name || ' ' || mem.last_name AS member_name
FROM message m LEFT JOIN member mem ON mem.id = m.member
WHERE {where}
ORDER BY m.id DESC
LIMIT {limit} OFFSET {offset}
"""


async def message_page(f: MessageFilters, size: int = PAGE_SIZE) -> paging.Page:
    where, args = _where(f)
    page = paging.Page(page=f.page, size=size)
    page.count = (await Message.raw(f"SELECT count(*) AS n FROM message m WHERE {where}", *args))[0]["n"]
    page.rows = await Message.raw(ROWS.format(where=where, limit=page.size, offset=page.offset), *args)
    return page


DETAIL = """
SELECT m.*, mem.member_number, mem.first_name || ' ' || mem.last_name AS member_name,
       i.number AS invoice_number, p.receipt_number
FROM message m
LEFT JOIN member mem ON mem.id = m.member
LEFT JOIN invoice i ON i.id = m.invoice
LEFT JOIN payment p ON p.id = m.payment
WHERE m.id = {}
"""


async def message_detail(message_id: int) -> dict:
    rows = await Message.raw(DETAIL, message_id)
    if not rows:
        raise NotFound("message")
    row = rows[0]
    for name in ("attachments", "params"):  # jsonb arrives as text from a raw query
        if isinstance(row[name], str):
            row[name] = json.loads(row[name])
    return row


MEMBER_RECENT = """
SELECT id, channel, kind, to_address, subject, left(body_text, 120) AS preview, status, last_error, created_at,
       sent_at, count(*) FILTER (WHERE status IN ('failed', 'bounced')) OVER () AS failures
FROM message WHERE member = {}
ORDER BY id DESC
LIMIT {}
"""


async def member_messages(member_id: int, limit: int = 8) -> tuple[list[dict], int]:
    """A member's latest messages, and how many of all theirs failed (one query: the window
    counts before the limit applies)."""
    rows = await Message.raw(MEMBER_RECENT, member_id, limit)
    return rows, (rows[0]["failures"] if rows else 0)
