"""The catalogue and what is sold from it at the desk: day passes, personal training (single
sessions and packs), lockers, joining fees, drinks, supplements; and custom invoices.

A sale is an ordinary invoice (tables/billing.py) whose lines came from catalogue items, paid at
once through the payment service or left on the member's account. `sale` records who bought
(a member, or a walk-in with an optional name and phone), how it was paid and the cash tendered;
`sale_line` ties each invoice line to its item and category, so revenue can be read by category
and a later discount line can point at the line it discounts. Walk-in invoices belong to the
gym's one walk-in account (a member row numbered WALKIN: portal/sales/walkin.py), so every rule
that expects an invoice to have a member (ledger legs, payments, receipts, voids, refunds) holds.
"""

from decimal import Decimal
from enum import Enum

from piccolo.columns import Boolean, ForeignKey, Integer, Numeric, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from tables.billing import Invoice, InvoiceLine, Payment
from tables.locations import Location
from tables.members import Member
from tables.staff import Staff
from tables.visits import Visit

MONEY = (12, 2)


class CatalogueItem(Table, tablename="catalogue_item"):
    class Category(str, Enum):
        day_pass = "day_pass"
        personal_training = "personal_training"
        locker = "locker"
        joining_fee = "joining_fee"
        drinks = "drinks"
        supplements = "supplements"
        other = "other"

    class Kind(str, Enum):
        simple = "simple"
        pack = "pack"  # N sessions, used up one a visit

    name = Varchar(length=60, unique=True)
    category = Varchar(length=20, choices=Category)
    price = Numeric(digits=MONEY)
    currency = Varchar(length=3, default="KES")
    vat_rate = Numeric(digits=(5, 2), default=Decimal("0"), help_text="Percent, e.g. 16.00")
    vat_inclusive = Boolean(default=True)
    revenue_account = Varchar(length=30, default="revenue", help_text="Ledger account credited (portal/billing/ledger.py)")
    kind = Varchar(length=10, choices=Kind, default=Kind.simple)
    sessions = Integer(default=0, help_text="For a pack: the sessions it gives")
    active = Boolean(default=True)
    created_at = Timestamptz()


class Sale(Table, tablename="sale"):
    """One sale at the desk (kind sale) or custom invoice (kind custom), and the invoice it made."""

    invoice = ForeignKey(references=Invoice, on_delete=OnDelete.restrict, null=False, unique=True)
    kind = Varchar(length=10, default="sale")
    member = ForeignKey(references=Member, on_delete=OnDelete.restrict, null=True, help_text="Empty: a walk-in")
    buyer_name = Varchar(length=80, default="")
    buyer_phone = Varchar(length=12, default="")
    method = Varchar(length=10, help_text="cash, bank, cheque or account (left on the member's account)")
    payment = ForeignKey(references=Payment, on_delete=OnDelete.restrict, null=True)
    tendered = Numeric(digits=MONEY, null=True, default=None)
    change = Numeric(digits=MONEY, null=True, default=None)
    reason = Text(default="", help_text="Custom invoices: why")
    idempotency_key = Varchar(length=80, unique=True)
    staff = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    location = ForeignKey(references=Location, on_delete=OnDelete.restrict, null=True)
    created_at = Timestamptz()


class SaleLine(Table, tablename="sale_line"):
    sale = ForeignKey(references=Sale, on_delete=OnDelete.restrict, null=False, index=True)
    invoice_line = ForeignKey(references=InvoiceLine, on_delete=OnDelete.restrict, null=False, unique=True)
    item = ForeignKey(references=CatalogueItem, on_delete=OnDelete.restrict, null=True)
    category = Varchar(length=20, default="other")


class SessionPack(Table, tablename="session_pack"):
    """Sessions a member bought (a PT pack of 10): used up one a visit, never below zero."""

    member = ForeignKey(references=Member, on_delete=OnDelete.restrict, null=False, index=True)
    item = ForeignKey(references=CatalogueItem, on_delete=OnDelete.restrict, null=False)
    sale = ForeignKey(references=Sale, on_delete=OnDelete.restrict, null=False)
    sessions = Integer()
    used = Integer(default=0)
    created_at = Timestamptz()


class SessionUse(Table, tablename="session_use"):
    pack = ForeignKey(references=SessionPack, on_delete=OnDelete.restrict, null=False, index=True)
    visit = ForeignKey(references=Visit, on_delete=OnDelete.restrict, null=True)
    staff = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    at = Timestamptz()
