"""The ledger: post balanced entries, read balances with SQL.

Legs of one entry must sum to zero per currency. `post` checks it before writing, and a deferred
constraint trigger checks it again at COMMIT, so neither a bug here nor SQL typed by hand can
leave money unaccounted for.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from portal.billing import closes
from portal.lib.clock import now
from portal.lib.money import Money
from tables.ledger import LedgerEntry, LedgerLeg

ACCOUNTS = {"cash", "bank", "cheque", "mpesa", "card", "receivable", "member_credit", "revenue", "vat_payable",
            "gateway_fees"}
# Where revenue may be credited: plans go to "revenue"; a catalogue item names one of these
# (portal/sales/catalogue.py), so revenue can be read by stream from the ledger alone.
REVENUE_ACCOUNTS = {"revenue": "Revenue (memberships and general)", "revenue_training": "Personal training revenue",
                    "revenue_retail": "Retail revenue (drinks, supplements)", "revenue_fees": "Fees revenue (joining, lockers, day passes)"}
ACCOUNTS |= set(REVENUE_ACCOUNTS)
# Contra-revenue: every discount given is debited here (portal/billing/discounts.py), so revenue
# before discount is the revenue accounts alone and after discount is those less this one.
ACCOUNTS.add("discounts")
MONEY_ACCOUNTS = ("cash", "bank", "cheque", "mpesa", "card")


class UnbalancedEntry(ValueError):
    """An entry's debits and credits differ: money would appear from or vanish into nowhere."""


@dataclass(frozen=True)
class Leg:
    account: str
    amount: Money  # debit positive, credit negative
    member: int | None = None
    location: int | None = None


def debit(account: str, amount: Money, **kw) -> Leg:
    return Leg(account, amount, **kw)


def credit(account: str, amount: Money, **kw) -> Leg:
    return Leg(account, -amount, **kw)


@dataclass(frozen=True)
class Entry:
    """An entry checked and dated, not written yet: `write` writes it (`post` does both)."""
    kind: str
    legs: tuple[Leg, ...]
    memo: str
    business_date: date
    staff_id: int | None = None
    invoice_id: int | None = None
    payment_id: int | None = None
    gateway_event: str | None = None
    reverses: int | None = None


async def prepare(kind: str, legs: list[Leg], *, memo: str = "", staff_id: int | None = None,
                  invoice_id: int | None = None, payment_id: int | None = None,
                  gateway_event: str | None = None, reverses: int | None = None) -> Entry:
    """Check an entry (it balances, its accounts exist) and date it (the business day its money
    counts toward, a closed day moving it on), without writing it."""
    legs = [leg for leg in legs if leg.amount.amount != 0]
    if not legs:
        raise UnbalancedEntry("an entry needs legs")
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for leg in legs:
        if leg.account not in ACCOUNTS:
            raise ValueError(f"unknown account {leg.account!r}")
        totals[leg.amount.currency] += leg.amount.amount
    if any(totals.values()):
        raise UnbalancedEntry(f"legs do not sum to zero: {dict(totals)}")

    day, moved_from = await closes.business_day_for({leg.location for leg in legs
                                                     if leg.account in MONEY_ACCOUNTS and leg.location})
    if moved_from:
        memo = f"{memo} [{moved_from:%d %b %Y} was closed at this location: counted on {day:%d %b %Y}]".strip()
    return Entry(kind, tuple(legs), memo, day, staff_id, invoice_id, payment_id, gateway_event, reverses)


# An entry and its legs in one statement (the legs' sum is checked again at COMMIT by trigger).
WRITE_SQL = """
WITH entry AS (
    INSERT INTO ledger_entry (at, business_date, kind, memo, staff, invoice, payment, gateway_event, reverses)
    VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}) RETURNING id
), legs AS (
    INSERT INTO ledger_leg (entry, account, member, location, amount, currency)
    SELECT entry.id, leg.account, leg.member, leg.location, leg.amount, leg.currency
    FROM entry, unnest({}::text[], {}::bigint[], {}::bigint[], {}::numeric[], {}::text[])
                AS leg (account, member, location, amount, currency)
)
SELECT id FROM entry
"""


