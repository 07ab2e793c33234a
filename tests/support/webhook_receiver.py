"""A customer's webhook receiver over real HTTP: it verifies every request with the
`standardwebhooks` library, as a customer's code would, and can fail or hang on purpose."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.servers import read_request


@dataclass
class Got:
    msg_id: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int  # the status this receiver answered

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    secret: str = ""
    fail_next: int = 0  # answer 500 to this many requests, then take them
    refuse_first: frozenset[str] = frozenset()  # event types answered 500 the first time each arrives
    hold_next: bool = False  # keep the next request waiting until release() (a worker can die meanwhile)
    got: list[Got] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _released: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, scope, receive, send):
        request = await read_request(scope, receive, send)
        if request is None:
            return
        body, headers = request
        try:
            Webhook(self.secret).verify(body, headers)
            verified = True
        except (WebhookVerificationError, ValueError):
            verified = False
        with self._cond:
            hold = self.hold_next
            self.hold_next = False
            if not verified:
                status = 401
            elif hold:
                status = 200
            elif self.fail_next > 0:
                self.fail_next -= 1
                status = 500
            elif self._first_of_refused(headers.get("webhook-id", ""), body):
                status = 500
            else:
                status = 200
            # A held request's answer goes to whoever is still there: maybe no one (0).
            self.got.append(Got(headers.get("webhook-id", ""), headers, body, verified, 0 if hold else status))
            self._cond.notify_all()
        if hold:
            while not self._released.is_set():
                await asyncio.sleep(0.05)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps({"status": status}).encode()})

    def _first_of_refused(self, msg_id: str, body: bytes) -> bool:
        if not self.refuse_first or json.loads(body).get("type") not in self.refuse_first:
            return False
        return not any(g.msg_id == msg_id for g in self.got)

    def release(self) -> None:
        self._released.set()

    async def until(self, predicate, timeout: float = 20.0, between=None) -> list[Got]:
        """Wait (without blocking the loop: the worker may run on it) until predicate(got) holds;
        `between` is awaited on each poll (a test moving the clock and sweeping)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            with self._cond:
                got = list(self.got)
            if predicate(got):
                return got
            if between is not None:
                await between()
            await asyncio.sleep(0.1)
        raise AssertionError(f"the receiver did not get what was expected; it got {[(g.msg_id, g.answered) for g in got]}")

    def taken(self) -> list[Got]:
        """Requests it answered 2xx, in the order they arrived."""
        with self._cond:
            return [g for g in self.got if 200 <= g.answered < 300]
