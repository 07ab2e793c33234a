"""The M-Pesa statement import at size: a file of 50,000 lines in under 30 s (issue 16).

The gym: 2,000 members and 40,000 payments of bulk demo history (`demo.bulk.load_bulk`, the loader
of `portal demo-data`). The statement: every completed M-Pesa payment of that history as a Paid In
line, each with its "Pay Bill Charge" Withdrawn line (as the org portal lists them), filled up to
50,000 lines with withdrawals to the bank, plus 20 Paybill payments the portal never heard of whose
account is a member number (credited through the confirmation's path during the import) and 10
with an account nobody has (left for staff). Timed: the whole import (read, check, match, credit,
store) as one call, as the upload runs it. Run: `make bench` or
`pytest tests/bench/test_statement_import.py -m bench -s`.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import timedelta
from decimal import Decimal

import pytest

from demo.bulk import load_bulk
from portal.lib.clock import now
from portal.reconcile import statements
from portal.settings import get_settings
from tables.reconcile import MpesaStatementLine
from tests.billing.helpers import assert_books_agree

pytestmark = pytest.mark.bench

LINES = 50_000
LIMIT_SECONDS = 30
COLUMNS = ["Receipt No.", "Completion Time", "Initiation Time", "Details", "Transaction Status", "Paid In", "Withdrawn",
           "Balance", "Balance Confirmed", "Reason Type", "Other Party Info", "Linked Transaction ID", "A/C No."]


def _money(amount: Decimal) -> str:
    return f"{amount:,.2f}"


async def _statement() -> tuple[bytes, int]:
    tz = get_settings().tz
    payments = await MpesaStatementLine.raw(
        "SELECT p.reference, p.amount, p.completed_at, m.member_number, m.phone FROM payment p "
        "JOIN member m ON m.id = p.member WHERE p.method = 'mpesa' AND p.status = 'completed' "
        "AND p.reference <> '' ORDER BY p.completed_at, p.id")
    members = await MpesaStatementLine.raw("SELECT member_number, phone FROM member ORDER BY id LIMIT 20")
    rows, balance, n = [], Decimal(0), 0

    def line(receipt, at, details, paid_in, withdrawn, reason, party, account):
        nonlocal balance
        balance += paid_in - withdrawn
        when = at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        rows.append([receipt, when, when, details, "Completed", _money(paid_in) if paid_in else "",
                     "-" + _money(withdrawn) if withdrawn else "", _money(balance), "true", reason, party, "", account])

    for p in payments:
        if len(rows) >= LINES - 2 - 30:
            break
        line(p["reference"], p["completed_at"], f"Pay Bill from {p['phone']} Acc. {p['member_number']}", p["amount"],
             Decimal(0), "Pay Bill Online", f"{p['phone']} - MEMBER", p["member_number"])
        n += 1
        line("C" + p["reference"][1:], p["completed_at"] + timedelta(seconds=1), "Pay Bill Charge", Decimal(0),
             Decimal("15.00"), "Pay Bill Charge", "", "")
    base = now() - timedelta(days=1)
    for i, m in enumerate(members):
        line(f"TNEW{i:06d}", base + timedelta(minutes=i), f"Pay Bill Acc. {m['member_number']}", Decimal("3000"),
             Decimal(0), "Pay Bill Online", "2547 ***** 000 - NEW", m["member_number"])
    for i in range(10):
        line(f"TUNK{i:06d}", base + timedelta(minutes=30 + i), "Pay Bill Acc. NOBODY", Decimal("500"), Decimal(0),
             "Pay Bill Online", "2547 ***** 000 - WHO", f"NOBODY{i}")
    i = 0
    while len(rows) < LINES:
        line(f"TBNK{i:06d}", base + timedelta(hours=2, seconds=i), "Withdraw to bank", Decimal(0), Decimal("1.00"),
             "Organization Withdrawal to Bank", "Bank", "")
        i += 1
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["Organisation Name:", "Bench Gym"])
    w.writerow(COLUMNS)
    w.writerows(rows)
    return out.getvalue().encode(), n


async def test_a_50000_line_statement_imports_in_under_30_seconds(db, capsys):
    started = time.monotonic()
    await load_bulk(2000, 40_000, show_progress=False)
    loaded = time.monotonic() - started
    data, known = await _statement()
    assert data.count(b"\r\n") == LINES + 2
    started = time.monotonic()
    imported = await statements.import_statement(data, filename="bench.csv")
    seconds = time.monotonic() - started
    assert imported.summary["matched"] == known and imported.summary["credited"] == 20
    assert imported.summary["unmatched"] == 10
    assert sum(imported.summary.values()) == LINES
    started = time.monotonic()
    again = await statements.import_statement(data, filename="bench.csv")
    again_seconds = time.monotonic() - started
    assert not again.new
    await assert_books_agree()
    with capsys.disabled():
        print(f"\n  statement import: {LINES:,} lines ({known:,} payments matched, 20 credited, 10 unmatched, "
              f"{LINES - known - 30:,} charges and withdrawals, {len(data) / 1e6:.1f} MB) in {seconds:.1f} s "
              f"(limit {LIMIT_SECONDS} s); the same file again {again_seconds:.2f} s; demo data {loaded:.0f} s")
    assert seconds < LIMIT_SECONDS
