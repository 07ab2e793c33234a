"""Membership freezes: a membership paused between two dates (portal/members/changes.py).

The membership's end_date already includes the frozen days (freezing moves it later, ending a
freeze early moves it back), so "until when is a member covered" stays one column."""

from decimal import Decimal
from enum import Enum

from piccolo.columns import Date, ForeignKey, Integer, Numeric, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from tables.billing import Invoice
from tables.members import Member, Membership
from tables.staff import Staff


class MembershipFreeze(Table, tablename="membership_freeze"):
    class Status(str, Enum):
        active = "active"  # frozen from start_date to end_date (both included)
        cancelled = "cancelled"  # ended before it began: no day was frozen

    membership = ForeignKey(references=Membership, on_delete=OnDelete.restrict, null=False, index=True)
    member = ForeignKey(references=Member, on_delete=OnDelete.restrict, null=False)
    start_date = Date()
    end_date = Date(help_text="Last frozen day; moved earlier when the freeze is ended early")
    days = Integer(help_text="Days frozen: end_date - start_date + 1 (0 when cancelled)")
    status = Varchar(length=10, choices=Status, default=Status.active)
    reason = Text()
    fee = Numeric(digits=(12, 2), default=Decimal("0"))
    fee_invoice = ForeignKey(references=Invoice, on_delete=OnDelete.restrict, null=True)
    ended_early_reason = Text(default="")
    ended_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    ended_at = Timestamptz(null=True, default=None)
    created_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    created_at = Timestamptz()
