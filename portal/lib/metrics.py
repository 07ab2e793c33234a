"""What the portal counts for an operator's Prometheus, and how a scrape is written.

Two kinds of figures:
- counted as things happen, in the process where they happen (requests, callbacks stored and
  processed, job durations, the sweepers' last good run): the metrics below;
- read at scrape time, from the database and the queues (queue depth, the oldest unprocessed
  callback, failed messages, payments pending): portal.reports.operations reads them and `render`
  writes them next to the counted ones.

Several processes (N web processes, M workers): prometheus_client's multi-process mode. Set
PROMETHEUS_MULTIPROC_DIR in the environment of every web and worker process (the same folder,
emptied when the services start) and each process writes its counts there; any web process's
/metrics adds them all up. Unset: one process's own registry (a worker in another process is then
not seen). prometheus_client reads the variable when it is first imported, so it must be a real
environment variable, not a line in `.env`.
"""

from __future__ import annotations

import os
import time

# The folder must exist before the first metric is touched, or every counted request would fail.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import (  # noqa: E402
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily  # noqa: E402
from prometheus_client.multiprocess import MultiProcessCollector  # noqa: E402

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# A route the router matched no handler for, or one without a template: never the raw path (a pay
# link's or a hook's token would land in a label, and a fuzzer's every path in a series).
UNMATCHED = "unmatched"

REQUESTS = Counter("portal_http_requests", "HTTP requests answered, by route template and status",
                   ["method", "route", "status"])
REQUEST_SECONDS = Histogram("portal_http_request_duration_seconds", "Time to answer a request, by route template",
                            ["method", "route"],
                            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
CALLBACKS_STORED = Counter("portal_callbacks_stored", "Gateway callbacks stored (a new row; repeats not counted)",
                           ["gateway"])
CALLBACKS_PROCESSED = Counter("portal_callbacks_processed", "Gateway callbacks acted on, by their outcome",
                              ["gateway", "outcome"])
CALLBACKS_FAILED = Counter("portal_callbacks_failed", "Gateway callback processing attempts that raised (retried by the sweeper)",
                           ["gateway"])
JOB_SECONDS = Histogram("portal_job_duration_seconds", "Time a job ran, by job kind, queue and how it ended",
                        ["job", "queue", "status"],
                        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800))
# The newest of all processes' values is the one that counts ("max" of timestamps).
SWEEPER_LAST_SUCCESS = Gauge("portal_sweeper_last_success_timestamp_seconds",
                             "When each sweeper last finished without an error (Unix time)", ["sweeper"],
                             multiprocess_mode="max")


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def observe_request(method: str, route: str | None, status: int, seconds: float) -> None:
    route = route or UNMATCHED
    REQUESTS.labels(method, route, str(status)).inc()
    REQUEST_SECONDS.labels(method, route).observe(seconds)


def callback_stored(gateway: str) -> None:
    CALLBACKS_STORED.labels(gateway).inc()


def callback_processed(gateway: str, outcome: str) -> None:
    CALLBACKS_PROCESSED.labels(gateway, outcome).inc()


def callback_failed(gateway: str) -> None:
    CALLBACKS_FAILED.labels(gateway).inc()


def job_finished(job: str, queue: str, status: str, seconds: float) -> None:
    JOB_SECONDS.labels(job, queue, status).observe(seconds)
    if job.startswith("sweep_") and status == "complete":
        SWEEPER_LAST_SUCCESS.labels(job).set(time.time())


class _Families:
    """A collector of metric families already read (the scrape-time figures, or another registry's)."""

    def __init__(self, families):
        self.families = families

    def collect(self):
        return iter(self.families)


def gauge(name: str, documentation: str, labels: list[str], values: dict[tuple[str, ...], float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for label_values, value in sorted(values.items()):
        family.add_metric(list(label_values), value)
    return family


def render(scrape_time: list[GaugeMetricFamily]) -> bytes:
    """The text exposition: every process's counts (or this one's) and the figures read now."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        MultiProcessCollector(registry)
    else:
        registry.register(_Families(list(REGISTRY.collect())))
    registry.register(_Families(scrape_time))
    return generate_latest(registry)
