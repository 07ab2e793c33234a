"""GET /healthz: database and queue, as JSON; 503 when either is down."""

from __future__ import annotations

import asyncio
import logging

from litestar import get
from litestar.response import Response
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

from portal.lib import queue

log = logging.getLogger(__name__)


async def _check(name: str, coro) -> str:
    """"ok" or "down": anyone may ask, so the reason (host names, database and user names in
    driver errors) goes to the log for whoever runs the portal, not into the answer."""
    try:
        await asyncio.wait_for(coro, timeout=3)
        return "ok"
    except Exception as e:
        log.warning("health check: %s is down: %s: %s", name, type(e).__name__, e)
        return "down"


async def _db() -> None:
    await engine_finder().run_querystring(QueryString("SELECT 1"))


async def _queue() -> None:
    await queue.get_queue().count("queued")


@get("/healthz")
async def healthz() -> Response:
    db_status, queue_status = await asyncio.gather(_check("database", _db()), _check("queue", _queue()))
    ok = db_status == "ok" and queue_status == "ok"
    body = {"status": "ok" if ok else "degraded", "database": db_status, "queue": queue_status}
    return Response(body, status_code=200 if ok else 503, headers={"cache-control": "no-store"})


routes = [healthz]
