"""What reconciliation found in a gateway's own books that the portal's did not have (issue 16):
one row per gateway record and kind, so a pass run again finds it again and adds nothing."""

from piccolo.columns import Date, ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from tables.billing import Payment


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
