"""Bank statements (managers, /reconcile/bank): each bank's column mapping saved once, then its CSV
imported in one transaction, or refused whole with the line and column that are wrong.

Each credit (money in) is matched to a bank transfer the desk recorded (payment method `bank`):
    1. by reference: the payment's reference appears in the line's reference (or its description)
    2. else by amount and date: the same amount, recorded within DAYS days of the credit, not
       matched by another line
and kept in the gateways' book (gateway_line, channel bank) under the payment's reference, so the
reconciliation page counts it as that payment. A credit matched to nothing is kept under its own
reference: the page lists it "not in the ledger", and *Credit it to a member* records it as a bank
payment of that member (the desk's path, keyed by the line: exactly once). Debits are not money
the gym takes in and are only counted.

The same file again (its SHA-256) finds the first import and changes nothing; a credit another
statement already brought (overlapping dates) is kept once (gateway_line is unique per reference).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from portal import audit
from portal.lib import db
from portal.lib.clock import now
from portal.reconcile import book
from portal.reconcile.bank_csv import BankFile, BankLine, Mapping, read_bank_csv
from tables.reconcile import BankFormat, BankStatement

DAYS = 3
RECORDED = "('completed', 'partially_refunded', 'refunded')"

CANDIDATES = f"""
SELECT id, reference, amount, (completed_at AT TIME ZONE {{}})::date AS day FROM payment
 WHERE method = 'bank' AND status IN {RECORDED} AND reference <> ''
   AND completed_at >= {{}} AND completed_at < {{}}
 ORDER BY completed_at, id
"""
# Payments already counted as some earlier line's: not matched by amount again.
TAKEN = "SELECT external_id FROM gateway_line WHERE channel = 'bank' AND external_id = ANY({}::varchar[])"


@dataclass(frozen=True)
class Imported:
    statement_id: int
    new: bool
    summary: dict


def mapping_of(row: dict) -> Mapping:
    return Mapping(row["date_column"], row["date_format"], row["description_column"], row["reference_column"],
                   row["credit_column"], row["debit_column"], row["amount_column"])


async def save_format(name: str, mapping: Mapping, staff_id: int) -> int:
    """Save (or replace) a bank's mapping; the caller has checked mapping.problems()."""
    values = [name.strip()[:80], mapping.date_column.strip(), mapping.date_format, mapping.description_column.strip(),
              mapping.reference_column.strip(), mapping.credit_column.strip(), mapping.debit_column.strip(),
              mapping.amount_column.strip(), staff_id]
    rows = await BankFormat.raw(
        "INSERT INTO bank_format (name, date_column, date_format, description_column, reference_column, credit_column, "
        "debit_column, amount_column, saved_by) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}) ON CONFLICT (name) DO UPDATE "
        "SET date_column = EXCLUDED.date_column, date_format = EXCLUDED.date_format, "
        "description_column = EXCLUDED.description_column, reference_column = EXCLUDED.reference_column, "
        "credit_column = EXCLUDED.credit_column, debit_column = EXCLUDED.debit_column, "
        "amount_column = EXCLUDED.amount_column, saved_by = EXCLUDED.saved_by, saved_at = now() RETURNING id", *values)
    await audit.record("bank.format_saved", "bank_format", rows[0]["id"], staff_id=staff_id,
                       details={"name": values[0], **mapping.__dict__})
    return rows[0]["id"]


def _own_key(line: BankLine) -> str:
    """A credit with no reference: its date, amount and description name it (the same line in an
    overlapping statement is the same money)."""
    if line.reference:
        return line.reference.upper()
    digest = hashlib.sha256(f"{line.day}|{line.amount}|{line.description}".encode()).hexdigest()[:16]
    return f"{line.day.isoformat()}:{digest}"


async def _match(bank_file: BankFile, tz) -> tuple[list[book.Line], Counter]:
    from datetime import datetime, time

    start = datetime.combine(bank_file.period_start - timedelta(days=DAYS), time.min, tz)
    end = datetime.combine(bank_file.period_end + timedelta(days=DAYS + 1), time.min, tz)
    payments = await BankStatement.raw(CANDIDATES, tz.key, start, end)
    taken = {r["external_id"] for r in await BankStatement.raw(TAKEN, [p["reference"] for p in payments])}
    free = [p for p in payments if p["reference"] not in taken]
    counts: Counter = Counter()
    lines = []
    for line in bank_file.credits:
        text = f"{line.reference} {line.description}".upper()
        found = next((p for p in free if p["reference"].upper() in text), None)
        how = "by_reference"
        if found is None:
            how = "by_amount_and_date"
            found = next((p for p in free if p["amount"] == line.amount and abs((p["day"] - line.day).days) <= DAYS),
                         None)
        if found is not None:
            free.remove(found)
            counts[how] += 1
            key = found["reference"]
        else:
            counts["unrecorded"] += 1
            key = _own_key(line)
        lines.append(book.Line("bank", key, line.day, line.amount, "bank_statement",
                               line.reference, line.description))
    counts["debits"] = len(bank_file.lines) - len(bank_file.credits)
    return lines, counts


async def import_bank_statement(data: bytes, format_id: int, *, filename: str = "", staff_id: int | None = None,
                                tz) -> Imported:
    """Read with the format's mapping (StatementError: nothing kept), then match and keep at once."""
    fmt = await BankFormat.select().where(BankFormat.id == format_id).first()
    if fmt is None:
        raise LookupError("bank format")
    bank_file = read_bank_csv(data, mapping_of(fmt))
    async with db.transaction():
        await BankStatement.raw("SELECT pg_advisory_xact_lock(hashtext({}))", f"bank-statement:{bank_file.file_hash}")
        known = await BankStatement.select(BankStatement.id, BankStatement.summary).where(
            BankStatement.file_hash == bank_file.file_hash).first()
        if known:
            summary = known["summary"]
            return Imported(known["id"], False, json.loads(summary) if isinstance(summary, str) else dict(summary))
        lines, counts = await _match(bank_file, tz)
        await book.record(lines)
        summary = dict(sorted(counts.items()))
        credits = sum((x.amount for x in bank_file.credits), start=0)
        row = (await BankStatement.insert(BankStatement(
            file_hash=bank_file.file_hash, format=format_id, filename=filename[:200], period_start=bank_file.period_start,
            period_end=bank_file.period_end, line_count=len(bank_file.lines), credits=credits, imported_by=staff_id,
            imported_at=now(), summary=summary)).returning(BankStatement.id))[0]
        await audit.record("bank.statement_imported", "bank_statement", row["id"], staff_id=staff_id, details={
            "file": filename[:200], "hash": bank_file.file_hash, "bank": fmt["name"], "lines": len(bank_file.lines),
            "credits": str(credits), **summary})
    return Imported(row["id"], True, summary)


async def formats() -> list[dict]:
    return await BankFormat.select().order_by(BankFormat.name)


async def statements(limit: int = 50) -> list[dict]:
    rows = await BankStatement.raw(
        "SELECT s.id, s.filename, s.period_start, s.period_end, s.line_count, s.credits, s.imported_at, s.summary, "
        "f.name AS bank FROM bank_statement s JOIN bank_format f ON f.id = s.format ORDER BY s.id DESC LIMIT {}", limit)
    return [{**r, "summary": json.loads(r["summary"]) if isinstance(r["summary"], str) else dict(r["summary"])}
            for r in rows]
