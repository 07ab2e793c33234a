"""The audit trail: one function writes it (and complete_payment's numbering statement its own entry); the table refuses edits (a trigger in the migrations).
Managers read it at /audit (portal/web/audit.py)."""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass
from typing import Any

from portal.lib import paging
from portal.lib.i18n import S_
from tables.audit import AuditLog

# The API key a request came with (set by the API's guard, portal/web/api_v1.py): every write
# the request makes is recorded with it, whichever domain function records it.
api_key: contextvars.ContextVar[dict | None] = contextvars.ContextVar("audit_api_key", default=None)


def with_caller(details: dict | None) -> dict:
    """An entry's details as recorded: with the API key the request came with, if any. (For a
    statement that writes its entry itself: complete_payment's last, which fills in the receipt.)"""
    details = details or {}
    if (key := api_key.get()) is not None:
        details = {**details, "api_key": key}
    return details


async def record(action: str, entity: str, entity_id: Any, *, staff_id: int | None = None,
                 reason: str = "", details: dict | None = None) -> None:
    details = with_caller(details)
    await AuditLog.insert(
        AuditLog(action=action, entity=entity, entity_id=str(entity_id), staff=staff_id,
                 reason=reason, details=details)
    )


async def record_many(action: str, entity: str, items: list[tuple[Any, dict]], *, staff_id: int | None = None,
                      reason: str = "") -> None:
    """`record` for many things at once (one insert): items are (entity id, details)."""
    if not items:
        return
    key = api_key.get()
    await AuditLog.insert(*[
        AuditLog(action=action, entity=entity, entity_id=str(entity_id), staff=staff_id, reason=reason,
                 details={**details, "api_key": key} if key is not None else details)
        for entity_id, details in items])


# The audit page (/audit): newest first, one page at a time, narrowed to one staff member and to
# one kind of thing changed. Four queries whatever the log holds: the count, the page, and the two
# filters' choices.
PAGE_SIZE = 50
_ENTITY = re.compile(r"^[a-z_]{1,40}$")


@dataclass
class AuditFilters(paging.Filters):
    staff: int | None = None
    entity: str = ""

    def read(self, params) -> None:
        raw_staff = paging.param(params, "staff")
        self.staff = paging.whole_number(params, "staff", max_digits=9)
        if raw_staff and self.staff is None:
            self.errors["staff"] = S_("Choose a staff member from the list")
        entity = paging.param(params, "entity")
        if entity and not _ENTITY.match(entity):
            self.errors["entity"] = S_("Choose what was changed from the list")
        elif entity:
            self.entity = entity

    def values(self) -> dict:
        return {"staff": self.staff or "", "entity": self.entity}


def _where(f: AuditFilters) -> tuple[str, list]:
    where = paging.Where()
    where.equal("a.staff", f.staff)
    where.equal("a.entity", f.entity)
    return where.sql()


AUDIT_ROWS = """
SELECT a.id, a.at, a.action, a.entity, a.entity_id, a.reason, a.details::text AS details, a.staff AS staff_id,
       nullif(trim(coalesce(u.first_name, '') || ' ' || coalesce(u.last_name, '')), '') AS staff_name, u.username
FROM audit_log a LEFT JOIN staff s ON s.id = a.staff LEFT JOIN piccolo_user u ON u.id = s.user
WHERE {where}
ORDER BY a.at DESC, a.id DESC
LIMIT {limit} OFFSET {offset}
"""
STAFF_CHOICES = """
SELECT s.id, coalesce(nullif(trim(coalesce(u.first_name, '') || ' ' || coalesce(u.last_name, '')), ''), u.username) AS name
FROM staff s JOIN piccolo_user u ON u.id = s.user ORDER BY lower(u.first_name), lower(u.username)
"""


async def audit_page(f: AuditFilters) -> paging.Page:
    where, args = _where(f)
    page = paging.Page(page=f.page, size=PAGE_SIZE)
    page.count = (await AuditLog.raw(f"SELECT count(*) AS n FROM audit_log a WHERE {where}", *args))[0]["n"]
    page.rows = await AuditLog.raw(AUDIT_ROWS.format(where=where, limit=page.size, offset=page.offset), *args)
    return page


async def filter_choices() -> dict:
    """The staff members and the kinds of thing the log mentions, for the filters' lists."""
    entities = await AuditLog.raw("SELECT DISTINCT entity FROM audit_log ORDER BY entity")
    return {"staff": await AuditLog.raw(STAFF_CHOICES), "entities": [r["entity"] for r in entities]}
