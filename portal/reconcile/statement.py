"""The M-Pesa organisation statement as the M-Pesa business portal exports it (CSV), read whole
and checked before anything is stored: a file with anything wrong is refused with the line and the
column (docs/reconciliation-formats.md §2 has the format and its sources).

    [preamble lines: "Organisation Name:", "Short Code:", "Time Period:", ... (skipped)]
    Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,Balance,
    Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No.
    TKL0ABC123,2026-12-07 09:15:02,2026-12-07 09:15:02,Pay Bill from 2547... - JOHN Acc. PTF0001,
    Completed,"3,000.00",,"45,000.00",true,Pay Bill Online,2547... - JOHN,,PTF0001

Required columns: Receipt No., Completion Time, Details, Transaction Status, Paid In, Withdrawn.
The others are read when present. Amounts may carry thousands separators; Withdrawn may be written
negative. Times are the gym's (Nairobi) local time, "YYYY-MM-DD HH:MM:SS" (also DD-MM-YYYY and
DD/MM/YYYY, seconds optional: spreadsheets re-save the file so).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Callable
from zoneinfo import ZoneInfo

REQUIRED = ("Receipt No.", "Completion Time", "Details", "Transaction Status", "Paid In", "Withdrawn")
OPTIONAL = ("Initiation Time", "Balance", "Balance Confirmed", "Reason Type", "Other Party Info",
            "Linked Transaction ID", "A/C No.")
COLUMNS = REQUIRED + OPTIONAL
MAX_PREAMBLE = 30
MAX_BYTES = 40 * 1024 * 1024
LARGEST = Decimal("1000000000")

_RECEIPT = re.compile(r"[A-Z0-9]{8,12}")
_AMOUNT = re.compile(r"-?\d{1,3}(?:,\d{3})*(?:\.\d{1,2})?|-?\d+(?:\.\d{1,2})?")
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M",
                 "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%Y/%m/%d %H:%M:%S")


class StatementError(ValueError):
    """What is wrong, where: `line` of the file (1 = first), `column` (1 = first; 0 = the line)."""

    def __init__(self, line: int, column: int, message: str, column_name: str = "") -> None:
        self.line, self.column, self.column_name, self.message = line, column, column_name, message
        where = f"Line {line}" + (f", column {column}" + (f" ({column_name})" if column_name else "") if column else "")
        super().__init__(f"{where}: {message}")


@dataclass(slots=True)
class StatementLine:
    line_no: int
    receipt: str
    direction: str  # in | out
    completed_at: datetime
    details: str
    status: str
    paid_in: Decimal
    withdrawn: Decimal
    reason_type: str
    other_party: str
    linked_receipt: str
    account: str
    cells: dict

    @property
    def completed(self) -> bool:
        return self.status.strip().lower() == "completed"

    @property
    def is_reversal(self) -> bool:
        return "reversal" in self.reason_type.lower() or self.details.lower().startswith("reversal")


@dataclass
class Statement:
    lines: list[StatementLine]
    file_hash: str
    period_start: date
    period_end: date
    paid_in: Decimal
    withdrawn: Decimal


def file_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _name(cell: str) -> str:
    return " ".join(cell.replace("\ufeff", "").split()).rstrip(".").casefold()


_KNOWN = {_name(c): c for c in COLUMNS}


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise StatementError(line, 0, "this is not a CSV file as the M-Pesa portal exports it (not UTF-8 text)") from None


def _amount(text: str, line: int, col: int, name: str) -> Decimal:
    t = text.strip().replace(" ", "")
    if not t:
        return Decimal(0)
    if not _AMOUNT.fullmatch(t):
        raise StatementError(line, col, f"{text.strip()[:30]!r} is not an amount", name)
    value = abs(Decimal(t.replace(",", "")))
    if value >= LARGEST:
        raise StatementError(line, col, f"{text.strip()[:30]!r} is more than any M-Pesa amount", name)
    return value


def _time(text: str, line: int, col: int, name: str, tz: ZoneInfo) -> datetime:
    t = " ".join(text.split())
    if len(t) == 19 and t[4] == t[7] == "-" and t[10] == " " and t[13] == t[16] == ":":
        # The portal's own form, YYYY-MM-DD HH:MM:SS, read as strptime would, without its cost
        # (a third of a 50,000-line file's reading).
        try:
            return datetime.fromisoformat(t).replace(tzinfo=tz)
        except ValueError:
            pass
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(t, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    raise StatementError(line, col, f"{t[:30]!r} is not a date and time (expected YYYY-MM-DD HH:MM:SS)", name)


def read_statement(data: bytes, tz: ZoneInfo, progress: Callable[[int, int], None] | None = None) -> Statement:
    """The whole file, checked; StatementError at the first thing wrong. `progress(lines read, lines
    in the file)` is told every thousand lines (the web upload's bar)."""
    if len(data) > MAX_BYTES:
        raise StatementError(1, 0, f"the file is over {MAX_BYTES // (1024 * 1024)} MB")
    in_file = data.count(b"\n") + 1 if progress is not None else 0
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: dict[str, int] | None = None
    lines: list[StatementLine] = []
    seen: dict[tuple[str, str], int] = {}
    paid_in = withdrawn = Decimal(0)
    try:
        for row in reader:
            n = reader.line_num
            if progress is not None and n % 1000 == 0:
                progress(n, in_file)
            if header is None:
                names = [_name(c) for c in row]
                if "receipt no" in names:
                    header = {}
                    for i, cell in enumerate(names):
                        if cell in _KNOWN and _KNOWN[cell] not in header:
                            header[_KNOWN[cell]] = i
                    missing = [c for c in REQUIRED if c not in header]
                    if missing:
                        raise StatementError(n, 0, "the header has no column " + ", ".join(repr(c) for c in missing))
                    width = len(row)
                elif n >= MAX_PREAMBLE:
                    raise StatementError(1, 0, "no header line (Receipt No., Completion Time, Details, ...) in the "
                                               f"first {MAX_PREAMBLE} lines")
                continue
            if not any(c.strip() for c in row):
                continue
            if len(row) < width:
                raise StatementError(n, len(row) + 1, f"the line has {len(row)} columns, the header {width}")
            if any(c.strip() for c in row[width:]):
                raise StatementError(n, width + 1, f"the line has more columns than the header ({width})")

            def cell(name: str) -> str:
                i = header.get(name)
                return row[i].strip() if i is not None else ""

            def col(name: str) -> int:
                return header[name] + 1

            receipt = cell("Receipt No.").upper()
            if not _RECEIPT.fullmatch(receipt):
                raise StatementError(n, col("Receipt No."), f"{receipt[:20]!r} is not an M-Pesa receipt code",
                                     "Receipt No.")
            completed_at = _time(cell("Completion Time"), n, col("Completion Time"), "Completion Time", tz)
            status = cell("Transaction Status")
            if not status:
                raise StatementError(n, col("Transaction Status"), "empty", "Transaction Status")
            money_in = _amount(cell("Paid In"), n, col("Paid In"), "Paid In")
            money_out = _amount(cell("Withdrawn"), n, col("Withdrawn"), "Withdrawn")
            if money_in and money_out:
                raise StatementError(n, col("Withdrawn"), "a line is either Paid In or Withdrawn, not both", "Withdrawn")
            if "Balance" in header:
                _amount(cell("Balance"), n, col("Balance"), "Balance")
            linked = cell("Linked Transaction ID").upper()
            if linked and not _RECEIPT.fullmatch(linked):
                raise StatementError(n, col("Linked Transaction ID"), f"{linked[:20]!r} is not an M-Pesa receipt code",
                                     "Linked Transaction ID")
            direction = "out" if money_out else "in"
            key = (receipt, direction)
            if key in seen:
                raise StatementError(n, col("Receipt No."), f"{receipt} is already on line {seen[key]}", "Receipt No.")
            seen[key] = n
            paid_in += money_in
            withdrawn += money_out
            lines.append(StatementLine(
                n, receipt, direction, completed_at, cell("Details")[:500], status[:40], money_in, money_out,
                cell("Reason Type")[:80], cell("Other Party Info")[:200], linked, cell("A/C No.")[:60],
                {name: row[i] for name, i in header.items()}))
    except csv.Error as e:
        raise StatementError(reader.line_num, 0, f"not readable as CSV ({e})") from None
    if header is None:
        raise StatementError(1, 0, "no header line (Receipt No., Completion Time, Details, ...): is this the "
                                   "M-Pesa statement CSV?")
    if not lines:
        raise StatementError(reader.line_num or 1, 0, "the statement has no lines")
    days = [line.completed_at.date() for line in lines]
    return Statement(lines, file_hash(data), min(days), max(days), paid_in, withdrawn)
