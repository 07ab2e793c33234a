"""The API over real HTTP: the app served by uvicorn on the test's loop, and keys made the way
admins make them (portal/api/keys.create_key, which the /settings/api-keys page calls)."""

from __future__ import annotations

import httpx
import pytest_asyncio

from portal.api import keys
from tests.support.live import card_live, live  # noqa: F401  (the portal with the gateway sandbox, for the journeys)
from tests.support.servers import free_port, serve_on_this_loop


class Api:
    def __init__(self, base: str):
        self.base = base

    async def key(self, *scopes: str, location: int | None = None, name: str = "Test system") -> str:
        _, key = await keys.create_key(name, list(scopes or ("read",)), location, None)
        return key

    def client(self, key: str | None) -> httpx.AsyncClient:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=30)


@pytest_asyncio.fixture
async def api(app, db, queue):
    port = free_port()
    async with serve_on_this_loop(app, port):
        yield Api(f"http://127.0.0.1:{port}")


@pytest_asyncio.fixture
async def reader(api):
    """A client with a read-scoped key."""
    async with api.client(await api.key("read")) as client:
        yield client


@pytest_asyncio.fixture
async def writer(api):
    """A client with a key that may read and write members."""
    async with api.client(await api.key("read", "members")) as client:
        yield client
