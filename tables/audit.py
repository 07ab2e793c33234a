from piccolo.columns import JSONB, ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from tables.staff import Staff


class AuditLog(Table, tablename="audit_log"):
    """Append-only: who did what, when and why. A trigger refuses UPDATE and DELETE."""

    at = Timestamptz(index=True)
    staff = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True, help_text="Empty for the system (jobs, gateways)")
    action = Varchar(length=60, index=True)
    entity = Varchar(length=40)
    entity_id = Varchar(length=40, index=True)
    reason = Text(default="")
    details = JSONB(default={})
