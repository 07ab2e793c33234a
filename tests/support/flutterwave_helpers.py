"""Small helpers for tests that talk to the simulated Flutterwave over HTTP (no portal code)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from portal.sandbox.config import SandboxConfig

# The `sandbox` fixture builds SandboxConfig() from the same environment, so these match it.
SECRET_KEY = SandboxConfig().flutterwave_secret_key
SECRET_HASH = SandboxConfig().flutterwave_secret_hash
AUTH = {"Authorization": f"Bearer {SECRET_KEY}"}
RETURN_URL = "https://gym.example.test/pay/return"


def payment(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tx_ref": "inv-42-1718000000",
        "amount": 1500,
        "currency": "KES",
        "redirect_url": RETURN_URL,
        "customer": {
            "email": "jane@example.test",
            "name": "Jane Doe",
            "phonenumber": "254708374149",
        },
        "customizations": {"title": "Mazoezi Gym", "description": "Invoice 42"},
        "payment_options": "card",
    }
    body.update(overrides)
    return body


def create(sandbox: str, **overrides: Any) -> str:
    """POST /v3/payments and return data.link."""
    r = httpx.post(f"{sandbox}/v3/payments", json=payment(**overrides), headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()["data"]["link"]


def pay(link: str, card: str = "success", scenario: str = "normal") -> httpx.Response:
    """Submit the hosted page's form as a browser would (no redirect following)."""
    return httpx.post(link, data={"card": card, "scenario": scenario})


def cancel(link: str) -> httpx.Response:
    return httpx.post(link, data={"action": "cancel", "scenario": "normal"})


def query(location: str) -> dict[str, str]:
    """Query of a redirect Location, one value per key (fails on repeated keys)."""
    parsed = parse_qs(urlsplit(location).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in parsed.values()), parsed
    return {k: v[0] for k, v in parsed.items()}


def paid(
    sandbox: str, card: str = "success", scenario: str = "normal", **overrides: Any
) -> dict[str, str]:
    """Create a checkout, pay it on the page, return the redirect's query parameters."""
    r = pay(create(sandbox, **overrides), card, scenario)
    assert r.status_code == 303, r.text
    return query(r.headers["location"])


def verify(sandbox: str, tx_id: Any) -> httpx.Response:
    return httpx.get(f"{sandbox}/v3/transactions/{tx_id}/verify", headers=AUTH)


def settings(sandbox: str, **knobs: Any) -> dict[str, Any]:
    r = httpx.post(f"{sandbox}/_sandbox/flutterwave/settings", json=knobs)
    assert r.status_code == 200, r.text
    return r.json()["settings"]


def hooks(sink, count: int) -> list:
    """Wait for `count` webhooks on the sink; return them with parsed bodies as .json."""
    received = sink.wait_for(count)
    for item in received:
        item.json = json.loads(item.body)
    return received