def leg_arrays(legs) -> tuple[list, list, list, list, list]:
    """Legs as the five arrays WRITE_SQL (and the receipt's own statement) unnest."""
    return ([leg.account for leg in legs], [leg.member for leg in legs], [leg.location for leg in legs],
            [leg.amount.amount for leg in legs], [leg.amount.currency for leg in legs])


async def write(entry: Entry) -> int:
    rows = await LedgerEntry.raw(WRITE_SQL, now(), entry.business_date, entry.kind, entry.memo, entry.staff_id,
                                 entry.invoice_id, entry.payment_id, entry.gateway_event, entry.reverses,
                                 *leg_arrays(entry.legs))
    return rows[0]["id"]


async def post(kind: str, legs: list[Leg], *, memo: str = "", staff_id: int | None = None,
               invoice_id: int | None = None, payment_id: int | None = None,
               gateway_event: str | None = None, reverses: int | None = None) -> int:
    return await write(await prepare(kind, legs, memo=memo, staff_id=staff_id, invoice_id=invoice_id,
                                     payment_id=payment_id, gateway_event=gateway_event, reverses=reverses))


BALANCES_SQL = """
SELECT coalesce(sum(amount) FILTER (WHERE account = 'receivable'), 0) AS receivable,
       coalesce(-sum(amount) FILTER (WHERE account = 'member_credit'), 0) AS credit
FROM ledger_leg WHERE member = {} AND account IN ('receivable', 'member_credit')
"""


async def member_balances(member_id: int, currency: str = "KES") -> tuple[Money, Money]:
    """(owed on invoices, credit held) for a member, summed in SQL."""
    row = (await LedgerLeg.raw(BALANCES_SQL, member_id))[0]
    return Money(row["receivable"], currency), Money(row["credit"], currency)


async def trial_balance() -> dict[str, Decimal]:
    """Sum per account; the grand total is zero when the ledger is balanced."""
    rows = await LedgerLeg.raw("SELECT account, sum(amount) AS total FROM ledger_leg GROUP BY account ORDER BY account")
    return {r["account"]: r["total"] for r in rows}


async def books_disagreements() -> list[str]:
    """What is wrong with the books, in words (empty when they agree): the ledger balances, every
    invoice's paid amount is what was allocated to it, and every payment was credited exactly once
    and refunded at most what its refund entries took out, and the payment figures the reports read
are their payments' sums. The suite checks it after every money
    story, and `portal restore` after a restore."""
    problems = []
    totals = await trial_balance()
    if sum(totals.values(), Decimal(0)) != 0:
        problems.append(f"the ledger does not balance: {totals}")
    off = await LedgerLeg.raw(
        "SELECT i.id, i.paid, coalesce(sum(a.amount), 0) AS allocated FROM invoice i "
        "LEFT JOIN allocation a ON a.invoice = i.id WHERE i.status <> 'void' "
        "GROUP BY i.id HAVING i.paid <> coalesce(sum(a.amount), 0)")
    if off:
        problems.append(f"invoices whose paid amount is not their allocations: {off}")
    credited = await LedgerLeg.raw(
        "SELECT p.id, p.status, count(e.id) AS credits FROM payment p "
        "LEFT JOIN ledger_entry e ON e.payment = p.id AND e.kind = 'payment_received' GROUP BY p.id "
        "HAVING count(e.id) <> CASE WHEN p.status IN ('completed', 'partially_refunded', 'refunded') THEN 1 ELSE 0 END")
    if credited:
        problems.append(f"payments not credited exactly once: {credited}")
    refunded = await LedgerLeg.raw(
        "SELECT p.id, p.refunded FROM payment p LEFT JOIN ledger_entry e ON e.payment = p.id AND e.kind = 'refund' "
        "LEFT JOIN ledger_leg l ON l.entry = e.id AND l.account = p.method "
        "GROUP BY p.id HAVING p.refunded <> -coalesce(sum(l.amount), 0)")
    if refunded:
        problems.append(f"payments whose refunded amount is not their refund entries: {refunded}")
    from portal.payments import figures  # the figures the reports read must be their payments' sums

    off_figures = await figures.disagreements()
    if off_figures:
        problems.append(f"payment figures that are not their payments' sums: {off_figures}")
    return problems
