"""The audit trail: one function writes it; the table refuses edits (a trigger in the migrations)."""

from __future__ import annotations

from typing import Any

from tables.audit import AuditLog


async def record(action: str, entity: str, entity_id: Any, *, staff_id: int | None = None,
                 reason: str = "", details: dict | None = None) -> None:
    await AuditLog.insert(
        AuditLog(action=action, entity=entity, entity_id=str(entity_id), staff=staff_id,
                 reason=reason, details=details or {})
    )
