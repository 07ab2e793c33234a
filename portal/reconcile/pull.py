"""Pull Transactions: what the Paybill received in the last hours, from Daraja's own book.

Scheduled (tasks/reconcile.py, every 30 minutes, the last PULL_HOURS) and on demand (managers,
/reconcile/mpesa). Each record the portal has not seen (no M-Pesa payment with that receipt code,
no callback for it) is stored raw as a `c2b_pull` callback and processed at once by the same
exactly-once path as a Paybill confirmation (portal.reconcile.sources); a confirmation that
arrives later for it is then a duplicate.

Worked example (tests/reconcile/test_pull.py): on a day three members pay the Paybill 3,000, 8,000
and 3,000 KES; the first confirmation arrives, the other two are lost. The ledger holds 3,000.
Pull lists 3 records: 1 seen, 2 stored and credited (8,000 + 3,000), so the ledger's M-Pesa
account holds 3,000 + 8,000 + 3,000 = 14,000 = what Daraja received. The two late confirmations
then come: both stored, both "duplicate", the ledger still 14,000, 3 payments.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from portal import audit
from portal.callbacks import dispatch
from portal.callbacks import store as callbacks
from portal.gateways.callback_urls import c2b_confirmation_url
from portal.gateways.daraja import DarajaClient
from portal.gateways.daraja_pull import query_all, record_amount, register
from portal.lib.clock import now
from portal.reconcile import book
from portal.reconcile.sources import PULL, pull_body, trx_day
from portal.settings import Settings
from tables.gateway import GatewayCallback

log = logging.getLogger(__name__)

PULL_HOURS = 3  # each scheduled run (every 30 minutes) looks this far back: a missed run is covered
KEPT_HOURS = 48  # Daraja keeps this much

SEEN_SQL = """
SELECT reference AS receipt FROM payment WHERE method = 'mpesa' AND reference = ANY({}::varchar[])
UNION
SELECT external_id FROM gateway_callback
 WHERE gateway = 'daraja' AND kind IN ('c2b_confirmation', 'c2b_pull', 'c2b_statement')
   AND outcome NOT IN ('malformed', 'rejected') AND external_id = ANY({}::varchar[])
"""


@dataclass
class PullResult:
    hours: int
    pages: int = 0
    listed: int = 0
    seen: int = 0
    outcomes: Counter = field(default_factory=Counter)  # of the records stored now: applied, duplicate, ...

    @property
    def credited(self) -> int:
        return self.outcomes["applied"]

    def as_dict(self) -> dict:
        return {"hours": self.hours, "pages": self.pages, "listed": self.listed, "seen": self.seen,
                **{f"stored_{k}": v for k, v in sorted(self.outcomes.items())}}

    def summary(self) -> str:
        found = ", ".join(f"{v} {k}" for k, v in sorted(self.outcomes.items())) or "none new"
        return (f"Daraja listed {self.listed} Paybill payment{'s' if self.listed != 1 else ''} of the last "
                f"{self.hours} hours ({self.pages} page{'s' if self.pages != 1 else ''}): {self.seen} already known; "
                f"not heard of before: {found}.")


def _book_lines(records, settings: Settings) -> list[book.Line]:
    """Every record listed goes into the gateway's book, known to us or not (the page counts them)."""
    lines = []
    for r in records:
        try:
            amount = record_amount(r.raw)
        except ValueError:
            continue  # stored raw below and shown as malformed: no figure to count
        day = trx_day(r.raw.get("trxDate", ""), settings.tz) or now().astimezone(settings.tz).date()
        lines.append(book.Line("mpesa", r.transaction_id, day, amount, "pull", str(r.raw.get("billreference") or ""),
                               str(r.raw.get("sender") or "")))
    return lines


async def seen(receipts: list[str]) -> set[str]:
    """Receipts the portal has a payment for, or a callback that is or will be acted on (a
    confirmation that could not be read does not count: its money is taken from the pull)."""
    if not receipts:
        return set()
    rows = await GatewayCallback.raw(SEEN_SQL, receipts, receipts)
    return {r["receipt"] for r in rows}


async def pull_recent(settings: Settings, hours: int = PULL_HOURS, *, staff_id: int | None = None) -> PullResult:
    """Ask Daraja for the last `hours` (at most 48) page by page and take in what is new."""
    hours = max(1, min(int(hours), KEPT_HOURS))
    result = PullResult(hours)
    # EndDate has whole seconds: a minute ahead so that what was paid this very second is in.
    end = now() + timedelta(minutes=1)
    start = end - timedelta(hours=hours, minutes=1)
    short_code = settings.daraja_shortcode
    async with DarajaClient(settings) as client:
        async for page in query_all(client, start, end):
            result.pages += 1
            result.listed += len(page.records)
            known = await seen([r.transaction_id for r in page.records])
            await book.record(_book_lines(page.records, settings))
            for record in page.records:
                if record.transaction_id in known:
                    result.seen += 1
                    continue
                stored = await callbacks.store("daraja", PULL, pull_body(record.raw, short_code),
                                               external_id=record.transaction_id, source_ip="pull")
                known.add(record.transaction_id)
                result.outcomes[await dispatch.process(stored.id)] += 1
    log.info("pull transactions: %s", result.as_dict())
    if staff_id is not None or result.outcomes:
        await audit.record("mpesa.pull", "paybill", short_code, staff_id=staff_id, details=result.as_dict())
    return result


async def register_pull(settings: Settings, *, staff_id: int | None = None) -> str:
    """Register the Paybill for Pull Transactions (DARAJA_PULL_NOMINATED_NUMBER receives
    Safaricom's notices; the callback URL given is our confirmation URL)."""
    async with DarajaClient(settings) as client:
        answer = await register(client, settings.daraja_pull_nominated_number, c2b_confirmation_url(settings))
    await audit.record("mpesa.pull_registered", "paybill", settings.daraja_shortcode, staff_id=staff_id,
                       details={"answer": answer})
    return answer
