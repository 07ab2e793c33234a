from decimal import Decimal
from enum import Enum

from piccolo.columns import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Numeric,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from tables.locations import Location
from tables.staff import Staff


class Member(Table, tablename="member"):
    class Status(str, Enum):
        active = "active"
        suspended = "suspended"
        left = "left"

    class Channel(str, Enum):
        sms = "sms"
        email = "email"
        both = "both"

    member_number = Varchar(length=20, unique=True, help_text="Also the M-Pesa Paybill account number")
    first_name = Varchar(length=60)
    last_name = Varchar(length=60)
    phone = Varchar(length=12, index=True, help_text="2547XXXXXXXX / 2541XXXXXXXX")
    email = Varchar(length=255, null=True, default=None)
    status = Varchar(length=12, choices=Status, default=Status.active)
    notes = Text(default="")
    reminder_opt_out = Boolean(default=False)
    reminders_paused = Text(default="", help_text="Why reminders are paused for this member ('' = not paused)")
    message_channel = Varchar(length=5, choices=Channel, default=Channel.sms,
                              help_text="How invoices, pay links and reminders reach them (receipts go by email when they have one)")
    home_location = ForeignKey(references=Location, on_delete=OnDelete.restrict, null=True)
    created_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    created_at = Timestamptz()
    updated_at = Timestamptz()

    @classmethod
    def get_readable(cls):
        from piccolo.columns.readable import Readable

        return Readable(template="%s %s %s", columns=[cls.member_number, cls.first_name, cls.last_name])


class Plan(Table, tablename="plan"):
    name = Varchar(length=60, unique=True)
    price = Numeric(digits=(12, 2), default=Decimal("0"))
    currency = Varchar(length=3, default="KES")
    duration_months = Integer(default=1)
    duration_days = Integer(default=0)
    active = Boolean(default=True)
    created_at = Timestamptz()

    @classmethod
    def get_readable(cls):
        from piccolo.columns.readable import Readable

        return Readable(template="%s", columns=[cls.name])


class Membership(Table, tablename="membership"):
    class Status(str, Enum):
        unpaid = "unpaid"  # waiting for its first invoice to be paid
        pending = "pending"  # paid, starts in the future
        active = "active"
        expired = "expired"
        cancelled = "cancelled"

    member = ForeignKey(references=Member, on_delete=OnDelete.restrict, null=False, index=True)
    plan = ForeignKey(references=Plan, on_delete=OnDelete.restrict, null=False)
    start_date = Date()
    end_date = Date(index=True, help_text="Last day the membership covers")
    status = Varchar(length=12, choices=Status, default=Status.pending, index=True)
    price = Numeric(digits=(12, 2), help_text="Price agreed when the member was put on the plan")
    currency = Varchar(length=3, default="KES")
    created_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    created_at = Timestamptz()
