"""Webhook tests: a customer's receiver on loopback (allowed here by WEBHOOK_PRIVATE_URLS), a
clock the tests can move, and the portal with the gateway sandbox for the real payment flows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from portal.lib import clock
from tests.support.env import setting
from tests.support.live import card_live, live  # noqa: F401
from tests.support.servers import serve_in_thread
from tests.support.webhook_receiver import Receiver


@pytest.fixture(autouse=True)
def private_urls():
    with setting("WEBHOOK_PRIVATE_URLS", "1") as settings:
        yield settings


@pytest.fixture
def receiver():
    r = Receiver()
    with serve_in_thread(r) as base:
        r.url = f"{base}/gym-hooks"
        yield r
        r.release()


@dataclass
class MovedClock:
    offset: timedelta = timedelta(0)

    def move(self, **kwargs) -> None:
        self.offset += timedelta(**kwargs)


@pytest.fixture
def moved_clock(monkeypatch):
    """portal.lib.clock.now() moved by `offset` (portal.webhooks reads the clock through the module)."""
    real = clock.now
    moved = MovedClock()
    monkeypatch.setattr(clock, "now", lambda: real() + moved.offset)
    return moved
