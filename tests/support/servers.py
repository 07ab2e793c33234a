"""Real HTTP servers for tests: an ASGI app on a free loopback port, in a background thread or on
the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serve_on_this_loop(app, port: int) -> AsyncIterator[None]:
    """Serve `app` on the running loop (so it shares the test's connection pool and queue)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    server.capture_signals = contextlib.nullcontext
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        # uvicorn waits for open requests before it exits; one stuck on a lock must not hang
        # the suite, so give it a few seconds and then stop it hard.
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), 10)
        except asyncio.TimeoutError:
            server.force_exit = True
            task.cancel()


@contextlib.contextmanager
def serve_in_thread(app, port: int | None = None, health_path: str = "/healthz") -> Iterator[str]:
    """Serve `app` over real HTTP until the block ends; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.started:
            break
        time.sleep(0.02)
    else:
        raise RuntimeError(f"server on {base} did not start")
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


async def read_request(scope, receive, send) -> tuple[bytes, dict[str, str]] | None:
    """For the tests' small ASGI servers: the request's whole body and its headers (lower-case
    names), or None once a lifespan scope has been answered."""
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return None
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    return body, {k.decode().lower(): v.decode() for k, v in scope["headers"]}


@dataclass
class CallbackSink:
    """A tiny ASGI app that records every request it gets and answers a configurable body."""

    received: list[Received] = field(default_factory=list)
    status: int = 200
    reply: bytes = b'{"ResultCode": 0, "ResultDesc": "Accepted"}'
    _cond: threading.Condition = field(default_factory=threading.Condition)

    async def __call__(self, scope, receive, send):
        request = await read_request(scope, receive, send)
        if request is None:
            return
        body, headers = request
        if scope["path"] != "/healthz":
            with self._cond:
                self.received.append(Received(scope["method"], scope["path"], headers, body))
                self._cond.notify_all()
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": self.reply})

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until at least `count` requests arrived (or fail loudly)."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.received) >= count, timeout)
        if not ok:
            raise AssertionError(f"expected {count} callbacks, got {len(self.received)}")
        return list(self.received)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; return that or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def get_json(url: str, **kw) -> dict:
    r = httpx.get(url, timeout=10, **kw)
    r.raise_for_status()
    return r.json()
