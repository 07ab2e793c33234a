"""Invoices, payments and what each payment settled.

Amounts are NUMERIC(12,2) with the currency beside them. Balances are never stored as the truth:
the ledger (tables/ledger.py) is; `Invoice.paid`/`status` are kept in step with it in the same
transaction so lists can filter without summing, and tests check they agree.
"""

from decimal import Decimal
from enum import Enum

from piccolo.columns import (
    JSONB,
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
from tables.members import Member, Membership, Plan
from tables.staff import Staff

MONEY = (12, 2)


class DocumentCounter(Table, tablename="document_counter"):
    """Per-year sequences for INV-/RCP-/CRN- numbers; bumped with INSERT .. ON CONFLICT under a
    row lock, so numbers are never duplicated and a rolled-back transaction gives its number back."""

    kind = Varchar(length=8)
    year = Integer()
    last = Integer(default=0)


class Invoice(Table, tablename="invoice"):
    class Status(str, Enum):
        open = "open"
        partially_paid = "partially_paid"
        paid = "paid"
        void = "void"

    class Kind(str, Enum):
        new = "new"  # a member put on a plan
        renewal = "renewal"  # the next period of an existing membership
        other = "other"

    number = Varchar(length=20, unique=True)
    member = ForeignKey(references=Member, on_delete=OnDelete.restrict, null=False, index=True)
    kind = Varchar(length=10, choices=Kind, default=Kind.new)
    plan = ForeignKey(references=Plan, on_delete=OnDelete.restrict, null=True)
    membership = ForeignKey(references=Membership, on_delete=OnDelete.restrict, null=True,
                            help_text="For renewals: the membership this extends; for new: the one it starts")
    period_start = Date(null=True)
    issue_date = Date()
    due_date = Date(index=True)
    currency = Varchar(length=3, default="KES")
    subtotal = Numeric(digits=MONEY, default=Decimal("0"))
    tax_total = Numeric(digits=MONEY, default=Decimal("0"))
    total = Numeric(digits=MONEY, default=Decimal("0"))
    paid = Numeric(digits=MONEY, default=Decimal("0"))
    status = Varchar(length=16, choices=Status, default=Status.open, index=True)
    void_reason = Text(default="")
    reminders_paused = Text(default="", help_text="Why reminders are paused for this invoice ('' = not paused)")
    created_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    created_at = Timestamptz()
    # Room for KRA eTIMS: the control unit's invoice number and signature once transmitted.
    etims = JSONB(default={})


class InvoiceLine(Table, tablename="invoice_line"):
    invoice = ForeignKey(references=Invoice, on_delete=OnDelete.restrict, null=False, index=True)
    description = Varchar(length=200)
    quantity = Integer(default=1)
    unit_price = Numeric(digits=MONEY)
    vat_rate = Numeric(digits=(5, 2), default=Decimal("0"), help_text="Percent, e.g. 16.00")
    vat_inclusive = Boolean(default=True)
    net = Numeric(digits=MONEY)
    vat = Numeric(digits=MONEY)
    total = Numeric(digits=MONEY)
    # eTIMS item classification, when the gym registers its items.
    item_code = Varchar(length=40, default="")
    tax_category = Varchar(length=4, default="")


class Payment(Table, tablename="payment"):
    class Status(str, Enum):
        pending = "pending"
        processing = "processing"
        completed = "completed"
        failed = "failed"
        cancelled = "cancelled"
        expired = "expired"
        refunded = "refunded"
        partially_refunded = "partially_refunded"

    class Method(str, Enum):
        cash = "cash"
        bank = "bank"
        cheque = "cheque"
        mpesa = "mpesa"
        card = "card"

    member = ForeignKey(references=Member, on_delete=OnDelete.restrict, null=True, index=True)
    invoice = ForeignKey(references=Invoice, on_delete=OnDelete.restrict, null=True,
                         help_text="The invoice the payer chose; empty = oldest open first")
    method = Varchar(length=10, choices=Method, index=True)
    amount = Numeric(digits=MONEY)
    currency = Varchar(length=3, default="KES")
    refunded = Numeric(digits=MONEY, default=Decimal("0"))
    status = Varchar(length=20, choices=Status, default=Status.pending, index=True)
    reference = Varchar(length=60, default="", index=True, help_text="Cheque number, bank reference, M-Pesa code")
    receipt_number = Varchar(length=20, null=True, default=None, unique=True)
    idempotency_key = Varchar(length=80, unique=True)
    staff = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True, index=True)
    location = ForeignKey(references=Location, on_delete=OnDelete.restrict, null=True, index=True)
    note = Text(default="")
    created_at = Timestamptz(index=True)
    completed_at = Timestamptz(null=True, default=None, index=True)
    # Gateway payments (M-Pesa STK and C2B, cards)
    phone = Varchar(length=12, default="", help_text="The M-Pesa number asked or that paid")
    gateway_ref = Varchar(length=120, null=True, default=None, help_text="CheckoutRequestID, M-Pesa TransID or Flutterwave tx id")
    gateway_request = Varchar(length=120, null=True, default=None, help_text="MerchantRequestID / tx_ref")
    expires_at = Timestamptz(null=True, default=None, help_text="When an unanswered prompt is given up on")
    next_check_at = Timestamptz(null=True, default=None, help_text="When the worker next asks the gateway")
    checks = Integer(default=0)
    flag = Varchar(length=40, default="", help_text="amount_mismatch, late_success, ... for staff")
    card_brand = Varchar(length=20, default="")
    card_last4 = Varchar(length=4, default="")


