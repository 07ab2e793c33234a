"""Structured logs (portal.lib.logs, portal.web.middleware.RequestLog): one line per request with
its request id, who asked, the route's template, method, status and duration, readable or JSON;
the worker's lines carry the job and the request that queued it; chatter only at DEBUG; and no
thread left behind per app made.

The app is served over real HTTP the way `portal run` serves it (BehindProxy around create_app),
with logging configured as `portal` configures it, into a buffer the test reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import threading

import httpx
import pytest

from portal.api import keys
from portal.app import create_app
from portal.auth import create_staff
from portal.billing import paylinks
from portal.documents import store as document_store
from portal.lib import logs
from portal.sandbox.app import create_sandbox_app
from portal.sandbox.config import SandboxConfig
from portal.settings import get_settings
from portal.web.middleware import BehindProxy
from tests.billing.helpers import invoice_for
from tests.factories import make_member
from tests.support.logs import jobs_in, parse, requests_in
from tests.support.servers import free_port, serve_on_this_loop

HEX_ID = re.compile(r"[0-9a-f]{32}")


@contextlib.contextmanager
def captured(log_format: str, level: str = "INFO"):
    """The process's logging as `portal` sets it up, written into a buffer."""
    root = logging.getLogger()
    old_level = root.level
    stream = io.StringIO()
    handler = logs.configure(log_format, level, stream=stream)
    try:
        yield stream
    finally:
        logs.unconfigure(handler)
        root.setLevel(old_level)


