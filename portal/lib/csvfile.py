"""CSV files for people to open in a spreadsheet: every export writes its rows through `CsvText`,
so every cell goes through `cell()`.

Names, references and the like come from members, staff and gateways. A spreadsheet runs a cell
that starts with `=`, `+`, `-` or `@` as a formula (`=HYPERLINK(...)`, `=cmd|...`), and a leading
tab or carriage return can hide one; such text is written with a single quote in front, as OWASP
recommends ("CSV Injection"), so it shows as the text it is. Numbers are ours (amounts, counts,
rates are Decimal or int, never text) and are written as they are, negative ones included, so a
spreadsheet still adds them up. Times are written in the gym's time zone to the second
(`2026-12-07 08:05:09`), as the pages show them; the header says which zone (`local_header`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value, tz: ZoneInfo | None = None) -> object:
    """One value as a spreadsheet should read it: None is empty, formula-looking text is quoted,
    a time is local (to `tz`) to the second, without the offset spreadsheets do not read."""
    if value is None:
        return ""
    if isinstance(value, datetime) and tz is not None:
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def local_header(name: str, tz: ZoneInfo) -> str:
    """A time column's header, naming the zone its times are in: `created_at (Africa/Nairobi)`."""
    return f"{name} ({tz.key})"


class CsvText:
    """Rows in, CSV text out; `take()` hands over what was written so far (for streaming). Times
    are written in `tz` (the gym's: settings.tz)."""

    def __init__(self, tz: ZoneInfo | None = None) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)
        self._tz = tz

    def row(self, values: Iterable) -> None:
        self._writer.writerow([cell(v, self._tz) for v in values])

    def rows(self, rows: Iterable[Iterable]) -> None:
        for values in rows:
            self.row(values)

    def take(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text
