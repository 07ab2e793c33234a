"""The double-entry ledger: entries made of legs that sum to zero (checked in code and by a
deferred constraint trigger). Debits are positive, credits negative. Nothing is ever edited:
a correction is a new entry that reverses the old one, with a reason and a staff member.

Accounts (codes): cash, bank, cheque, mpesa, card (money held, by location); receivable (what
members owe, by member); member_credit (overpayments held for members, by member; a credit
balance); revenue and vat_payable (income and tax); gateway_fees (what Flutterwave keeps).
"""

from piccolo.columns import Date, ForeignKey, Integer, Numeric, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from tables.locations import Location
from tables.members import Member
from tables.staff import Staff


class LedgerEntry(Table, tablename="ledger_entry"):
    at = Timestamptz(index=True)
    business_date = Date(null=True, default=None, index=True,
                         help_text="The day it counts toward in a close: today, or the next open day")
    kind = Varchar(length=30, help_text="invoice_issued, payment_received, credit_applied, void, refund, gateway_fee")
    memo = Text(default="")
    staff = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    invoice = Integer(null=True, index=True)
    payment = Integer(null=True, index=True)
    gateway_event = Varchar(length=80, null=True, default=None)
    reverses = Integer(null=True, help_text="The entry this one corrects")


class LedgerLeg(Table, tablename="ledger_leg"):
    entry = ForeignKey(references=LedgerEntry, on_delete=OnDelete.restrict, null=False, index=True)
    account = Varchar(length=20, index=True)
    member = ForeignKey(references=Member, on_delete=OnDelete.restrict, null=True, index=True)
    location = ForeignKey(references=Location, on_delete=OnDelete.restrict, null=True)
    amount = Numeric(digits=(12, 2), help_text="Debit positive, credit negative; never zero")
    currency = Varchar(length=3, default="KES")
