"""Store first, act second: every gateway callback is saved raw, in its own transaction, before
anything is done with it; processing is idempotent and retried by the sweeper until it sticks.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Awaitable, Callable

from portal import db
from portal.clock import now
from tables.gateway import GatewayCallback, StaffAlert

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024  # larger bodies are cut here and kept as malformed
# Headers worth keeping (never cookies or authorisation).
KEEP_HEADERS = {"content-type", "content-length", "user-agent", "x-forwarded-for", "verif-hash",
                "flutterwave-signature", "x-real-ip"}


@dataclass(frozen=True)
class Stored:
    id: int
    new: bool  # False: the gateway sent this before (deliveries was bumped)


def body_hash(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def loads(raw: bytes | str):
    """JSON with exact numbers: amounts arrive as JSON numbers and must never become floats."""
    return json.loads(raw, parse_float=Decimal)


INSERT = """
INSERT INTO gateway_callback (gateway, kind, dedupe_key, external_id, body, headers, source_ip, received_at,
                              deliveries, last_delivery_at, attempts, outcome, note, amount)
VALUES ({}, {}, {}, {}, {}, {}, {}, now(), 1, now(), 0, {}, {}, '')
ON CONFLICT (gateway, kind, dedupe_key)
DO UPDATE SET deliveries = gateway_callback.deliveries + 1, last_delivery_at = now()
RETURNING id, (xmax = 0) AS inserted
"""


async def store(gateway: str, kind: str, raw: bytes, *, headers: dict | None = None, source_ip: str = "",
                external_id: str | None = None, outcome: str = "stored", note: str = "",
                dedupe_extra: str = "") -> Stored:
    """Save what arrived, exactly once per gateway id (or per body when there is no id)."""
    kept = {k.lower(): v for k, v in (headers or {}).items() if k.lower() in KEEP_HEADERS}
    text = raw[:MAX_BODY].decode("utf-8", errors="replace")
    key = f"id:{external_id}" + (f":{dedupe_extra}" if dedupe_extra else "") if external_id else body_hash(raw)
    async with db.transaction():
        rows = await GatewayCallback.raw(INSERT, gateway, kind, key[:120], external_id, text, json.dumps(kept),
                                         source_ip[:64], outcome, note)
    return Stored(rows[0]["id"], rows[0]["inserted"])


Processor = Callable[[dict], Awaitable[tuple[str, str]]]
PROCESSORS: dict[tuple[str, str], Processor] = {}


def processor(gateway: str, kind: str):
    """Register the function that acts on one kind of callback. It gets the locked row and
    returns (outcome, note); it runs inside the callback's transaction."""
    def register(fn: Processor) -> Processor:
        PROCESSORS[(gateway, kind)] = fn
        return fn

    return register


def _load_processors() -> None:
    # The modules that know what each callback means register themselves on import.
    import portal.payments.c2b  # noqa: F401
    import portal.payments.cards  # noqa: F401
    import portal.payments.mpesa  # noqa: F401
    import portal.payments.reversal  # noqa: F401
    import portal.messages.delivery  # noqa: F401


async def process(callback_id: int) -> str:
    """Act on a stored callback once. Returns its outcome; 'stored' means not yet (e.g. the
    payment it is for has not been told its gateway id yet): the sweeper comes back to it."""
    try:
        async with db.transaction():
            row = await GatewayCallback.select().where(GatewayCallback.id == callback_id).lock_rows().first()
            if row is None or row["processed_at"] is not None:
                return row["outcome"] if row else "missing"
            _load_processors()
            fn = PROCESSORS.get((row["gateway"], row["kind"]))
            if fn is None:
                outcome, note = "rejected", f"no processor for {row['gateway']}/{row['kind']}"
            else:
                outcome, note = await fn(row)
            done = outcome != "stored"
            await GatewayCallback.update({
                GatewayCallback.outcome: outcome, GatewayCallback.note: note[:2000],
                GatewayCallback.attempts: row["attempts"] + 1,
                GatewayCallback.processed_at: now() if done else None,
            }).where(GatewayCallback.id == callback_id)
            if outcome in ("unmatched", "malformed"):
                await alert(outcome, f"{row['gateway']} {row['kind']}: {note}", callback_id=callback_id)
        if outcome == "applied":
            await after_money_moved(callback_id)
        return outcome
    except Exception as e:  # the raw row is safe; record the failure and let the sweeper retry
        log.exception("processing callback %s failed", callback_id)
        await GatewayCallback.update({GatewayCallback.outcome: "error", GatewayCallback.note: f"{type(e).__name__}: {e}"[:2000],
                                      GatewayCallback.attempts: GatewayCallback.attempts + 1}).where(
            GatewayCallback.id == callback_id)
        return "error"


async def after_money_moved(callback_id: int) -> None:
    """After commit: a completed payment gets its receipts (the job keys make repeats no-ops)."""
    from tasks.documents import request_receipts

    rows = await GatewayCallback.raw(
        "SELECT p.id FROM gateway_callback c JOIN payment p ON p.id = c.payment "
        "WHERE c.id = {} AND p.receipt_number IS NOT NULL", callback_id)
    for row in rows:
        try:
            await request_receipts(row["id"])
        except RuntimeError:  # no queue in this process (e.g. a one-off script): the sweeper will
            pass


async def alert(kind: str, message: str, *, payment_id: int | None = None, callback_id: int | None = None) -> None:
    await StaffAlert.insert(StaffAlert(kind=kind, message=message[:2000], payment=payment_id, callback=callback_id))


async def unprocessed(older_than_seconds: int = 0, limit: int = 500) -> list[int]:
    rows = await GatewayCallback.raw(
        "SELECT id FROM gateway_callback WHERE processed_at IS NULL AND outcome IN ('stored', 'error') "
        "AND received_at < now() - make_interval(secs => {}) ORDER BY id LIMIT {}", older_than_seconds, limit)
    return [r["id"] for r in rows]
