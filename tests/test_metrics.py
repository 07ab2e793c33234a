"""GET /metrics as Prometheus sees it: scraped over HTTP with the Bearer token, parsed with
prometheus_client's own parser, and every series the README names is there and moves when the
thing it counts happens (a request, a callback stored, processed or waiting, a job, a payment
waiting, a failed message). No token set: there is no /metrics; a wrong or missing token reads
nothing."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from portal.lib import queue as queue_module
from portal.lib.clock import now
from portal.lib.money import Money
from portal.payments.mpesa import stk
from tables.gateway import GatewayCallback
from tables.messages import Message
from tests.factories import make_member
from tests.support.servers import free_port, serve_on_this_loop

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-Vq7Lm3Xr9Tz2"
HOOK_TOKEN = "metrics-hook-token-5678"


@contextlib.asynccontextmanager
async def served(**env):
    """The portal over real HTTP on this loop, with these settings in the environment."""
    from portal.app import create_app
    from portal.settings import get_settings

    saved = dict(os.environ)
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        port = free_port()
        async with serve_on_this_loop(create_app(get_settings(), manage_resources=False), port):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                yield http
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


async def scrape(http) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    r = await http.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def series(samples, name: str) -> list[dict]:
    return [dict(labels) for (n, labels) in samples if n == name]


def stk_body(checkout: str, code: int) -> bytes:
    return json.dumps({"Body": {"stkCallback": {"MerchantRequestID": "m-" + checkout, "CheckoutRequestID": checkout,
                                                "ResultCode": code, "ResultDesc": "Request cancelled by user"}}}).encode()


async def test_without_a_token_set_there_is_no_metrics_page(db, queue):
    async with served(METRICS_TOKEN="") as http:
        r = await http.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 404
    assert "portal_" not in r.text


async def test_a_missing_or_wrong_token_is_refused_and_reads_nothing(db, queue):
    async with served(METRICS_TOKEN=TOKEN) as http:
        for headers in ({}, {"authorization": "Bearer wrong-token"}, {"authorization": f"Basic {TOKEN}"},
                        {"authorization": f"Bearer {TOKEN}x"}, {"authorization": "Bearer"},
                        {"authorization": "Bearer ünïcode".encode()}):
            r = await http.get("/metrics", headers=headers)
            assert r.status_code == 401, (headers, r.status_code)
            assert "portal_" not in r.text
        assert (await http.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})).status_code == 200


async def test_requests_are_counted_by_route_template_never_by_path(db, queue):
    pay_token = "pay-token-must-not-show-Zk42"
    async with served(METRICS_TOKEN=TOKEN) as http:
        before = await scrape(http)
        assert (await http.get("/login")).status_code == 200
        assert (await http.get(f"/pay/{pay_token}")).status_code in (400, 404, 410)
        after = await scrape(http)
        text = (await http.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})).text
    login = dict(method="GET", route="/login", status="200")
    assert value(after, "portal_http_requests_total", **login) == value(before, "portal_http_requests_total", **login) + 1
    count = dict(method="GET", route="/login")
    assert (value(after, "portal_http_request_duration_seconds_count", **count)
            == value(before, "portal_http_request_duration_seconds_count", **count) + 1)
    assert value(after, "portal_http_request_duration_seconds_sum", **count) > value(
        before, "portal_http_request_duration_seconds_sum", **count)
    pay = [s for s in series(after, "portal_http_requests_total") if s["route"] == "/pay/{token}"]
    assert pay, series(after, "portal_http_requests_total")
    assert pay_token not in text


async def test_callbacks_stored_processed_and_waiting_are_counted(db, queue):
    async with served(METRICS_TOKEN=TOKEN, DARAJA_CALLBACK_TOKEN=HOOK_TOKEN) as http:
        before = await scrape(http)
        assert value(before, "portal_callback_oldest_unprocessed_age_seconds", gateway="daraja") == 0
        assert value(before, "portal_callbacks_unprocessed", gateway="daraja") == 0
        # A cancelled prompt's result for a push we have no record of yet: stored, waiting.
        r = await http.post(f"/hooks/daraja/stk/{HOOK_TOKEN}", content=stk_body("ws_CO_metrics_1", 1032),
                            headers={"content-type": "application/json"})
        assert r.status_code == 200
        # Something that cannot be read: stored and processed at once (as malformed).
        r = await http.post(f"/hooks/daraja/stk/{HOOK_TOKEN}", content=b"not json",
                            headers={"content-type": "application/json"})
        assert r.status_code == 200
        await GatewayCallback.raw("UPDATE gateway_callback SET received_at = now() - interval '42 seconds' "
                                  "WHERE processed_at IS NULL")
        after = await scrape(http)
    stored = "portal_callbacks_stored_total"
    assert value(after, stored, gateway="daraja") == value(before, stored, gateway="daraja") + 2
    processed = dict(gateway="daraja", outcome="malformed")
    assert value(after, "portal_callbacks_processed_total", **processed) == value(
        before, "portal_callbacks_processed_total", **processed) + 1
    assert value(after, "portal_callbacks_unprocessed", gateway="daraja") == 1
    assert 42 <= value(after, "portal_callback_oldest_unprocessed_age_seconds", gateway="daraja") < 120
    assert value(after, "portal_callback_oldest_unprocessed_age_seconds", gateway="flutterwave") == 0


async def test_a_callback_whose_processing_raises_is_counted_failed(db, queue, monkeypatch):
    from portal.callbacks import dispatch

    async def broken(row, parsed):
        raise RuntimeError("processing broke")

    monkeypatch.setitem(dispatch.ROUTES, ("daraja", "stk"), dispatch.Route(dispatch.loads, broken))
    async with served(METRICS_TOKEN=TOKEN, DARAJA_CALLBACK_TOKEN=HOOK_TOKEN) as http:
        before = await scrape(http)
        await http.post(f"/hooks/daraja/stk/{HOOK_TOKEN}", content=stk_body("ws_CO_metrics_2", 1032),
                        headers={"content-type": "application/json"})
        after = await scrape(http)
    assert value(after, "portal_callbacks_failed_total", gateway="daraja") == value(
        before, "portal_callbacks_failed_total", gateway="daraja") + 1
    assert value(after, "portal_callbacks_unprocessed", gateway="daraja") == 1


async def test_payments_pending_by_age_and_failed_messages(db, queue):
    member = await make_member()
    await stk.start_stk_push(member_id=member, phone="0712000001", amount=Money(1000), idempotency_key="m-1")
    old = await stk.start_stk_push(member_id=member, phone="0712000001", amount=Money(2000),
                                   idempotency_key="m-2")
    await GatewayCallback.raw("UPDATE payment SET created_at = now() - interval '3 hours' WHERE id = {}",
                              old.payment["id"])
    async with served(METRICS_TOKEN=TOKEN) as http:
        before = await scrape(http)
        await Message.insert(Message(channel="sms", kind="test", to_address="+254712000001", status="failed",
                                     dedupe_key="metrics-failed-1", created_at=now()))
        after = await scrape(http)
    assert value(after, "portal_payments_pending", age="under_5m") == 1
    assert value(after, "portal_payments_pending", age="2h_to_1d") == 1
    assert {s["age"] for s in series(after, "portal_payments_pending")} == {
        "under_5m", "5m_to_30m", "30m_to_2h", "2h_to_1d", "over_1d"}
    assert value(after, "portal_messages_failed", channel="sms") == value(
        before, "portal_messages_failed", channel="sms") + 1
    assert value(after, "portal_messages_failed", channel="email") == value(
        before, "portal_messages_failed", channel="email")


async def test_jobs_are_timed_by_kind_and_the_sweepers_last_run_and_queue_depth_read(db, queue, worker):
    async with served(METRICS_TOKEN=TOKEN) as http:
        before = await scrape(http)
        await queue_module.get_queue().apply("sweep_messages", timeout=30)
        after = await scrape(http)
    job = dict(job="sweep_messages", queue="portal", status="complete")
    assert value(after, "portal_job_duration_seconds_count", **job) >= value(
        before, "portal_job_duration_seconds_count", **job) + 1
    last = "portal_sweeper_last_success_timestamp_seconds"
    assert value(after, last, sweeper="sweep_messages") > value(before, last, sweeper="sweep_messages")
    assert {(s["queue"], s["state"]) for s in series(after, "portal_queue_jobs")} == {
        ("portal", "queued"), ("portal", "active"), ("portal-bulk", "queued"), ("portal-bulk", "active")}


async def test_queue_depth_moves_with_queued_jobs(db, queue):
    async with served(METRICS_TOKEN=TOKEN) as http:
        before = await scrape(http)
        await queue_module.enqueue("render_document", key="metrics-depth-1", kind="receipt", id=1)
        after = await scrape(http)
    depth = dict(queue="portal-bulk", state="queued")
    assert value(after, "portal_queue_jobs", **depth) == value(before, "portal_queue_jobs", **depth) + 1


def test_every_series_is_named_in_the_readme():
    from portal.lib import metrics
    from portal.reports.operations import Figures
    from portal.web.metrics import _scrape_time

    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Metrics", 1)[1].split("\n## ", 1)[0]
    names = {m._name for m in (metrics.REQUESTS, metrics.REQUEST_SECONDS, metrics.CALLBACKS_STORED,
                               metrics.CALLBACKS_PROCESSED, metrics.CALLBACKS_FAILED, metrics.JOB_SECONDS,
                               metrics.SWEEPER_LAST_SUCCESS)}
    names |= {family.name for family in _scrape_time(Figures())}
    missing = [n for n in sorted(names) if not re.search(rf"`{n}(_total)?`", section)]
    assert missing == []


WRITER = """
import sys
from portal.lib import metrics
metrics.observe_request("GET", "/login", 200, 0.02)
metrics.job_finished("sweep_mpesa", "portal", "complete", 0.5)
"""
READER = """
from portal.lib import metrics
import sys
sys.stdout.write(metrics.render([]).decode())
"""


def test_several_processes_add_up_in_multiprocess_mode(tmp_path):
    """N web processes and M workers write to PROMETHEUS_MULTIPROC_DIR; any one's scrape adds
    them all up (here two writers, each a process of its own, and a third that renders)."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"), "PYTHONPATH": str(ROOT)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", WRITER], env=env, check=True, cwd=ROOT, timeout=60)
    out = subprocess.run([sys.executable, "-c", READER], env=env, check=True, cwd=ROOT, timeout=60,
                         capture_output=True, text=True).stdout
    samples = {}
    for family in text_string_to_metric_families(out):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert value(samples, "portal_http_requests_total", method="GET", route="/login", status="200") == 2
    assert value(samples, "portal_job_duration_seconds_count", job="sweep_mpesa", queue="portal",
                 status="complete") == 2
    assert value(samples, "portal_sweeper_last_success_timestamp_seconds", sweeper="sweep_mpesa") > 0
