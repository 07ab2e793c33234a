"""Helpers for tests that talk to the simulated Africa's Talking over HTTP (no portal code)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import httpx

from portal.sandbox.config import SandboxConfig

USERNAME = SandboxConfig().at_username
API_KEY = SandboxConfig().at_api_key
HEADERS = {"apiKey": API_KEY, "Accept": "application/json"}


def send(
    sandbox: str,
    to: str,
    message: str = "Hello from the gym",
    headers: dict | None = None,
    **fields: Any,
) -> httpx.Response:
    data = {"username": USERNAME, "to": to, "message": message, **fields}
    return httpx.post(
        f"{sandbox}/version1/messaging", data=data, headers=HEADERS if headers is None else headers
    )


def recipients(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code == 201, r.text
    return r.json()["SMSMessageData"]["Recipients"]


def form(received) -> list[tuple[str, str]]:
    """A delivery report's form fields, in the order they were sent."""
    return parse_qsl(received.body.decode(), keep_blank_values=True)


def messages(sandbox: str, phone: str | None = None) -> list[dict[str, Any]]:
    params = {"phone": phone} if phone else None
    return httpx.get(f"{sandbox}/_sandbox/at/messages", params=params).json()["messages"]
