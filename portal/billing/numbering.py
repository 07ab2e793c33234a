"""Document numbers: INV-2026-000123, RCP-2026-000045, CRN-2026-000004.

One counter row per (kind, year), bumped with INSERT .. ON CONFLICT DO UPDATE: the row lock
serialises concurrent callers, so numbers are never duplicated; a rolled-back transaction undoes
its bump, so there are no gaps either. The row stays locked until COMMIT, so a number is best
taken late in its transaction: receipts (RCP) are numbered by the last statement of
portal.payments.service.complete_payment, which bumps the counter as BUMP does (the same number,
the same format) and writes everything that carries the number with it.
"""

from __future__ import annotations

from tables.billing import DocumentCounter

BUMP = """
INSERT INTO document_counter (kind, year, last) VALUES ({}, {}, 1)
ON CONFLICT (kind, year) DO UPDATE SET last = document_counter.last + 1
RETURNING last
"""


async def next_number(kind: str, year: int) -> str:
    rows = await DocumentCounter.raw(BUMP, kind, year)
    return f"{kind}-{year}-{rows[0]['last']:06d}"
