"""From a stored callback to what acts on it: one table, read top to bottom.

A callback is read once: the hook that receives it reads the body (to find the gateway's id and to
refuse what cannot be read) and hands what it read to `process`; the sweeper, coming back to a row
later, reads the stored body with the same reader. Each processor gets the locked row and what was
read from it, runs inside the callback's transaction, and returns (outcome, note), or (outcome, note,
columns) where `columns` are more of its row's columns to write with the outcome (what it paid).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

from portal.callbacks.store import (
    MAX_ATTEMPTS,
    acting_on_unauthenticated_input,
    alert,
    loads,
    pg_text,
)
from portal.documents.requests import request_receipts
from portal.gateways.africastalking import parse_delivery_report
from portal.gateways.flutterwave import parse_webhook
from portal.lib import db, metrics
from portal.lib.clock import now
from portal.messages import delivery
from portal.payments.cards import checkout
from portal.payments.mpesa import c2b, stk
from portal.reconcile import sources, stk_status
from tables.gateway import GatewayCallback

log = logging.getLogger(__name__)


def read_redirect(body: str) -> dict[str, str]:
    """Flutterwave's redirect, stored as its query string."""
    return {k: v[0] for k, v in parse_qs(body).items()}


@dataclass(frozen=True)
class Route:
    read: Callable[[str], Any]  # the stored body -> what `act` works on; ValueError: malformed
    act: Callable[[dict, Any], Awaitable[tuple]]  # (outcome, note) or (outcome, note, {column: value})
    # False: anyone can send it (a browser's redirect). What cannot be read or matched in it is
    # kept on its row without an alert (it is whoever typed it's, not a gateway's), and alerts
    # about what it names are rate-limited (store.alert).
    authenticated: bool = True


ROUTES: dict[tuple[str, str], Route] = {
    ("daraja", "stk"): Route(loads, stk.process_stk_callback),
    ("daraja", "c2b_validation"): Route(loads, c2b.process_c2b_validation),
    ("daraja", "c2b_confirmation"): Route(loads, c2b.process_c2b_confirmation),
    # Results of reversals and of Transaction Status queries (quiet prompts), told apart there.
    ("daraja", "result"): Route(loads, stk_status.process_result),
    ("daraja", "timeout"): Route(loads, stk_status.process_timeout),
    ("flutterwave", "webhook"): Route(parse_webhook, checkout.process_webhook),
    ("flutterwave", "redirect"): Route(read_redirect, checkout.process_redirect, authenticated=False),
    ("africastalking", "delivery"): Route(parse_delivery_report, delivery.apply_delivery_report),
    # Money found by reconciliation (portal.reconcile.sources): read as the Paybill confirmation
    # it stands for and acted on by the same processor, so each receipt is credited once.
    ("daraja", sources.PULL): Route(sources.read_pull, c2b.process_c2b_confirmation),
    ("daraja", sources.STATEMENT): Route(sources.read_statement, c2b.process_c2b_confirmation),
}

_UNREAD = object()


async def _act(row: dict, route: Route | None, parsed: Any) -> tuple[str, str]:
    if route is None:
        return "rejected", f"no processor for {row['gateway']}/{row['kind']}"
    if parsed is _UNREAD:
        try:
            parsed = route.read(row["body"])
        except ValueError as e:
            return "malformed", f"could not be read: {e}"[:300]
    return await route.act(row, parsed)


async def process(callback_id: int, parsed: Any = _UNREAD) -> str:
    """Act on a stored callback once. Returns its outcome; 'stored' means not yet (e.g. the
    payment it is for has not been told its gateway id yet): the sweeper comes back to it.
    `parsed`: what the receiving hook already read from this callback's body."""
    try:
        async with db.transaction():
            row = await GatewayCallback.select().where(GatewayCallback.id == callback_id).lock_rows().first()
            if row is None or row["processed_at"] is not None:
                return row["outcome"] if row else "missing"
            route = ROUTES.get((row["gateway"], row["kind"]))
            authenticated = route is None or route.authenticated
            with acting_on_unauthenticated_input(not authenticated):
                outcome, note, *linked = await _act(row, route, parsed)
                done = outcome != "stored"
                columns = {"outcome": outcome, "note": pg_text(note[:2000]), "attempts": row["attempts"] + 1,
                           "processed_at": now() if done else None, **(linked[0] if linked else {})}
                # With the outcome: the payment it paid and has a receipt number now, if any (its
                # receipts are asked for after commit).
                paid = (await GatewayCallback.raw(
                    f"UPDATE gateway_callback c SET {', '.join(f'{name} = {{}}' for name in columns)} WHERE id = {{}} "
                    "RETURNING (SELECT p.id FROM payment p WHERE p.id = c.payment AND p.receipt_number IS NOT NULL) "
                    "AS paid, (SELECT p.member FROM payment p WHERE p.id = c.payment) AS member",
                    *columns.values(), callback_id))[0]
                if outcome in ("unmatched", "malformed") and authenticated:
                    await alert(outcome, f"{row['gateway']} {row['kind']}: {note}", callback_id=callback_id)
                elif not done and row["attempts"] + 1 >= MAX_ATTEMPTS:
                    await _given_up(row, note)
        if done:
            metrics.callback_processed(row["gateway"], outcome)
        if outcome == "applied" and paid["paid"] is not None:
            await receipts_for(paid["paid"], paid["member"])
        return outcome
    except Exception as e:  # the raw row is safe; record the failure and let the sweeper retry
        log.exception("processing callback %s failed", callback_id)
        note = pg_text(f"{type(e).__name__}: {e}"[:2000])
        rows = await GatewayCallback.raw(
            "UPDATE gateway_callback SET outcome = 'error', note = {}, attempts = attempts + 1 WHERE id = {} "
            "RETURNING id, gateway, kind, attempts, body", note, callback_id)
        if rows:
            metrics.callback_failed(rows[0]["gateway"])
        if rows and rows[0]["attempts"] >= MAX_ATTEMPTS:
            await _given_up({**rows[0], "attempts": rows[0]["attempts"] - 1}, note)
        return "error"


async def _given_up(row: dict, note: str) -> None:
    """The last try: staff are told, with what was sent, and the sweeper stops coming back."""
    await alert("callback_stuck", f"{row['gateway']} {row['kind']} #{row['id']} could not be processed after "
                f"{row['attempts'] + 1} tries ({note}). It said: {row['body'][:500]}", callback_id=row["id"])


async def process_all(callback_ids: list[int]) -> int:
    for callback_id in callback_ids:
        await process(callback_id)
    return len(callback_ids)


async def receipts_for(payment_id: int, member_id: int | None) -> None:
    """After commit: a completed payment gets its receipts (the job keys make repeats no-ops)."""
    try:
        await request_receipts(payment_id, member_id)
    except RuntimeError:  # no queue in this process (e.g. a one-off script): the sweeper will
        pass
