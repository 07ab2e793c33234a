"""Store first, act second: every gateway callback is saved raw, in its own transaction, before
anything is done with it. This module only stores, dedupes and finds rows; what acts on them is
chosen in portal.callbacks.dispatch (processing is idempotent and retried by the sweeper).
"""

from __future__ import annotations

import hashlib
import json
import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal

from portal.lib import db, metrics, ratelimit
from portal.lib.clock import now
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


def pg_text(text: str) -> str:
    """Text PostgreSQL can hold: it has no NUL character, so a NUL that arrived is kept as U+FFFD
    (as bytes that are not UTF-8 are)."""
    return text.replace("\x00", "\ufffd")


def has_nul(data) -> bool:
    """Does any string in this parsed JSON (keys included) hold a NUL ("\\u0000")? Walked without
    recursion: the parser reads nesting deeper than Python's own recursion limit."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads(raw: bytes | str):
    """JSON with exact numbers: amounts arrive as JSON numbers and must never become floats.
    Anything that cannot be read raises ValueError, a body nested deeper than the parser goes too,
    and a NUL in any string (no gateway sends one, and PostgreSQL text cannot hold it)."""
    try:
        data = json.loads(raw, parse_float=Decimal)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if has_nul(data):
        raise ValueError("a NUL character in a string")
    return data


# A repeat delivery bumps the row it repeats. A *different* body for the same gateway id repeats
# nothing while that row has not been acted on (still waiting, malformed, failing or given up):
# counting it as a repeat would let a broken body take the genuine one's place. It is kept as a
# row of its own instead (its key suffixed with its body's hash, so its own repeats still count).
INSERT = """
INSERT INTO gateway_callback (gateway, kind, dedupe_key, external_id, body, headers, source_ip, received_at,
                              deliveries, last_delivery_at, attempts, outcome, note, amount)
VALUES ({}, {}, {}, {}, {}, {}, {}, now(), 1, now(), 0, {}, {}, '')
ON CONFLICT (gateway, kind, dedupe_key)
DO UPDATE SET deliveries = gateway_callback.deliveries + 1, last_delivery_at = now()
WHERE gateway_callback.body = EXCLUDED.body OR gateway_callback.outcome NOT IN ('stored', 'malformed', 'error')
RETURNING id, (xmax = 0) AS inserted
"""
KEY_LENGTH = 120


def _kept_headers(headers: dict | None) -> dict:
    return {k.lower(): pg_text(v) for k, v in (headers or {}).items() if k.lower() in KEEP_HEADERS}


async def store(gateway: str, kind: str, raw: bytes, *, headers: dict | None = None, source_ip: str = "",
                external_id: str | None = None, outcome: str = "stored", note: str = "",
                dedupe_extra: str = "") -> Stored:
    """Save what arrived, exactly once per gateway id (or per body when there is no id); a
    different body for an id whose row was not acted on is saved as a callback of its own."""
    kept = _kept_headers(headers)
    text = pg_text(raw[:MAX_BODY].decode("utf-8", errors="replace"))
    if external_id is not None:
        external_id = pg_text(external_id)[:KEY_LENGTH]
    key = pg_text(f"id:{external_id}" + (f":{dedupe_extra}" if dedupe_extra else "") if external_id else body_hash(raw))
    args = (external_id, text, json.dumps(kept), pg_text(source_ip)[:64], outcome, pg_text(note))
    async with db.transaction():
        rows = await GatewayCallback.raw(INSERT, gateway, kind, key[:KEY_LENGTH], *args)
        if not rows:  # a different body for a row not acted on: a callback of its own
            own_key = key[:KEY_LENGTH - 33] + "#" + body_hash(raw)[7:39]
            rows = await GatewayCallback.raw(INSERT, gateway, kind, own_key, *args)
    if rows[0]["inserted"]:
        metrics.callback_stored(gateway)
        if outcome != "stored":  # decided on arrival (malformed, rejected): nothing left to process
            metrics.callback_processed(gateway, outcome)
    return Stored(rows[0]["id"], rows[0]["inserted"])


# A request to a hook that fails its authentication (wrong token or verif-hash, an address not
# allowed) is anyone's: it is counted, never kept whole. One row per hook, address and day holds
# the first REFUSED_SAMPLE bytes of the first such request, and `deliveries` counts them all.
REFUSED_SAMPLE = 500


async def count_refused(gateway: str, kind: str, raw: bytes, *, headers: dict | None = None, source_ip: str = "",
                        note: str = "") -> Stored:
    """Count a request refused for its authentication on its hook's row for this address and day."""
    sample = raw[:REFUSED_SAMPLE].decode("utf-8", errors="replace")
    counted = f"{note}; first {min(len(raw), REFUSED_SAMPLE)} of {len(raw)} bytes kept" if len(raw) > REFUSED_SAMPLE else note
    kept = _kept_headers(headers)
    key = f"refused:{now().date().isoformat()}:{pg_text(source_ip)}"[:KEY_LENGTH]
    rows = await GatewayCallback.raw(INSERT, gateway, kind, key, None, pg_text(sample), json.dumps(kept),
                                     pg_text(source_ip)[:64], "rejected", pg_text(counted))
    return Stored(rows[0]["id"], rows[0]["inserted"])


