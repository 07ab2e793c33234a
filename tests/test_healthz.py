"""GET /healthz tells a monitor whether the database and the queue answer: "ok" or "down", never
the driver's error (host, database and user names) to anyone who asks; the reason is logged."""

import logging

import piccolo_conf
from portal.lib import queue as queue_module
from portal.lib.db import PortalEngine
from tests.support.servers import free_port


async def test_it_is_ok_when_database_and_queue_answer(anon):
    r = await anon.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "queue": "ok"}


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
    assert r.json() == {"status": "degraded", "database": "ok", "queue": "down"}
    assert "redis.internal" not in r.text
    assert "queue is down: ConnectionError: queue unreachable at redis.internal:6379" in caplog.text


async def test_an_unreachable_database_is_down_without_its_error(anon, monkeypatch, caplog):
    # A real engine pointed at a port where no PostgreSQL listens, under a telling user name.
    dsn = f"postgresql://gym_owner_login@127.0.0.1:{free_port()}/gym_books_db"
    monkeypatch.setattr(piccolo_conf, "DB", PortalEngine(config={"dsn": dsn}))
    with caplog.at_level(logging.WARNING, logger="portal.web.health"):
        r = await anon.get("/healthz")
    assert r.status_code == 503
    assert r.json() == {"status": "degraded", "database": "down", "queue": "ok"}
    for detail in ("gym_owner_login", "gym_books_db", "127.0.0.1", "Error", "refused"):
        assert detail not in r.text
    assert "health check: database is down: " in caplog.text
    assert "ConnectionRefusedError" in caplog.text, caplog.text
