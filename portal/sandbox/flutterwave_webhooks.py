"""Webhook delivery for the simulated Flutterwave (gateways.md §2.5 "Delivery semantics").

Deliveries run as tracked asyncio tasks sharing one httpx client; shutdown (and reset) cancels
them. Only HTTP 200 counts as delivered. A failed delivery is retried `webhook_retries` times,
`webhook_retry_interval` seconds apart (Flutterwave: 3 x 30 min, only when enabled). Every
attempt, including an unreachable URL, is recorded and never raises.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import Any

import httpx

from portal.sandbox.flutterwave_model import (
    FlutterwaveState,
    Refund,
    Transaction,
    WebhookAttempt,
    refund_webhook,
    sign_body,
)

log = logging.getLogger("portal.sandbox.flutterwave")


class Outbox:
    """Background sends: every task is kept until it ends, so none is lost or left running."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.client = httpx.AsyncClient(
            timeout=timeout, trust_env=False
        )  # callbacks are local: no proxies
        self.tasks: set[asyncio.Task] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def cancel_all(self) -> None:
        tasks = list(self.tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        await self.cancel_all()
        await self.client.aclose()


def encode(body: dict[str, Any]) -> bytes:
    # Compact and UTF-8, like a Node/JSON.stringify sender: a receiver that re-serialises the
    # parsed body before checking flutterwave-signature gets different bytes (pitfall 17).
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def auth_headers(secret_hash: str, scenario: frozenset[str], body: bytes) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if "signature" in scenario:
        headers["flutterwave-signature"] = sign_body(secret_hash, body)
    elif "wrong_hash" in scenario:
        headers["verif-hash"] = f"not-{secret_hash}"
    else:
        headers["verif-hash"] = secret_hash
    return headers


async def post_once(
    state: FlutterwaveState,
    kind: str,
    tx: Transaction,
    body: bytes,
    headers: dict[str, str],
    attempt_no: int,
) -> WebhookAttempt:
    url = state.webhook_url
    attempt = state.record_attempt(
        kind=kind,
        transaction_id=tx.id,
        tx_ref=tx.tx_ref,
        url=url,
        headers=headers,
        body=body,
        attempt=attempt_no,
    )
    if not url:
        attempt.error = "no webhook URL configured"
        return attempt
    try:
        r = await state.outbox.client.post(url, content=body, headers=headers)
        attempt.status_code = r.status_code
    except asyncio.CancelledError:
        attempt.error = "cancelled"
        raise
    except Exception as e:  # noqa: BLE001 - whatever the merchant's end does, carry on
        attempt.error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        log.info("webhook to %s failed: %s", url, attempt.error)
    return attempt


async def post_with_retries(
    state: FlutterwaveState, kind: str, tx: Transaction, body: bytes, headers: dict[str, str]
) -> WebhookAttempt:
    retries = state.settings.webhook_retries
    attempt = await post_once(state, kind, tx, body, headers, 1)
    for n in range(2, retries + 2):
        if attempt.status_code == 200:
            break
        await asyncio.sleep(state.settings.webhook_retry_interval)
        attempt = await post_once(state, kind, tx, body, headers, n)
    return attempt


def charge_webhook(
    state: FlutterwaveState, tx: Transaction, scenario: frozenset[str]
) -> tuple[bytes, dict]:
    body = encode(tx.webhook_flat() if "flat" in scenario else tx.webhook_v3())
    return body, auth_headers(state.config.flutterwave_secret_hash, scenario, body)


def schedule_charge_webhook(state: FlutterwaveState, tx: Transaction) -> None:
    """What Flutterwave does after a charge, shaped by the transaction's scenario."""
    if "none" in tx.scenario:
        return
    if tx.status != "successful" and not state.settings.failed_webhooks:
        return
    delay = state.config.callback_delay
    if "late" in tx.scenario:
        delay += state.settings.late_webhook_delay
    times = 2 if "duplicate" in tx.scenario else 1
    body, headers = charge_webhook(state, tx, tx.scenario)

    async def deliver() -> None:
        await asyncio.sleep(delay)
        for _ in range(times):
            await post_with_retries(state, "charge.completed", tx, body, headers)

    state.outbox.spawn(deliver())


async def resend_charge_webhook(
    state: FlutterwaveState, tx: Transaction, times: int, scenario: frozenset[str]
) -> list[WebhookAttempt]:
    """Control API: send now, `times` times, one attempt each, and report what happened."""
    body, headers = charge_webhook(state, tx, scenario)
    return [await post_once(state, "charge.completed", tx, body, headers, 1) for _ in range(times)]


def schedule_refund_webhook(state: FlutterwaveState, tx: Transaction, refund: Refund) -> None:
    body = encode(refund_webhook(tx, refund))
    headers = auth_headers(state.config.flutterwave_secret_hash, tx.scenario, body)

    async def deliver() -> None:
        await asyncio.sleep(state.config.callback_delay)
        await post_with_retries(state, "refund", tx, body, headers)

    state.outbox.spawn(deliver())