# Input nobody authenticated (a browser's card redirect: anyone can type one) may still lead to an
# alert when it names something real; such alerts are rate-limited, across processes, so that
# whoever sends them cannot fill the Alerts page. dispatch.process marks where that input is acted on.
UNAUTHENTICATED_ALERTS_PER_HOUR = 10
_unauthenticated: ContextVar[bool] = ContextVar("acting_on_unauthenticated_input", default=False)


@contextmanager
def acting_on_unauthenticated_input(unauthenticated: bool = True):
    token = _unauthenticated.set(unauthenticated)
    try:
        yield
    finally:
        _unauthenticated.reset(token)


async def alert(kind: str, message: str, *, payment_id: int | None = None, callback_id: int | None = None) -> None:
    if _unauthenticated.get() and not await ratelimit.hit("alerts:unauthenticated", UNAUTHENTICATED_ALERTS_PER_HOUR,
                                                          3600):
        log.info("alert not raised (too many from unauthenticated input this hour): %s", kind)
        return
    await StaffAlert.insert(StaffAlert(kind=kind, message=pg_text(message[:2000]), payment=payment_id,
                                       callback=callback_id))


# A row that keeps failing is tried again 1, 3, 7, 15… minutes after it arrived (doubling), and
# given up after MAX_ATTEMPTS (about four hours) with a staff alert (dispatch.process).
MAX_ATTEMPTS = 8


async def unprocessed(older_than_seconds: int = 0, limit: int = 500) -> list[int]:
    """Rows to process again: fewest attempts first, so rows that keep failing never stand in
    front of new ones, however many there are."""
    rows = await GatewayCallback.raw(
        "SELECT id FROM gateway_callback WHERE processed_at IS NULL AND outcome IN ('stored', 'error') "
        "AND attempts < {} AND received_at < now() - make_interval(secs => greatest({}, 60 * (power(2, attempts) - 1))) "
        "ORDER BY attempts, id LIMIT {}", MAX_ATTEMPTS, older_than_seconds, limit)
    return [r["id"] for r in rows]


async def waiting(gateway: str, kinds: list[str], *, external_id: str | None = None,
                  external_id_prefix: str | None = None) -> list[int]:
    """Callbacks stored but not yet processed for one gateway id: those that beat our own record
    of the request they answer (a Daraja result before we wrote its ids, an SMS report before the
    messageId)."""
    where = ((GatewayCallback.gateway == gateway) & GatewayCallback.kind.is_in(kinds)
             & GatewayCallback.processed_at.is_null())
    if external_id is not None:
        where &= GatewayCallback.external_id == external_id
    if external_id_prefix is not None:
        where &= GatewayCallback.external_id.like(external_id_prefix.replace("%", r"\%").replace("_", r"\_") + "%")
    rows = await GatewayCallback.select(GatewayCallback.id).where(where).order_by(GatewayCallback.id)
    return [r["id"] for r in rows]
