"""CSV files for people to open in a spreadsheet: every export writes its rows through `CsvText`,
so every cell goes through `cell()`.

Names, references and the like come from members, staff and gateways. A spreadsheet runs a cell
that starts with `=`, `+`, `-` or `@` as a formula (`=HYPERLINK(...)`, `=cmd|...`), and a leading
tab or carriage return can hide one; such text is written with a single quote in front, as OWASP
recommends ("CSV Injection"), so it shows as the text it is. Numbers are ours (amounts, counts,
rates are Decimal or int, never text) and are written as they are, negative ones included, so a
spreadsheet still adds them up.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> object:
    """One value as a spreadsheet should read it: None is empty, formula-looking text is quoted."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class CsvText:
    """Rows in, CSV text out; `take()` hands over what was written so far (for streaming)."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def row(self, values: Iterable) -> None:
        self._writer.writerow([cell(v) for v in values])

    def rows(self, rows: Iterable[Iterable]) -> None:
        for values in rows:
            self.row(values)

    def take(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text
