"""Payers for others: a parent or a company responsible for several members' invoices.

A member is linked to at most one payer at a time (`payer_member`, one row per member). An
invoice issued while the member is linked is addressed to the payer: `invoice_bill_to` keeps,
per invoice, who it was addressed to *as it was at issue* (name, address, KRA PIN), so linking
the member to someone else, or editing the payer, never rewrites an invoice already issued. A
payment made by a payer (one payment settling invoices of several members) is a `payment` with
no member, named by `payer_payment`.
"""

from enum import Enum

from piccolo.columns import ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from tables.billing import Invoice, Payment
from tables.members import Member
from tables.staff import Staff


class Payer(Table, tablename="payer"):
    class Kind(str, Enum):
        person = "person"  # a parent paying for a family
        company = "company"  # an employer paying for its staff

    kind = Varchar(length=10, choices=Kind, default=Kind.person)
    name = Varchar(length=120)
    phone = Varchar(length=12, default="", help_text="2547XXXXXXXX, or '' (companies may have none)")
    email = Varchar(length=254, default="")
    address = Text(default="", help_text="Postal address, printed under the name on invoices")
    kra_pin = Varchar(length=11, default="", help_text="Companies: the buyer's PIN printed on invoices")
    created_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    created_at = Timestamptz()


class PayerMember(Table, tablename="payer_member"):
    payer = ForeignKey(references=Payer, on_delete=OnDelete.restrict, null=False, index=True)
    member = ForeignKey(references=Member, on_delete=OnDelete.restrict, null=False, unique=True)
    linked_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    linked_at = Timestamptz()


class InvoiceBillTo(Table, tablename="invoice_bill_to"):
    invoice = ForeignKey(references=Invoice, on_delete=OnDelete.restrict, null=False, unique=True)
    payer = ForeignKey(references=Payer, on_delete=OnDelete.restrict, null=False, index=True)
    kind = Varchar(length=10)
    name = Varchar(length=120)
    address = Text(default="")
    kra_pin = Varchar(length=11, default="")
    phone = Varchar(length=12, default="")
    email = Varchar(length=254, default="")


class PayerPayment(Table, tablename="payer_payment"):
    payment = ForeignKey(references=Payment, on_delete=OnDelete.restrict, null=False, unique=True)
    payer = ForeignKey(references=Payer, on_delete=OnDelete.restrict, null=False, index=True)
