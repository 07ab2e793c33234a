"""Payment figures kept up to date with the payments themselves: counts and sums per UTC hour (by
the hour a payment was created and, separately, the hour it completed) and for all time, by
method, status, staff member and location. A statement trigger on `payment` (migration
2026-12-09T04) adds each change's difference in the same transaction as the money, so a figure
is never behind the payments it sums; readers sum a period's hours instead of its payments
(portal/reports/figures.py).

`slot` spreads concurrent writers over rows (the writer's backend pid modulo 16), so two
transactions recording money in the same hour seldom wait on one another; readers sum the slots.
`staff` and `location` are 0 where the payment has none; `status`, `staff` and `location` are ''
and 0 on the completed-hour rows, which only the money-received series reads.
"""

from piccolo.columns import BigInt, Numeric, SmallInt, Timestamptz, Varchar
from piccolo.table import Table

from tables.billing import MONEY


class PaymentFigure(Table, tablename="payment_figure"):
    basis = Varchar(length=10, help_text="created (by created hour), completed (by completed hour), all (hour = epoch)")
    hour = Timestamptz()
    method = Varchar(length=10)
    status = Varchar(length=20)
    staff = BigInt()
    location = BigInt()
    slot = SmallInt()
    n = BigInt()
    amount = Numeric(digits=(16, MONEY[1]))
    refunded = Numeric(digits=(16, MONEY[1]))
