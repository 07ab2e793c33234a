"""The audit log is append-only, enforced by the database itself."""

import asyncpg
import pytest

from portal import audit
from tables.audit import AuditLog


async def test_the_database_refuses_to_edit_or_delete_audit_rows(db):
    await audit.record("member.created", "member", 1, reason="test")
    with pytest.raises(asyncpg.exceptions.RaiseError, match="append-only"):
        await AuditLog.update({AuditLog.reason: "rewritten"}).where(AuditLog.id > 0)
    with pytest.raises(asyncpg.exceptions.RaiseError, match="append-only"):
        await AuditLog.delete().where(AuditLog.id > 0)
    rows = await AuditLog.select()
    assert [r["reason"] for r in rows] == ["test"]
