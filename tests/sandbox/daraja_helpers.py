"""Helpers for the Daraja simulator tests: a thin client that speaks Daraja's wire format.

Written from gateways.md, independently of the simulator's code (except the config defaults).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from portal.sandbox.config import SandboxConfig
from tests.support.servers import CallbackSink, serve_in_thread

CFG = SandboxConfig()  # same environment as the `sandbox` fixture's config
SHORTCODE = CFG.daraja_shortcode
PASSKEY = CFG.daraja_passkey
NAIROBI = timezone(timedelta(hours=3))

# Magic numbers, as documented in portal/sandbox/daraja.py and on the sandbox index page.
SUCCESS = "254700000001"
CANCELLED = "254700000002"
TIMEOUT = "254700000003"
WRONG_PIN = "254700000004"
INSUFFICIENT = "254700000005"
LATE = "254700000006"
TWICE = "254700000007"
FIRST = "254700000008"
NO_CALLBACK = "254700000009"
INTERACTIVE = "254700000010"
EXPIRED = "254700000011"
CONTRADICTS = "254700000012"
TEST_MSISDN = "254708374149"


def timestamp() -> str:
    return datetime.now(NAIROBI).strftime("%Y%m%d%H%M%S")


def password(ts: str, shortcode: str = SHORTCODE, passkey: str = PASSKEY) -> str:
    return base64.b64encode(f"{shortcode}{passkey}{ts}".encode()).decode()


def body_of(received) -> dict:
    return json.loads(received.body)


class Daraja:
    """Talks to the sandbox like a Daraja client would, plus the control API."""

    def __init__(self, base: str, sink: CallbackSink) -> None:
        self.base = base
        self.sink = sink
        self.http = httpx.Client(base_url=base, timeout=15, trust_env=False)
        self._token: str | None = None

    # -- auth
    def get_token(self, key: str = CFG.daraja_consumer_key,
                  secret: str = CFG.daraja_consumer_secret) -> httpx.Response:
        return self.http.get("/oauth/v1/generate", params={"grant_type": "client_credentials"},
                             auth=(key, secret))

    @property
    def token(self) -> str:
        if self._token is None:
            r = self.get_token()
            assert r.status_code == 200, r.text
            self._token = r.json()["access_token"]
        return self._token

    def post(self, path: str, body, token: str | None = None, headers: dict | None = None
             ) -> httpx.Response:
        h = {"Authorization": f"Bearer {token or self.token}"}
        h.update(headers or {})
        return self.http.post(path, json=body, headers=h)

    # -- STK
    def stk_body(self, phone: str = SUCCESS, amount=1, **overrides) -> dict:
        ts = timestamp()
        body = {
            "BusinessShortCode": int(SHORTCODE),
            "Password": password(ts),
            "Timestamp": ts,
            "TransactionType": "CustomerPayBillOnline",
            "Amount": amount,
            "PartyA": int(phone),
            "PartyB": int(SHORTCODE),
            "PhoneNumber": int(phone),
            "CallBackURL": f"{self.sink.base}/stk/cb-s3cr3t",
            "AccountReference": "PTF0001",
            "TransactionDesc": "Gym fee",
        }
        body.update(overrides)
        return body

    def push(self, phone: str = SUCCESS, amount=1, **overrides) -> httpx.Response:
        return self.post("/mpesa/stkpush/v1/processrequest", self.stk_body(phone, amount, **overrides))

    def push_ok(self, phone: str = SUCCESS, amount=1, **overrides) -> dict:
        r = self.push(phone, amount, **overrides)
        assert r.status_code == 200, r.text
        return r.json()

    def query(self, checkout_request_id: str, **overrides) -> httpx.Response:
        ts = timestamp()
        body = {"BusinessShortCode": SHORTCODE, "Password": password(ts), "Timestamp": ts,
                "CheckoutRequestID": checkout_request_id}
        body.update(overrides)
        return self.post("/mpesa/stkpushquery/v1/query", body)

    # -- C2B
    def register(self, version: str = "v2", shortcode: str = "600984", response_type="Completed",
                 validation: str | None = "/c2b/validate/s3cr3t",
                 confirmation: str = "/c2b/confirm/s3cr3t", **overrides) -> httpx.Response:
        body = {"ShortCode": shortcode, "ResponseType": response_type,
                "ConfirmationURL": f"{self.sink.base}{confirmation}"}
        if validation is not None:
            body["ValidationURL"] = (validation if validation.startswith("http")
                                     else f"{self.sink.base}{validation}")
        body.update(overrides)
        return self.post(f"/mpesa/c2b/{version}/registerurl", body)

    def simulate(self, version: str = "v2", shortcode: str = "600984", amount=3000,
                 msisdn=254708374149, bill_ref: str | None = "PTF0001", **overrides):
        body = {"ShortCode": int(shortcode), "CommandID": "CustomerPayBillOnline",
                "Amount": amount, "Msisdn": msisdn, "BillRefNumber": bill_ref}
        body.update(overrides)
        return self.post(f"/mpesa/c2b/{version}/simulate", body)

    # -- control API
    def control(self, method: str, path: str, json_body=None) -> dict:
        r = self.http.request(method, f"/_sandbox/daraja{path}", json=json_body)
        assert r.status_code < 300, r.text
        return r.json()

    def settings(self, **changes) -> dict:
        return self.control("POST", "/settings", changes)

    def stk_state(self, checkout_request_id: str) -> dict:
        return self.control("GET", f"/stk/{checkout_request_id}")

    def deliveries(self, **filters) -> list[dict]:
        q = "&".join(f"{k}={v}" for k, v in filters.items())
        return self.control("GET", f"/callbacks?{q}")["items"]

    def wait_resolved(self, checkout_request_id: str, timeout: float = 5) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.stk_state(checkout_request_id)
            if state["state"] == "resolved":
                return state
            time.sleep(0.02)
        raise AssertionError("STK request not resolved in time")


def received_at(sink: CallbackSink, path_prefix: str) -> list:
    return [r for r in sink.received if r.path.startswith(path_prefix)]


def wait_at(sink: CallbackSink, path_prefix: str, count: int, timeout: float = 5) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = received_at(sink, path_prefix)
        if len(got) >= count:
            return got
        time.sleep(0.01)
    raise AssertionError(f"expected {count} requests at {path_prefix}, got "
                         f"{len(received_at(sink, path_prefix))}")


@pytest.fixture
def daraja(sandbox, callback_sink):
    client = Daraja(sandbox, callback_sink)
    yield client
    client.http.close()


@dataclass
class SlowSink(CallbackSink):
    """A CallbackSink that takes `delay` seconds before answering (a slow ValidationURL)."""

    delay: float = 1.0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] != "/healthz":
            await asyncio.sleep(self.delay)
        await super().__call__(scope, receive, send)


@pytest.fixture
def slow_sink():
    sink = SlowSink()
    with serve_in_thread(sink) as base:
        sink.base = base
        yield sink
