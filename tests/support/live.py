"""The portal over HTTP for the tests that run the real chain: portal (uvicorn, on the test's event
loop) -> worker -> gateway sandbox -> callbacks back to the portal's hook URLs. Shared by the M-Pesa,
card, pay-link and message tests (their conftest files import these fixtures)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import httpx
import pytest_asyncio

from portal.settings import get_settings
from tests.support.servers import free_port, serve_on_this_loop

PHONES = {  # the sandbox's magic numbers (portal/sandbox/daraja.py)
    "success": "254700000001", "cancelled": "254700000002", "timeout": "254700000003", "wrong_pin": "254700000004",
    "insufficient": "254700000005", "late": "254700000006", "twice": "254700000007", "callback_first": "254700000008",
    "no_callback": "254700000009", "interactive": "254700000010",
}


@dataclass
class Live:
    portal: str
    sandbox: str
    settings: object

    def hook(self, kind: str = "stk") -> str:
        return f"{self.portal}/hooks/daraja/{kind}/{self.settings.daraja_callback_token}"


@pytest_asyncio.fixture
async def live(sandbox, db, queue):
    """Settings pointing at the sandbox, and the portal served over HTTP on this event loop
    (so it shares the test's connection pool and queue)."""
    port = free_port()
    saved = dict(os.environ)
    os.environ.update(SANDBOX="1", SANDBOX_PORT=sandbox.rsplit(":", 1)[1], DARAJA_BASE_URL=sandbox,
                      PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", DARAJA_CALLBACK_TOKEN="test-hook-token-1234",
                      STK_TIMEOUT_SECONDS="60")
    get_settings.cache_clear()
    settings = get_settings()
    from portal.app import create_app

    app = create_app(settings, manage_resources=False)
    try:
        async with serve_on_this_loop(app, port):
            async with httpx.AsyncClient() as http:
                await http.post(f"{sandbox}/_sandbox/daraja/reset")
            yield Live(f"http://127.0.0.1:{port}", sandbox, settings)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


@pytest_asyncio.fixture
async def card_live(live):
    """`live`, with the Flutterwave sandbox reset and sending its webhooks to the served portal."""
    async with httpx.AsyncClient() as http:
        await http.post(f"{live.sandbox}/_sandbox/flutterwave/reset")
        r = await http.post(f"{live.sandbox}/_sandbox/flutterwave/settings",
                            json={"webhook_url": f"{live.portal}/hooks/flutterwave"})
        assert r.status_code < 300, r.text
    return live


async def wait_for_status(payment_id: int, statuses: set[str], timeout: float = 20) -> dict:
    from tables.billing import Payment

    for _ in range(int(timeout / 0.05)):
        row = await Payment.select().where(Payment.id == payment_id).first()
        if row["status"] in statuses:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"payment {payment_id} stayed {row['status']}, wanted {statuses}")
