"""End-of-day closes: one row per location and business day once it has been closed.

`expected` is what the ledger said when the day was closed (per money account, and cash per
staff member); `counted` what the staff counted (cash per staff member, with denominations when
they were entered). Closing locks the day: money posted later for that location goes to its next
open day (portal/ledger.py). Only an admin can reopen a day, with a reason; every close and
reopen is in the audit log.
"""

from enum import Enum

from piccolo.columns import JSONB, Date, ForeignKey, Integer, Numeric, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from tables.locations import Location
from tables.staff import Staff


class DayClose(Table, tablename="day_close"):
    class Status(str, Enum):
        closed = "closed"
        reopened = "reopened"

    location = ForeignKey(references=Location, on_delete=OnDelete.restrict, null=False)
    business_date = Date()
    status = Varchar(length=10, choices=Status, default=Status.closed)
    expected = JSONB(default={})
    counted = JSONB(default={})
    cash_expected = Numeric(digits=(12, 2))
    cash_counted = Numeric(digits=(12, 2))
    variance = Numeric(digits=(12, 2), help_text="Counted minus expected cash (negative: short)")
    note = Text(default="")
    closed_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    closed_at = Timestamptz()
    reopened_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True, default=None)
    reopened_at = Timestamptz(null=True, default=None)
    reopen_reason = Text(default="")
    version = Integer(default=1, help_text="Bumped by each close after a reopen (the report PDF's version)")