@contextlib.asynccontextmanager
async def portal(app=None, **proxy):
    port = free_port()
    async with serve_on_this_loop(BehindProxy(app or create_app(get_settings(), manage_resources=False), **proxy), port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as web:
            yield web


async def login(web: httpx.AsyncClient, username: str) -> int:
    staff_id = await create_staff(username, f"{username}-password-1", "front_desk", first_name=username.title())
    await web.get("/login")
    r = await web.post("/login", data={"username": username, "password": f"{username}-password-1", "next": "/",
                                       "_csrf_token": web.cookies["portal_csrf"]})
    assert r.status_code == 303, r.text
    return staff_id


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_each_request_has_one_line_with_its_id_caller_route_status_and_duration(db, queue, log_format):
    member = await make_member("Achieng", "Otieno")
    token = await paylinks.create_link((await invoice_for(member, 3000))["id"], None)
    key_id, api_key = await keys.create_key("Books", ["read"], None, None)
    with captured(log_format) as out:
        async with portal() as web:
            pay = await web.get(f"/pay/{token}")  # a member, not logged in
            staff_id = await login(web, "alice")
            page = await web.get(f"/members/{member}")
            api = await web.get("/api/v1/members", headers={"authorization": f"Bearer {api_key}"})
            missing = await web.post("/no/such/page")
    text = out.getvalue()
    lines = requests_in(parse(text, log_format))
    # pay page, login page, login post, member page, API call, the router's 404: one line each.
    assert len(lines) == 6, text
    assert [lines[i]["request_id"] for i in (0, 3, 4, 5)] == [
        r.headers["x-request-id"] for r in (pay, page, api, missing)]
    assert all(HEX_ID.fullmatch(line["request_id"]) for line in lines)
    assert len({line["request_id"] for line in lines}) == 6

    by_route = {line.get("route"): line for line in lines}
    staff_line = by_route["/members/{member_id}"]
    assert staff_line["method"] == "GET" and str(staff_line["status"]) == "200"
    assert staff_line["user"] == "alice" and str(staff_line["staff_id"]) == str(staff_id)
    assert float(staff_line["duration_ms"]) > 0
    login_line = [line for line in lines if line.get("route") == "/login" and line["method"] == "POST"][0]
    assert str(login_line["status"]) == "303"

    # The pay link by its template: the token is nowhere in the log.
    pay_line = by_route["/pay/{token}"]
    assert str(pay_line["status"]) == str(pay.status_code) == "200"
    assert "user" not in pay_line
    assert token not in text and token.split(".")[-1] not in text

    api_line = by_route["/api/v1/members"]
    assert str(api_line["status"]) == str(api.status_code) == "200"
    assert api_line["api_key"] == "Books" and str(api_line["api_key_id"]) == str(key_id)
    assert api_key not in text

    # A path no route has gets its line too, without the path (it may hold anything).
    unrouted = lines[-1]
    assert str(unrouted["status"]) == "404" and unrouted["method"] == "POST" and unrouted.get("route") is None
    assert "/no/such/page" not in text


async def test_a_trusted_proxys_sane_request_id_is_kept_and_sent_back(db, queue):
    with captured("json") as out:
        async with portal() as web:  # the test connects from 127.0.0.1, the proxy portal run trusts
            kept = await web.get("/healthz", headers={"x-request-id": "caddy-7f3a.01:x_y"})
            too_long = await web.get("/healthz", headers={"x-request-id": "a" * 65})
            odd = await web.get("/healthz", headers={"x-request-id": "two words"})
            smuggled = await web.get("/healthz", headers={"x-request-id": "/pay/abcdefghijklmnop"})
            fresh = await web.get("/healthz")
        async with portal(trusted=["10.1.2.3"]) as web:  # the same from an address that is no proxy of ours
            stranger = await web.get("/healthz", headers={"x-request-id": "caddy-7f3a.01:x_y"})
    assert kept.headers["x-request-id"] == "caddy-7f3a.01:x_y"
    for r in (too_long, odd, smuggled, fresh, stranger):
        assert HEX_ID.fullmatch(r.headers["x-request-id"]), r.headers["x-request-id"]
    logged = [line["request_id"] for line in requests_in(parse(out.getvalue(), "json"))]
    assert logged == [r.headers["x-request-id"] for r in (kept, too_long, odd, smuggled, fresh, stranger)]


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_the_workers_job_lines_carry_the_request_that_queued_them(db, queue, worker, log_format):
    member = await make_member("Wanjiku", "Kamau")
    await invoice_for(member, 3000)
    with captured(log_format) as out:
        async with portal() as web:
            await login(web, "alice")
            r = await web.post(f"/members/{member}/payments", headers={"x-request-id": "desk-pay-0001"}, data={
                "method": "cash", "amount": "1000", "idempotency_key": "logs-1", "_csrf_token": web.cookies["portal_csrf"]})
            assert r.status_code == 303, r.text
            subject = f"payment:{int(r.headers['location'].rsplit('/', 1)[1])}"

            def jobs():
                return jobs_in(parse(out.getvalue(), log_format), "render_document")

            for _ in range(300):
                if len(jobs()) == 2 and await document_store.find("receipt_80mm", subject):
                    break
                await asyncio.sleep(0.1)
    done = jobs()
    assert len(done) == 2, out.getvalue()  # the A4 and the 80 mm receipt, each made by its own job
    for job in done:
        assert job["request_id"] == "desk-pay-0001"
        assert job["job_key"].startswith("doc:receipt") and job["job_key"].endswith(subject)
        assert job["status"] == "complete" and float(job["duration_ms"]) > 0
    # At INFO, neither SAQ's line per job step nor WeasyPrint's per PDF step is shown.
    assert "Processing Job" not in out.getvalue() and "weasyprint" not in out.getvalue().lower()


async def test_job_and_pdf_chatter_is_shown_at_debug_only(db, queue, worker):
    member = await make_member()
    await invoice_for(member, 3000)
    from tests.billing.helpers import pay

    shown = {}
    for level in ("INFO", "DEBUG"):
        with captured("text", level) as out:
            payment = (await pay(member, 100)).payment
            subject = f"payment:{payment['id']}"
            await document_store.render_and_store("receipt", subject)
            # A sweeper's run, queued by no request (as its cron queues it), through the worker.
            await queue.apply("sweep_documents", timeout=30)
            for _ in range(50):  # its line is written just after apply() has its result
                if "sweep_documents" in out.getvalue() or level == "INFO":
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)
        shown[level] = out.getvalue()
    info, debug = shown["INFO"], shown["DEBUG"]
    assert "weasyprint" not in info and "Processing Job" not in info and "sweep_documents" not in info, info
    # Not a test that cannot fail: the same steps at DEBUG do write those lines.
    assert "weasyprint" in debug and "Processing Job<function: sweep_documents" in debug, debug
    # The minute's cron may run its own sweep_documents inside the window: count only the one queued here.
    ours = [j for j in jobs_in(parse(debug, "text"), "sweep_documents") if not j["job_key"].startswith("cron:")]
    assert [j["status"] for j in ours] == ["complete"], debug


def test_making_apps_leaves_no_thread_behind(settings):
    """Litestar's own logging config started a queue-listener thread for each app made, stopped
    only by the app's shutdown, which apps served without a lifespan (the tests') never run."""
    create_app(settings, manage_resources=False)
    create_sandbox_app(SandboxConfig())
    before = threading.active_count()
    for _ in range(5):
        create_app(settings, manage_resources=False)
        create_sandbox_app(SandboxConfig())
    # (fewer is fine: a thread of an earlier test may end meanwhile; before the fix, 10 more)
    assert threading.active_count() <= before, [t.name for t in threading.enumerate()]


def test_log_settings_are_checked():
    from portal.settings import Settings, SettingsError

    settings = Settings.from_env({"LOG_FORMAT": "JSON", "LOG_LEVEL": "debug"}, dotenv=None)
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")
    assert (Settings.from_env({}, dotenv=None).log_format, Settings.from_env({}, dotenv=None).log_level) == ("text", "INFO")
    for name, value in (("LOG_FORMAT", "xml"), ("LOG_LEVEL", "loud")):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: value}, dotenv=None)
