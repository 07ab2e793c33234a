"""Fixtures for the gateway clients: Settings pointed at the sandbox, an empty token table, and a
Daraja client whose every outbound request is recorded (to prove what did, or did not, go out)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import httpx
import pytest
import pytest_asyncio

from portal.gateways.daraja import DarajaClient
from portal.gateways.http import make_http_client

SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
CALLBACK_TOKEN = "t0ken-for-tests-5f3a9c"


class Traffic:
    """Every request the portal's HTTP client sent, and every answer it got, by path."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.answers: list[tuple[str, int]] = []

    async def on_request(self, request: httpx.Request) -> None:
        self.requests[request.url.path] += 1

    async def on_response(self, response: httpx.Response) -> None:
        self.answers.append((response.request.url.path, response.status_code))

    @property
    def token_requests(self) -> int:
        return self.requests["/oauth/v1/generate"]

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def statuses(self, path: str) -> list[int]:
        return [status for p, status in self.answers if p == path]

    def http_client(self, **kwargs) -> httpx.AsyncClient:
        return make_http_client(
            event_hooks={"request": [self.on_request], "response": [self.on_response]}, **kwargs)


class SandboxControl:
    """The Daraja simulator's control API (/_sandbox/daraja), over HTTP."""

    def __init__(self, base: str) -> None:
        self.base = f"{base}/_sandbox/daraja"

    async def _call(self, method: str, path: str, json=None) -> dict:
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.request(method, f"{self.base}{path}", json=json)
        r.raise_for_status()
        return r.json()

    async def get(self, path: str) -> dict:
        return await self._call("GET", path)

    async def post(self, path: str, json=None) -> dict:
        return await self._call("POST", path, json if json is not None else {})

    async def settings(self, **changes) -> dict:
        return await self.post("/settings", changes)

    async def stk(self) -> list[dict]:
        return (await self.get("/stk"))["items"]


@pytest_asyncio.fixture
async def token_table(db):
    """The gateway_token table, empty (tests/fixtures.py's TRUNCATE list does not know it)."""
    from tables.gateway_tokens import GatewayToken

    await GatewayToken.delete(force=True)
    yield GatewayToken
    await GatewayToken.delete(force=True)


@pytest.fixture
def daraja_settings(sandbox, callback_sink):
    from portal.settings import get_settings

    return dataclasses.replace(
        get_settings(),
        daraja_base_url=sandbox,
        daraja_consumer_key="sandbox-key",
        daraja_consumer_secret="sandbox-secret",
        daraja_shortcode="174379",
        daraja_passkey=SANDBOX_PASSKEY,
        daraja_callback_token=CALLBACK_TOKEN,
        public_base_url=callback_sink.base,
    )


@pytest.fixture
def control(sandbox) -> SandboxControl:
    return SandboxControl(sandbox)


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


@pytest_asyncio.fixture
async def daraja(daraja_settings, token_table, traffic):
    http = traffic.http_client()
    client = DarajaClient(daraja_settings, http, initiator="testapi",
                          security_credential="c2FuZGJveC1jcmVkZW50aWFs")
    yield client
    await http.aclose()
