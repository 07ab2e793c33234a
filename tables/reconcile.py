"""M-Pesa statements imported by managers (portal/reconcile/statements.py).

A statement is kept once per file (its SHA-256): importing the same file again finds it and
changes nothing. Its lines are keyed by receipt code (and direction: a payment is money in, its
reversal money out under a receipt of its own), each with what the import found for it.
"""

from piccolo.columns import JSONB, Date, ForeignKey, Integer, Numeric, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
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
