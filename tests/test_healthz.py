"""GET /healthz tells a monitor whether the database and the queue answer."""

from portal.lib import queue as queue_module


async def test_it_is_ok_when_database_and_queue_answer(anon):
    r = await anon.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "queue": "ok"}


async def test_it_is_503_when_the_queue_is_down(anon, settings, monkeypatch):
    class DownQueue:
        async def count(self, kind):
            raise ConnectionError("queue unreachable")

    real = queue_module.get_queue()
    queue_module.set_queue(DownQueue())
    try:
        r = await anon.get("/healthz")
    finally:
        queue_module.set_queue(real)
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "degraded" and body["database"] == "ok"
    assert body["queue"].startswith("down: ConnectionError")
