"""GET /healthz: database, queue and callback processing, as JSON; 503 when any is not ok."""

from __future__ import annotations

import asyncio
import logging

from litestar import Request, get
from litestar.response import Response
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

from portal.lib import queue
from portal.reports import operations

log = logging.getLogger(__name__)


class Late(Exception):
    """Callbacks are waiting longer than CALLBACK_LAG_ALERT_SECONDS."""


async def _check(name: str, coro, *, bad: str = "down") -> str:
    """"ok" or `bad`: anyone may ask, so the reason (host names, database and user names in
    driver errors) goes to the log for whoever runs the portal, not into the answer."""
    try:
        await asyncio.wait_for(coro, timeout=3)
        return "ok"
    except Late as e:
        log.warning("health check: %s", e)
        return "late"
    except Exception as e:
        log.warning("health check: %s is down: %s: %s", name, type(e).__name__, e)
        return bad


async def _db() -> None:
    await engine_finder().run_querystring(QueryString("SELECT 1"))


async def _queue() -> None:
    await queue.get_queue().count("queued")


async def _callbacks(limit: int) -> None:
    """A gateway's callback stored but not acted on for too long: processing is stuck (the
    sweeper dead, or every try failing), and payments are waiting on it."""
    age = await operations.oldest_callback_age()
    if age > limit:
        raise Late(f"the oldest unprocessed gateway callback is {age:.0f} s old (limit {limit} s)")


@get("/healthz")
async def healthz(request: Request) -> Response:
    limit = request.app.state.settings.callback_lag_alert_seconds
    db_status, queue_status, callbacks_status = await asyncio.gather(
        _check("database", _db()), _check("queue", _queue()), _check("callbacks", _callbacks(limit)))
    ok = db_status == queue_status == callbacks_status == "ok"
    body = {"status": "ok" if ok else "degraded", "database": db_status, "queue": queue_status,
            "callbacks": callbacks_status}
    return Response(body, status_code=200 if ok else 503, headers={"cache-control": "no-store"})


routes = [healthz]
