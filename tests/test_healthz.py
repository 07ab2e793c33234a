"""GET /healthz tells a monitor whether the database and the queue answer: "ok" or "down", never
the driver's error (host, database and user names) to anyone who asks; the reason is logged. It
also fails ("callbacks": "late") when a gateway callback has waited too long to be processed."""

import logging

import piccolo_conf
from portal.callbacks import store as callbacks
from portal.lib import queue as queue_module
from portal.lib.db import PortalEngine
from tables.gateway import GatewayCallback
from tests.support.env import setting
from tests.support.servers import free_port


async def test_it_is_ok_when_database_and_queue_answer(anon):
    r = await anon.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "queue": "ok", "callbacks": "ok"}


async def test_it_is_503_when_the_queue_is_down(anon, settings, monkeypatch, caplog):
    class DownQueue:
        async def count(self, kind):
            raise ConnectionError("queue unreachable at redis.internal:6379")

    real = queue_module.get_queue()
    queue_module.set_queue(DownQueue())
    try:
        with caplog.at_level(logging.WARNING, logger="portal.web.health"):
            r = await anon.get("/healthz")
    finally:
        queue_module.set_queue(real)
    assert r.status_code == 503
    assert r.json() == {"status": "degraded", "database": "ok", "queue": "down", "callbacks": "ok"}
    assert "redis.internal" not in r.text
    assert "queue is down: ConnectionError: queue unreachable at redis.internal:6379" in caplog.text


async def test_an_unreachable_database_is_down_without_its_error(anon, monkeypatch, caplog):
    # A real engine pointed at a port where no PostgreSQL listens, under a telling user name.
    dsn = f"postgresql://gym_owner_login@127.0.0.1:{free_port()}/gym_books_db"
    monkeypatch.setattr(piccolo_conf, "DB", PortalEngine(config={"dsn": dsn}))
    with caplog.at_level(logging.WARNING, logger="portal.web.health"):
        r = await anon.get("/healthz")
    assert r.status_code == 503
    assert r.json() == {"status": "degraded", "database": "down", "queue": "ok", "callbacks": "down"}
    for detail in ("gym_owner_login", "gym_books_db", "127.0.0.1", "Error", "refused"):
        assert detail not in r.text
    assert "health check: database is down: " in caplog.text
    assert "ConnectionRefusedError" in caplog.text, caplog.text


async def _age_waiting_callbacks(seconds: int) -> None:
    await GatewayCallback.raw("UPDATE gateway_callback SET received_at = now() - make_interval(secs => {}) "
                              "WHERE processed_at IS NULL", seconds)


async def test_it_is_503_when_a_callback_waits_past_the_threshold(anon):
    from portal.app import create_app
    from tests.support.client import PortalClient

    await callbacks.store("daraja", "stk", b'{"Body": {}}', external_id="ws_CO_late")
    with setting("CALLBACK_LAG_ALERT_SECONDS", "600") as settings:
        async with PortalClient(create_app(settings, manage_resources=False)) as client:
            await _age_waiting_callbacks(540)
            r = await client.get("/healthz")
            assert r.status_code == 200, r.text
            assert r.json()["callbacks"] == "ok"
            await _age_waiting_callbacks(660)
            r = await client.get("/healthz")
            assert r.status_code == 503
            assert r.json() == {"status": "degraded", "database": "ok", "queue": "ok", "callbacks": "late"}
            # Given up on (staff were alerted): it no longer holds the portal down.
            await GatewayCallback.raw("UPDATE gateway_callback SET attempts = {}", callbacks.MAX_ATTEMPTS)
            assert (await client.get("/healthz")).status_code == 200
            # Processed: nothing waits.
            await GatewayCallback.raw("UPDATE gateway_callback SET attempts = 1, processed_at = now(), "
                                      "outcome = 'applied'")
            assert (await client.get("/healthz")).json()["callbacks"] == "ok"
