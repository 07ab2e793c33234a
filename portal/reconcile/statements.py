"""Importing an M-Pesa statement (managers, /reconcile/mpesa): every line is matched, in one
transaction, or the file is refused and nothing is kept.

For each line of money in (Paid In, Completed):
    a payment with that receipt code           -> matched (amount_differs when the amounts do not agree)
    a callback for it waiting for staff        -> unmatched (it is already on /mpesa/unmatched)
    a callback for it waiting for its STK twin -> waiting
    none: the portal never heard of it         -> stored raw as a `c2b_statement` callback and taken
        through the Paybill confirmation's exactly-once path: the account number (member number,
        invoice number, a member's phone) then the payer's phone (a full number only) find the
        member -> credited; nobody -> unmatched (on /mpesa/unmatched for staff)
Money out: a reversal (its Reason Type or Details say so) -> reversal, shown with the payment it
reverses (Linked Transaction ID); any other (charges, withdrawals) -> not_payment. Lines not
Completed -> not_completed. Payments in the ledger for the statement's days with no line are
listed by `missing_payments`.

The file is kept once by its SHA-256: importing it again returns the first import and changes
nothing. Lines are keyed by (receipt code, direction) within a statement; credits by receipt code
across everything (the `c2b:<TransID>` payment key), so an overlapping statement credits nothing twice.

Worked example (tests/reconcile/test_statement.py, figures in KES): a day's statement of 4 lines:
    A  3,000 in, account PTF-member-1: confirmed by its callback        -> matched
    B  8,000 in, account of member 2: its confirmation was lost         -> credited (8,000)
    C  3,000 in: paid by STK to the Paybill, told twice (STK callback and
       C2B confirmation) and credited once                              -> matched, not credited again
    D  3,000 out: reversal of A (Linked Transaction ID = A)             -> reversal
Ledger M-Pesa account before: 3,000 (A) + 3,000 (C) = 6,000; after: 6,000 + 8,000 (B) = 14,000;
the statement's Paid In is 3,000 + 8,000 + 3,000 = 14,000: equal. Importing the file again: 14,000.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Callable

from portal import audit
from portal.callbacks import dispatch
from portal.callbacks import store as callbacks
from portal.lib import db
from portal.lib.clock import now
from portal.reconcile import book
from portal.reconcile.sources import STATEMENT, statement_body
from portal.reconcile.statement import Statement, StatementLine, file_hash, read_statement
from portal.settings import get_settings
from tables.reconcile import MpesaStatement, MpesaStatementLine

log = logging.getLogger(__name__)

RECORDED = ("completed", "partially_refunded", "refunded")
ATTENTION = ("amount_differs", "credited", "unmatched", "waiting", "reversal", "not_completed")
SHOWN = 500  # lines needing attention and missing payments listed on the page (the counts are exact)

LABELS = {
    "matched": "Matched to a payment", "amount_differs": "Amount differs from the payment",
    "credited": "Never heard of: credited now", "unmatched": "No member found (on Unmatched M-Pesa)",
    "waiting": "Waiting for its STK result", "reversal": "Reversal", "not_payment": "Charges and withdrawals",
    "not_completed": "Not completed",
}


def _summary(value) -> dict:
    """The JSONB summary as asyncpg hands it over (text) or already read."""
    return json.loads(value) if isinstance(value, str) else dict(value or {})


@dataclass(frozen=True)
class Imported:
    statement_id: int
    new: bool
    summary: dict
    seconds: float


PAYMENTS_SQL = f"""
SELECT id, reference, amount, member, status FROM payment
 WHERE method = 'mpesa' AND status IN {RECORDED!r} AND reference = ANY({{}}::varchar[])
"""
CALLBACKS_SQL = """
SELECT DISTINCT ON (external_id) external_id, id, outcome, payment, member FROM gateway_callback
 WHERE gateway = 'daraja' AND kind IN ('c2b_confirmation', 'c2b_pull', 'c2b_statement')
   AND outcome IN ('unmatched', 'stored', 'error') AND external_id = ANY({}::varchar[])
 ORDER BY external_id, id
"""
INSERT_LINES = """
INSERT INTO mpesa_statement_line (statement, line_no, receipt, direction, completed_at, details, status, paid_in,
    withdrawn, reason_type, other_party, linked_receipt, account, outcome, payment, member, callback, note)
SELECT {}, * FROM unnest({}::int[], {}::varchar[], {}::varchar[], {}::timestamptz[], {}::text[], {}::varchar[],
    {}::numeric[], {}::numeric[], {}::varchar[], {}::varchar[], {}::varchar[], {}::varchar[], {}::varchar[],
    {}::int[], {}::int[], {}::int[], {}::text[])
