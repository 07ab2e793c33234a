"""A progress line on stderr for long CLI jobs (bulk demo data), with no dependency.

On a terminal the line redraws in place a few times a second; into a file or CI log it prints a
line every tenth of the way, so logs stay short.
"""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    def __init__(self, label: str, total: int, unit: str = "", stream=None, enabled: bool = True):
        self.label, self.total, self.unit = label, max(total, 0), unit
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.done = 0
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._tenth = -1
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._draw()

    def finish(self) -> float:
        """Close the line; returns the seconds it took."""
        self.done = max(self.done, self.total)
        self._draw(final=True)
        return time.monotonic() - self.started

    def _draw(self, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        fraction = self.done / self.total if self.total else 1.0
        if self._tty:
            if not final and now - self._drawn_at < 0.2:
                return
            width = 30
            bar = "#" * int(width * fraction) + "." * (width - int(width * fraction))
            end = "\n" if final else ""
            self.stream.write(f"\r{self.label:<22} [{bar}] {fraction:4.0%} {self.done:>11,}/{self.total:,} {self.unit}"
                              f"  {_clock(now - self.started)}{end}")
        else:
            tenth = int(fraction * 10)
            if tenth == self._tenth:
                return
            self._tenth = tenth
            self.stream.write(f"{self.label}: {fraction:.0%} ({self.done:,}/{self.total:,} {self.unit}, "
                              f"{_clock(now - self.started)})\n")
        self._drawn_at = now
        self.stream.flush()
