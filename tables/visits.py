from enum import Enum

from piccolo.columns import ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from tables.locations import Location
from tables.members import Member
from tables.staff import Staff


class Visit(Table, tablename="visit"):
    """A member at the door: let in, turned away, or let in by a staff member's override (with why).
    The colour and reason are what the check-in rule answered then (portal/members/checkin.py)."""

    class Outcome(str, Enum):
        allowed = "allowed"
        refused = "refused"
        override = "override"  # refused by the rule, let in by staff with a reason

    member = ForeignKey(references=Member, on_delete=OnDelete.restrict, null=False)
    staff = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    location = ForeignKey(references=Location, on_delete=OnDelete.restrict, null=True)
    at = Timestamptz()
    colour = Varchar(length=5)
    outcome = Varchar(length=8, choices=Outcome)
    reason = Text(default="", help_text="The rule's reasons, one a line")
    override_reason = Text(default="")
    overridden_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    overridden_at = Timestamptz(null=True, default=None)