class PaymentEvent(Table, tablename="payment_event"):
    """Every state change of a payment: old, new, why, and who (staff) or what (gateway event)."""

    payment = ForeignKey(references=Payment, on_delete=OnDelete.restrict, null=False, index=True)
    at = Timestamptz()
    old_status = Varchar(length=20)
    new_status = Varchar(length=20)
    reason = Text(default="")
    staff = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    gateway_event = Varchar(length=80, null=True, default=None, help_text="Id of the stored gateway callback that caused it")
    details = JSONB(default={})
    kind = Varchar(length=20, default="status",
                   help_text="status: a move of the state machine (or the payment's birth); settlement: what a "
                             "completed payment settled, and the balances right after")


class Allocation(Table, tablename="allocation"):
    """Money put against an invoice: from a payment, or from the member's credit (payment empty).
    A reversal (refund, void) is a negative allocation; nothing is edited."""

    invoice = ForeignKey(references=Invoice, on_delete=OnDelete.restrict, null=False, index=True)
    payment = ForeignKey(references=Payment, on_delete=OnDelete.restrict, null=True, index=True)
    amount = Numeric(digits=MONEY)
    entry = Integer(help_text="Ledger entry that moved the money")
    at = Timestamptz()


class CreditNote(Table, tablename="credit_note"):
    number = Varchar(length=20, unique=True)
    kind = Varchar(length=10)  # void | refund
    member = ForeignKey(references=Member, on_delete=OnDelete.restrict, null=False)
    invoice = ForeignKey(references=Invoice, on_delete=OnDelete.restrict, null=True)
    payment = ForeignKey(references=Payment, on_delete=OnDelete.restrict, null=True)
    amount = Numeric(digits=MONEY)
    currency = Varchar(length=3, default="KES")
    reason = Text()
    staff = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    created_at = Timestamptz()


class Document(Table, tablename="document"):
    """A rendered PDF, stored once per (kind, subject) and served from here."""

    kind = Varchar(length=20)
    subject = Varchar(length=120, help_text="e.g. payment:12, invoice:5:open:0.00:link9, credit_note:3, day_close:4:v2")
    filename = Varchar(length=80)
    content = Text(help_text="base64 of the PDF bytes")
    size = Integer()
    created_at = Timestamptz()


class PayLink(Table, tablename="pay_link"):
    """A link a member opens to pay an invoice. The URL's secret is derived from the nonce with
    SECRET_KEY (only its hash is compared) and signed with SECRET_KEY; it expires, and staff can
    revoke it. Sending a new one revokes the old."""

    invoice = ForeignKey(references=Invoice, on_delete=OnDelete.restrict, null=False, index=True)
    token_hash = Varchar(length=64, unique=True)
    nonce = Varchar(length=44, null=True, default=None)  # with SECRET_KEY, gives the URL's secret
    expires_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
    created_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    created_at = Timestamptz()
