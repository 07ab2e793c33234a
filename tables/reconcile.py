"""Reconciliation's tables (issue 16).

- M-Pesa statements imported by managers (portal/reconcile/statements.py). A statement is kept
  once per file (its SHA-256): importing the same file again finds it and changes nothing. Its
  lines are keyed by receipt code (and direction: a payment is money in, its reversal money out
  under a receipt of its own), each with what the import found for it.
- What reconciliation found in a gateway's own books that the portal's did not have: one row per
  gateway record and kind, so a pass run again finds it again and adds nothing.
"""

from piccolo.columns import (
    JSONB,
    Boolean,
    Bytea,
    Date,
    ForeignKey,
    Integer,
    Numeric,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from tables.billing import MONEY, Payment
from tables.members import Member
from tables.staff import Staff


class MpesaStatement(Table, tablename="mpesa_statement"):
    file_hash = Varchar(length=71, unique=True, help_text="sha256:<hex> of the file as uploaded")
    filename = Varchar(length=200, default="")
    period_start = Date()
    period_end = Date()
    line_count = Integer()
    paid_in = Numeric(digits=MONEY)
    withdrawn = Numeric(digits=MONEY)
    imported_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    imported_at = Timestamptz()
    seconds = Numeric(digits=(8, 3), help_text="How long the import took")
    summary = JSONB(default={}, help_text="Lines by outcome")


class MpesaStatementLine(Table, tablename="mpesa_statement_line"):
    statement = ForeignKey(references=MpesaStatement, on_delete=OnDelete.cascade)
    line_no = Integer(help_text="Line of the file (1 = the first line)")
    receipt = Varchar(length=20)
    direction = Varchar(length=3)  # in | out
    completed_at = Timestamptz()
    details = Text(default="")
    status = Varchar(length=40, default="")
    paid_in = Numeric(digits=MONEY)
    withdrawn = Numeric(digits=MONEY)
    reason_type = Varchar(length=80, default="")
    other_party = Varchar(length=200, default="")
    linked_receipt = Varchar(length=20, default="")
    account = Varchar(length=60, default="")
    outcome = Varchar(length=20)
    payment = ForeignKey(references=Payment, on_delete=OnDelete.restrict, null=True)
    member = ForeignKey(references=Member, on_delete=OnDelete.restrict, null=True)
    callback = Integer(null=True, default=None, help_text="The gateway_callback this line was stored as")
    note = Text(default="")


class ReconcileFinding(Table, tablename="reconcile_finding"):
    source = Varchar(length=20)  # flutterwave
    # card_credited: a success no webhook or redirect brought, credited by the pass
    # card_unknown: a success at Flutterwave for no payment of ours (staff look)
    # refund_unrecorded: a refund Flutterwave made that the portal did not ask for (staff look)
    kind = Varchar(length=30)
    external_id = Varchar(length=120, help_text="The gateway's id (Flutterwave transaction or refund id)")
    day = Date(help_text="The day of the pass that found it")
    payment = ForeignKey(references=Payment, on_delete=OnDelete.restrict, null=True, index=True)
    amount = Varchar(length=20, default="")
    currency = Varchar(length=3, default="")
    note = Text(default="")
    found_at = Timestamptz(default=TimestamptzNow())


class GatewayLine(Table, tablename="gateway_line"):
    """One record of money in as a gateway's own book showed it (statement line, Pull record, the
    cards daily pass, a bank statement line): the reconciliation page's gateway side. M-Pesa is one
    channel here; the page splits it into Paybill and STK by the payment it is (an M-Pesa book does
    not say which)."""
    channel = Varchar(length=20)  # mpesa | card | bank
    external_id = Varchar(length=120, help_text="Receipt code, Flutterwave id, bank reference")
    day = Date(help_text="The business day the money arrived (TIMEZONE)")
    amount = Numeric(digits=MONEY)
    source = Varchar(length=20)  # statement | pull | card_pass | bank_statement
    account = Varchar(length=120, default="")
    payer = Varchar(length=200, default="")
    callback = Integer(null=True, default=None, help_text="The gateway_callback it was stored as, if any")
    recorded_at = Timestamptz(default=TimestamptzNow())


class ReconcileResolution(Table, tablename="reconcile_resolution"):
    """How a manager settled one difference on the reconciliation page: once per difference."""
    day = Date()
    channel = Varchar(length=20)
    key = Varchar(length=130, unique=True, help_text="mpesa:<receipt>, card:<id>, bank:<ref> or payment:<id>")
    action = Varchar(length=20)  # credited | not_ours | refunded | explained
    reason = Text()
    amount = Numeric(digits=MONEY)
    payment = ForeignKey(references=Payment, on_delete=OnDelete.restrict, null=True)
    staff = ForeignKey(references=Staff, on_delete=OnDelete.restrict)
    created_at = Timestamptz(default=TimestamptzNow())


class ReconcileDay(Table, tablename="reconcile_day"):
    """A day a manager marked reconciled (every channel equal): who and when."""
    day = Date(unique=True)
    staff = ForeignKey(references=Staff, on_delete=OnDelete.restrict)
    note = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())


class BankFormat(Table, tablename="bank_format"):
    """How one bank's CSV export is laid out (columns by their header text), saved once per bank."""
    name = Varchar(length=80, unique=True)
    date_column = Varchar(length=80)
    date_format = Varchar(length=20)  # one of portal.reconcile.bank_csv.DATE_FORMATS
    description_column = Varchar(length=80)
    reference_column = Varchar(length=80, default="")
    credit_column = Varchar(length=80, default="")  # credit and debit columns ...
    debit_column = Varchar(length=80, default="")
    amount_column = Varchar(length=80, default="")  # ... or one signed amount
    saved_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    saved_at = Timestamptz(default=TimestamptzNow())


class BankStatement(Table, tablename="bank_statement"):
    file_hash = Varchar(length=71, unique=True)
    format = ForeignKey(references=BankFormat, on_delete=OnDelete.restrict)
    filename = Varchar(length=200, default="")
    period_start = Date()
    period_end = Date()
    line_count = Integer()
    credits = Numeric(digits=MONEY)
    imported_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    imported_at = Timestamptz(default=TimestamptzNow())
    summary = JSONB(default={})


class StatementUpload(Table, tablename="statement_upload"):
    """A large statement uploaded on the web, imported by the worker (portal/reconcile/uploads.py):
    the file until its import ends, and how far the import has got (the page's bar)."""
    filename = Varchar(length=200, default="")
    data = Bytea(help_text="The file as uploaded; emptied once the import ends")
    staff = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    state = Varchar(length=10, default="waiting")  # waiting | running | done | refused | failed
    phase = Varchar(length=10, default="")  # reading | matching (while running)
    done = Integer(default=0, help_text="Lines read, then matched, so far")
    total = Integer(default=0)
    statement = ForeignKey(references=MpesaStatement, on_delete=OnDelete.set_null, null=True)
    new = Boolean(null=True, default=None)
    error = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