"""


async def _credit(line: StatementLine) -> tuple[str, int | None, int | None, int, str]:
    """A line the portal never heard of: stored raw, then the confirmation's exactly-once path."""
    stored = await callbacks.store("daraja", STATEMENT, statement_body(line.line_no, line.cells),
                                   external_id=line.receipt, source_ip="statement")
    outcome = await dispatch.process(stored.id)
    row = (await MpesaStatementLine.raw("SELECT payment, member, note FROM gateway_callback WHERE id = {}",
                                        stored.id))[0]
    mapped = {"applied": "credited", "duplicate": "matched", "unmatched": "unmatched"}.get(outcome, "waiting")
    if mapped == "credited" and not stored.new:  # another statement being imported credited it first
        mapped = "matched"
    return mapped, row["payment"], row["member"], stored.id, row["note"][:300]


async def import_statement(data: bytes, *, filename: str = "", staff_id: int | None = None,
                           progress: Callable[[int, int], None] | None = None,
                           reading: Callable[[int, int], None] | None = None) -> Imported:
    """Read (StatementError when malformed: nothing stored), then match and store in one transaction.
    `progress(done, total)` is told of the lines matched as the import goes (the CLI's bar), and
    `reading(done, total)` of the lines read before (the web upload's bar: the reading runs in a
    thread then, so the event loop, and whoever writes the progress down, goes on meanwhile)."""
    started = time.monotonic()
    known = await MpesaStatement.select(MpesaStatement.id, MpesaStatement.summary, MpesaStatement.seconds).where(
        MpesaStatement.file_hash == file_hash(data)).first()
    if known:  # the same file again: nothing to read
        return Imported(known["id"], False, _summary(known["summary"]), float(known["seconds"]))
    if reading is None:
        statement = read_statement(data, get_settings().tz)
    else:
        statement = await asyncio.to_thread(read_statement, data, get_settings().tz, reading)
    async with db.transaction():
        # Two managers uploading the same file at once: the second waits, then finds the first.
        await MpesaStatement.raw("SELECT pg_advisory_xact_lock(hashtext({}))", f"mpesa-statement:{statement.file_hash}")
        existing = await MpesaStatement.select(MpesaStatement.id, MpesaStatement.summary, MpesaStatement.seconds).where(
            MpesaStatement.file_hash == statement.file_hash).first()
        if existing:
            return Imported(existing["id"], False, _summary(existing["summary"]), float(existing["seconds"]))
        statement_id = await _store(statement, filename, staff_id)
        summary = await _match_lines(statement_id, statement, progress)
        seconds = round(time.monotonic() - started, 3)
        await MpesaStatement.update({MpesaStatement.summary: summary, MpesaStatement.seconds: Decimal(str(seconds))}).where(
            MpesaStatement.id == statement_id)
        await audit.record("mpesa.statement_imported", "mpesa_statement", statement_id, staff_id=staff_id, details={
            "file": filename[:200], "hash": statement.file_hash, "lines": len(statement.lines),
            "period": f"{statement.period_start}..{statement.period_end}", "paid_in": str(statement.paid_in),
            **summary})
    log.info("statement %s imported: %s lines in %.2f s %s", statement_id, len(statement.lines), seconds, summary)
    return Imported(statement_id, True, summary, seconds)


async def _store(statement: Statement, filename: str, staff_id: int | None) -> int:
    rows = await MpesaStatement.raw(
        "INSERT INTO mpesa_statement (file_hash, filename, period_start, period_end, line_count, paid_in, withdrawn, "
        "imported_by, imported_at, seconds, summary) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, 0, '{{}}') RETURNING id",
        statement.file_hash, filename[:200], statement.period_start, statement.period_end, len(statement.lines),
        statement.paid_in, statement.withdrawn, staff_id, now())
    return rows[0]["id"]


