"""The gateways' own book, line by line (gateway_line): every record of money in that a gateway's
own account showed us, kept once per (channel, id) whichever source told of it first.

    statement lines   (statements.py: each completed line of money in)      channel mpesa
    Pull records      (pull.py: every record listed, known to us or not)    channel mpesa
    the cards pass    (cards.py: every successful charge of the day)        channel card
    bank statements   (not built yet)                                       channel bank

The reconciliation page (days.py) compares these with the ledger's payments. M-Pesa is one channel
here: neither a statement nor a Pull record says reliably whether a payment came by STK Push or
the Paybill menu (both read "Pay Bill Online"), so the page files an M-Pesa line under the
channel of the payment it is, and one with no payment under Paybill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from tables.reconcile import GatewayLine

INSERT = """
INSERT INTO gateway_line (channel, external_id, day, amount, source, account, payer, callback)
SELECT * FROM unnest({}::varchar[], {}::varchar[], {}::date[], {}::numeric[], {}::varchar[], {}::varchar[],
                     {}::varchar[], {}::int[])
ON CONFLICT (channel, external_id) DO NOTHING
"""


@dataclass(frozen=True)
class Line:
    channel: str
    external_id: str
    day: date
    amount: Decimal
    source: str
    account: str = ""
    payer: str = ""
    callback: int | None = None


async def record(lines: list[Line]) -> None:
    """Keep these lines (one statement whatever their number); a line known before stays as it was."""
    lines = [x for x in lines if x.external_id and x.amount is not None and x.amount > 0]
    if not lines:
        return
    await GatewayLine.raw(INSERT, [x.channel for x in lines], [x.external_id[:120] for x in lines],
                          [x.day for x in lines], [x.amount for x in lines], [x.source for x in lines],
                          [x.account[:120] for x in lines], [x.payer[:200] for x in lines],
                          [x.callback for x in lines])
