"""The messages pages: the filtered list (one query for the page, one for the count, however
many messages there are), one message, and a member's recent messages."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

from portal.lib.errors import NotFound
from tables.messages import Message

PAGE_SIZE = 50
STATUSES = [s.value for s in Message.Status]
CHANNELS = [c.value for c in Message.Channel]
# Labels for the kinds we know; any other kind (a new reminder step) shows as written.
KIND_LABELS = {"receipt": "Receipt", "invoice": "Invoice", "pay_link": "Pay link", "digest": "Daily digest",
               "reminder_before": "Reminder: due soon", "reminder_due": "Reminder: due today",
               "reminder_overdue": "Reminder: overdue", "reminder_final": "Final notice"}
_KIND = re.compile(r"^[a-z0-9_]{1,30}$")
FAILED = ("failed", "bounced")


@dataclass
class MessageFilters:
    channel: str = ""
    status: str = ""
    kind: str = ""
    member: int | None = None
    page: int = 1
    errors: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, params) -> MessageFilters:
        f = cls()
        get = lambda k: (params.get(k) or "").strip()  # noqa: E731
        for name, allowed in (("channel", CHANNELS), ("status", STATUSES + ["problem"])):
            value = get(name)
            if value and value not in allowed:
                f.errors[name] = f"Unknown {name} {value[:20]!r}"
            elif value:
                setattr(f, name, value)
        kind = get("kind")
        if kind and not _KIND.match(kind):
            f.errors["kind"] = "A kind is a word like receipt or invoice"
        elif kind:
            f.kind = kind
        member = get("member")
        f.member = int(member) if member.isdigit() else None
        page = get("page")
        f.page = max(1, int(page)) if page.isdigit() and len(page) < 7 else 1
        return f

    def query_string(self, **override) -> str:
        values = {"channel": self.channel, "status": self.status, "kind": self.kind, "member": self.member or "",
                  **override}
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _where(f: MessageFilters) -> tuple[str, list]:
    clauses, args = ["TRUE"], []
    if f.channel:
        clauses.append("m.channel = {}")
        args.append(f.channel)
    if f.status == "problem":  # failed or bounced: what staff act on
        clauses.append("m.status IN ('failed', 'bounced')")
    elif f.status:
        clauses.append("m.status = {}")
        args.append(f.status)
    if f.kind:
        clauses.append("m.kind = {}")
        args.append(f.kind)
    if f.member:
        clauses.append("m.member = {}")
        args.append(f.member)
    return " AND ".join(clauses), args


ROWS = """
SELECT m.id, m.channel, m.kind, m.to_address, m.subject, left(m.body_text, 200) AS preview, m.status, m.attempts,
       m.last_error, m.provider_status, m.created_at, m.sent_at, m.delivered_at, m.invoice, m.payment,
       m.member AS member_id, mem.member_number, mem.first_name || ' ' || mem.last_name AS member_name
FROM message m LEFT JOIN member mem ON mem.id = m.member
WHERE {where}
ORDER BY m.id DESC
LIMIT {limit} OFFSET {offset}
"""


@dataclass
class MessagePage:
    rows: list[dict]
    count: int
    page: int
    pages: int


async def message_page(f: MessageFilters) -> MessagePage:
    where, args = _where(f)
    count = (await Message.raw(f"SELECT count(*) AS n FROM message m WHERE {where}", *args))[0]["n"]
    rows = await Message.raw(ROWS.format(where=where, limit=PAGE_SIZE, offset=(f.page - 1) * PAGE_SIZE), *args)
    return MessagePage(rows, count, f.page, max(1, -(-count // PAGE_SIZE)))


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