async def _match_lines(statement_id: int, statement: Statement,
                       progress: Callable[[int, int], None] | None = None) -> dict:
    lines = statement.lines
    wanted = sorted({line.receipt for line in lines} | {line.linked_receipt for line in lines if line.linked_receipt})
    payments = {r["reference"]: r for r in await MpesaStatement.raw(PAYMENTS_SQL, wanted)}
    waiting = {r["external_id"]: r for r in await MpesaStatement.raw(CALLBACKS_SQL, wanted)}
    cols: dict[str, list] = {k: [] for k in ("line_no", "receipt", "direction", "completed_at", "details", "status",
                                             "paid_in", "withdrawn", "reason_type", "other_party", "linked", "account",
                                             "outcome", "payment", "member", "callback", "note")}
    counts: Counter = Counter()
    for line in lines:
        payment = member = callback = None
        note = ""
        if not line.completed:
            outcome = "not_completed"
        elif line.direction == "out":
            if line.is_reversal:
                outcome = "reversal"
                reversed_payment = payments.get(line.linked_receipt)
                if reversed_payment:
                    payment, member = reversed_payment["id"], reversed_payment["member"]
                    if reversed_payment["status"] == "completed":
                        note = "the portal has not recorded this reversal: its payment still counts in full"
                else:
                    note = f"reverses {line.linked_receipt or 'a payment not named'}, which the portal has no payment for"
            else:
                outcome = "not_payment"
        elif line.receipt in payments:
            p = payments[line.receipt]
            payment, member = p["id"], p["member"]
            outcome = "matched" if p["amount"] == line.paid_in else "amount_differs"
            if outcome == "amount_differs":
                note = f"the payment is {p['amount']}, the statement {line.paid_in}"
        elif line.receipt in waiting:
            w = waiting[line.receipt]
            callback, member = w["id"], w["member"]
            outcome = "unmatched" if w["outcome"] == "unmatched" else "waiting"
        else:
            outcome, payment, member, callback, note = await _credit(line)
        counts[outcome] += 1
        if progress is not None and (len(cols["line_no"]) % 1000 == 999 or line is lines[-1]):
            progress(len(cols["line_no"]) + 1, len(lines))
            await asyncio.sleep(0)  # lets a watcher (the web upload's progress writer) run between the batches
        for key, value in (("line_no", line.line_no), ("receipt", line.receipt), ("direction", line.direction),
                           ("completed_at", line.completed_at), ("details", line.details), ("status", line.status),
                           ("paid_in", line.paid_in), ("withdrawn", line.withdrawn), ("reason_type", line.reason_type),
                           ("other_party", line.other_party), ("linked", line.linked_receipt),
                           ("account", line.account), ("outcome", outcome), ("payment", payment), ("member", member),
                           ("callback", callback), ("note", note)):
            cols[key].append(value)
    await MpesaStatement.raw(INSERT_LINES, statement_id, *cols.values())
    tz = get_settings().tz
    await book.record([book.Line("mpesa", line.receipt, line.completed_at.astimezone(tz).date(), line.paid_in,
                                 "statement", line.account, line.other_party, callback)
                       for line, callback in zip(lines, cols["callback"])
                       if line.completed and line.direction == "in"])
    return dict(sorted(counts.items()))


# --- reading ------------------------------------------------------------------------------------

async def statements(limit: int = 50) -> list[dict]:
    rows = await MpesaStatement.raw(
        "SELECT s.id, s.filename, s.period_start, s.period_end, s.line_count, s.paid_in, s.withdrawn, s.imported_at, "
        "s.seconds, s.summary, u.username AS imported_by FROM mpesa_statement s "
        "LEFT JOIN staff st ON st.id = s.imported_by LEFT JOIN piccolo_user u ON u.id = st.user "
        "ORDER BY s.id DESC LIMIT {}", limit)
    return [{**r, "summary": _summary(r["summary"])} for r in rows]


async def statement(statement_id: int) -> dict | None:
    rows = await MpesaStatement.raw(
        "SELECT s.*, u.username AS imported_by_name FROM mpesa_statement s LEFT JOIN staff st ON st.id = s.imported_by "
        "LEFT JOIN piccolo_user u ON u.id = st.user WHERE s.id = {}", statement_id)
    return {**rows[0], "summary": _summary(rows[0]["summary"])} if rows else None


async def attention_lines(statement_id: int, limit: int = SHOWN) -> list[dict]:
    """The lines that are not simply matched or charges, first in the file first."""
    return await MpesaStatementLine.raw(
        f"SELECT l.*, m.member_number, p.status AS payment_status, p.receipt_number "
        f"FROM mpesa_statement_line l LEFT JOIN member m ON m.id = l.member LEFT JOIN payment p ON p.id = l.payment "
        f"WHERE l.statement = {{}} AND l.outcome IN {ATTENTION!r} ORDER BY l.line_no LIMIT {{}}", statement_id, limit)


def _day_bounds(row: dict) -> tuple[datetime, datetime]:
    tz = get_settings().tz
    start = datetime.combine(row["period_start"], dtime.min, tz)
    end = datetime.combine(row["period_end"] + timedelta(days=1), dtime.min, tz)
    return start, end


async def missing_payments(row: dict, limit: int = SHOWN) -> list[dict]:
    """M-Pesa payments the ledger has for the statement's days that no line of it names."""
    start, end = _day_bounds(row)
    return await MpesaStatementLine.raw(
        f"SELECT p.id, p.reference, p.amount, p.completed_at, p.status, m.member_number, m.first_name, m.last_name, "
        f"count(*) OVER () AS total "
        f"FROM payment p LEFT JOIN member m ON m.id = p.member "
        f"WHERE p.method = 'mpesa' AND p.status IN {RECORDED!r} AND p.completed_at >= {{}} AND p.completed_at < {{}} "
        f"AND NOT EXISTS (SELECT 1 FROM mpesa_statement_line l WHERE l.statement = {{}} AND l.direction = 'in' "
        f"AND l.receipt = p.reference) ORDER BY p.completed_at, p.id LIMIT {{}}", start, end, row["id"], limit)
