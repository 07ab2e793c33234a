"""Discounts on invoices and the promo codes that give them (portal/billing/discounts.py).

A discount waits (pending) until it is approved: then, and only then, it becomes a negative
invoice line (`discount_line`) and its own ledger entry (`entry`) against the discounts account.
A rejected one leaves no trace in the books."""

from enum import Enum

from piccolo.columns import (
    Array,
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

from tables.billing import Invoice, InvoiceLine
from tables.ledger import LedgerEntry
from tables.members import Member
from tables.staff import Staff

MONEY = (12, 2)


class PromoCode(Table, tablename="promo_code"):
    code = Varchar(length=30, unique=True)
    kind = Varchar(length=10)  # percent | amount
    value = Numeric(digits=MONEY)
    description = Text(default="")
    valid_from = Date()
    valid_to = Date()
    max_uses = Integer(null=True, default=None)
    max_per_member = Integer(null=True, default=None)
    plans = Array(base_column=Integer(), default=list, help_text="Empty with items empty: any invoice")
    items = Array(base_column=Integer(), default=list)
    active = Boolean(default=True)
    created_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    created_at = Timestamptz()


class Discount(Table, tablename="discount"):
    class Status(str, Enum):
        pending = "pending"
        approved = "approved"
        rejected = "rejected"

    invoice = ForeignKey(references=Invoice, on_delete=OnDelete.restrict, null=False, index=True)
    member = ForeignKey(references=Member, on_delete=OnDelete.restrict, null=False)
    invoice_line = ForeignKey(references=InvoiceLine, on_delete=OnDelete.restrict, null=True,
                              help_text="The line discounted; empty: the whole invoice")
    discount_line = ForeignKey(references=InvoiceLine, on_delete=OnDelete.restrict, null=True,
                               help_text="The negative line it became once approved")
    kind = Varchar(length=10)  # percent | amount
    value = Numeric(digits=MONEY)
    amount = Numeric(digits=MONEY)
    net = Numeric(digits=MONEY)
    vat = Numeric(digits=MONEY)
    currency = Varchar(length=3, default="KES")
    reason = Text()
    promo = ForeignKey(references=PromoCode, on_delete=OnDelete.restrict, null=True)
    status = Varchar(length=10, choices=Status, default=Status.pending)
    requested_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    approved_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    decided_at = Timestamptz(null=True, default=None)
    decision_note = Text(default="")
    entry = ForeignKey(references=LedgerEntry, on_delete=OnDelete.restrict, null=True)
    created_at = Timestamptz()
