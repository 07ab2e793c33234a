"""Reading a bank's CSV statement with that bank's saved column mapping (tables.reconcile.BankFormat).

Banks export different columns: the mapping names, by their header text, the date column (and its
format), the description, optionally a reference, and either a credit and a debit column or one
signed amount (credits positive). The header is the first line, within the first 30, holding the
date column's name. The whole file is checked before anything is kept: the first thing wrong is
refused as StatementError with its line and column (as the M-Pesa statement, portal.reconcile.statement).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from portal.reconcile.statement import MAX_BYTES, StatementError, file_hash

MAX_PREAMBLE = 30
DATE_FORMATS = {"DD/MM/YYYY": "%d/%m/%Y", "YYYY-MM-DD": "%Y-%m-%d", "DD-MM-YYYY": "%d-%m-%Y",
                "DD-Mon-YYYY": "%d-%b-%Y", "DD Mon YYYY": "%d %b %Y", "MM/DD/YYYY": "%m/%d/%Y"}
LARGEST = Decimal("10000000000")  # numeric(12,2)
_AMOUNT = re.compile(r"[-+(]?(?:KES|KSH)?\s*\d{1,3}(?:,\d{3})*(?:\.\d{1,2})?\)?|[-+(]?\d+(?:\.\d{1,2})?\)?", re.I)


@dataclass(frozen=True)
class Mapping:
    date_column: str
    date_format: str
    description_column: str
    reference_column: str = ""
    credit_column: str = ""
    debit_column: str = ""
    amount_column: str = ""

    def problems(self) -> dict[str, str]:
        """Field -> message for a mapping that cannot be used (the form shows each beside its field)."""
        out = {}
        for name in ("date_column", "description_column"):
            if not getattr(self, name).strip():
                out[name] = "Give the column's name as the header line writes it"
        if self.date_format not in DATE_FORMATS:
            out["date_format"] = "Choose the date format"
        if bool(self.amount_column.strip()) == bool(self.credit_column.strip()):
            out["amount_column"] = "Give either one signed amount column or a credit column (with a debit column)"
        return out


@dataclass(frozen=True)
class BankLine:
    line_no: int
    day: date
    description: str
    reference: str
    amount: Decimal  # positive: money in; negative: money out


@dataclass(frozen=True)
class BankFile:
    lines: list[BankLine]
    file_hash: str
    period_start: date
    period_end: date

    @property
    def credits(self) -> list[BankLine]:
        return [x for x in self.lines if x.amount > 0]


def _name(cell: str) -> str:
    return " ".join(cell.replace("\ufeff", "").split()).casefold()


def _amount(text: str, line: int, col: int, name: str) -> Decimal:
    t = text.strip().replace(" ", "")
    if not t:
        return Decimal(0)
    if not _AMOUNT.fullmatch(t):
        raise StatementError(line, col, f"{text.strip()[:30]!r} is not an amount", name)
    negative = t.startswith("-") or (t.startswith("(") and t.endswith(")"))
    value = Decimal(re.sub(r"[^\d.]", "", t))
    if value >= LARGEST:
        raise StatementError(line, col, f"{text.strip()[:30]!r} is more than any amount the books hold", name)
    return -value if negative else value


def read_bank_csv(data: bytes, mapping: Mapping) -> BankFile:
    if len(data) > MAX_BYTES:
        raise StatementError(1, 0, f"the file is over {MAX_BYTES // (1024 * 1024)} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise StatementError(data[:e.start].count(b"\n") + 1, 0, "not UTF-8 text: save the CSV as UTF-8") from None
    wanted = {k: _name(v) for k, v in (("date", mapping.date_column), ("description", mapping.description_column),
                                       ("reference", mapping.reference_column), ("credit", mapping.credit_column),
                                       ("debit", mapping.debit_column), ("amount", mapping.amount_column)) if v.strip()}
    fmt = DATE_FORMATS[mapping.date_format]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: dict[str, int] | None = None
    lines: list[BankLine] = []
    try:
        for row in reader:
            n = reader.line_num
            if header is None:
                names = [_name(c) for c in row]
                if wanted["date"] in names:
                    missing = [v for v in wanted.values() if v not in names]
                    if missing:
                        raise StatementError(n, 0, "the header has no column " + ", ".join(repr(m) for m in missing))
                    header = {k: names.index(v) for k, v in wanted.items()}
                    titles = {k: row[i].strip() for k, i in header.items()}
                    width = len(row)
                elif n >= MAX_PREAMBLE:
                    raise StatementError(1, 0, f"no header line with the column {mapping.date_column!r} in the first "
                                               f"{MAX_PREAMBLE} lines: is this the bank's file, and its mapping?")
                continue
            if not any(c.strip() for c in row):
                continue
            if len(row) < width:
                raise StatementError(n, len(row) + 1, f"the line has {len(row)} columns, the header {width}")

            def cell(key: str) -> str:
                return row[header[key]].strip() if key in header else ""

            raw_day = " ".join(cell("date").split())
            try:
                day = datetime.strptime(raw_day, fmt).date()
            except ValueError:
                raise StatementError(n, header["date"] + 1, f"{raw_day[:30]!r} is not a date ({mapping.date_format})",
                                     titles["date"]) from None
            if "amount" in header:
                amount = _amount(cell("amount"), n, header["amount"] + 1, titles["amount"])
            else:
                credit = _amount(cell("credit"), n, header["credit"] + 1, titles["credit"])
                debit = _amount(cell("debit"), n, header["debit"] + 1, titles["debit"]) if "debit" in header else 0
                if credit and debit:
                    raise StatementError(n, header["debit"] + 1, "a line is a credit or a debit, not both",
                                         titles["debit"])
                amount = abs(credit) if credit else -abs(debit)
            if not amount:
                continue  # a balance line or a zero charge: no money moved
            lines.append(BankLine(n, day, cell("description")[:200], cell("reference")[:100], amount))
    except csv.Error as e:
        raise StatementError(reader.line_num, 0, f"not readable as CSV ({e})") from None
    if header is None:
        raise StatementError(1, 0, f"no header line with the column {mapping.date_column!r}: is this the bank's file, "
                                   "and its mapping?")
    if not lines:
        raise StatementError(reader.line_num or 1, 0, "the statement has no lines of money")
    days = [x.day for x in lines]
    return BankFile(lines, file_hash(data), min(days), max(days))
