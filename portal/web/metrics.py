"""GET /metrics: the Prometheus text format, for the operator's scraper only.

The credential is METRICS_TOKEN, sent as `Authorization: Bearer TOKEN`. Without the setting there
is no /metrics at all (404); a missing or wrong token is a 401 and reads nothing.
"""

from __future__ import annotations

import hmac

from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.response import Response

from portal.lib import metrics
from portal.reports import operations


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _scrape_time(figures: operations.Figures) -> list:
    g = metrics.gauge
    return [
        g("portal_queue_jobs", "Jobs on each queue, by state (queued: waiting for a worker; active: running)",
          ["queue", "state"], {key: n for key, n in figures.queue_jobs.items()}),
        g("portal_callbacks_unprocessed", "Gateway callbacks stored and still owed processing",
          ["gateway"], {(k,): n for k, n in figures.callbacks_waiting.items()}),
        g("portal_callback_oldest_unprocessed_age_seconds",
          "Age of the oldest callback still owed processing (0: none)",
          ["gateway"], {(k,): n for k, n in figures.oldest_callback_seconds.items()}),
        g("portal_payments_pending", "Payments whose outcome is not known yet (pending or processing), by age",
          ["age"], {(k,): n for k, n in figures.pending_payments.items()}),
        g("portal_messages_failed", "Messages failed or bounced (staff may resend them)",
          ["channel"], {(k,): n for k, n in figures.failed_messages.items()}),
    ]


@get("/metrics")
async def metrics_page(request: Request) -> Response:
    expected = request.app.state.settings.metrics_token
    if not expected:
        raise NotFoundException("There is nothing here.")
    if not hmac.compare_digest(_bearer(request).encode(), expected.encode()):
        return Response("", status_code=401, headers={"www-authenticate": "Bearer", "cache-control": "no-store"})
    body = metrics.render(_scrape_time(await operations.figures()))
    return Response(body, media_type=metrics.CONTENT_TYPE, headers={"cache-control": "no-store"})


routes = [metrics_page]
