"""Generated input for every route of the app, over real HTTP, as an admin with a valid CSRF token:
every form field and query parameter the portal reads, every path parameter, and every /hooks/*
body with the right token and a wrong one. Any 5xx, or any traceback in the log, fails.

The routes come from the Litestar app's route table, so a new route is fuzzed without touching
this file. Seeded and bounded in the normal suite (FUZZ_EXAMPLES per route, default 4); a long
run on demand: `FUZZ_EXAMPLES=100 make fuzz`. Totals by status code are printed at the end and
written to test-artifacts/fuzz-totals.json.

Hypothesis runs in a worker thread and hands each request to the test's event loop, where the
portal is served (it shares the loop's connection pool), so a failure is shrunk to the smallest
request that still fails."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import zlib
from collections import Counter

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.fuzz.strategies import NASTY, ROOT, field_names, fields, path_segment, values
from tests.support.servers import free_port, serve_on_this_loop

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
SEED = int(os.environ.get("FUZZ_SEED", "20261207"))
ADMIN, PASSWORD = "fuzzadmin", "fuzz-admin-password-1"
TOKENS = {"DARAJA_CALLBACK_TOKEN": "fuzz-callback-token-1234", "FLUTTERWAVE_SECRET_HASH": "fuzz-flutterwave-hash",
          "AT_CALLBACK_TOKEN": "fuzz-sms-token-1234"}
SKIP_METHODS = {"OPTIONS", "HEAD"}

TOTALS: Counter = Counter()
BY_ROUTE: dict[str, Counter] = {}


def _routes() -> list[tuple[str, str, dict]]:
    """(method, path template, {name: type}) for every route of the app, /static aside."""
    os.environ.setdefault("SECRET_KEY", "fuzz-collection-secret-key-0123456789abcdef")
    from portal.app import create_app
    from portal.settings import get_settings

    app = create_app(get_settings(), manage_resources=False)
    found = []
    for route in app.routes:
        if not hasattr(route, "route_handlers") or route.path.startswith("/static"):
            continue
        methods = sorted({m for h in route.route_handlers for m in h.http_methods} - SKIP_METHODS)
        params = {name: p.type.__name__ for name, p in route.path_parameters.items()}
        found += [(method, route.path, params) for method in methods]
    return found


ROUTES = _routes()
NAMES = field_names()


class LogWatch(logging.Handler):
    """Every log record that carries a traceback, from any logger (the app's, uvicorn's, asyncio's)."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        if record.exc_info or "Traceback (most recent call last)" in record.getMessage():
            self.records.append(record)


@pytest_asyncio.fixture(scope="module")
async def served(_database, _queue):
    """The portal served over HTTP on the test's loop, with a small gym in it, and an admin
    client that keeps its session and CSRF cookies."""
    from portal.settings import get_settings
    from tests.fixtures import empty_tables

    saved = dict(os.environ)
    port = free_port()
    os.environ.update(TOKENS, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                      # Nothing listens here: gateway calls made inline fail fast, as when one is down.
                      DARAJA_BASE_URL="http://127.0.0.1:9", FLUTTERWAVE_BASE_URL="http://127.0.0.1:9",
                      AT_BASE_URL="http://127.0.0.1:9", GATEWAY_TIMEOUT_SECONDS="2", API_RATE_PER_MINUTE="100000")
    get_settings.cache_clear()
    await empty_tables(_database)
    known = await _gym()
    from portal.app import create_app

    app = create_app(get_settings(), manage_resources=False)
    watch = LogWatch()
    try:
        async with serve_on_this_loop(app, port), httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", follow_redirects=False, headers={"accept": "text/html"},
                timeout=60) as client:
            logging.getLogger().addHandler(watch)
            await _login(client)
            yield client, known, watch
    finally:
        logging.getLogger().removeHandler(watch)
        await empty_tables(_database)
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        _write_totals()


async def _gym() -> dict[str, list[str]]:
    """Real rows for path parameters to hit: ids by parameter name, tokens for the pay pages."""
    from portal.auth import create_staff
    from portal.billing import paylinks
    from tables.billing import Payment
    from tests.billing.helpers import invoice_for, pay
    from tests.factories import make_location, make_member, make_plan

    staff = await create_staff(ADMIN, PASSWORD, "admin", first_name="Fuzz")
    other = await create_staff("fuzzdesk", "fuzz-desk-password-1", "front_desk", first_name="Desk")
    loc = await make_location()
    plan = await make_plan()
    member = await make_member()
    invoice = await invoice_for(member, 3000, staff_id=staff)
    paid = await pay(member, 1000, staff_id=staff, invoice_id=invoice["id"])
    second = await invoice_for(member, 500, staff_id=staff)
    token = await paylinks.create_link(second["id"], staff)
    payment_ids = [str(r["id"]) for r in await Payment.select(Payment.id)]
    ids = {
        "member_id": [str(member)], "invoice_id": [str(invoice["id"]), str(second["id"])],
        "payment_id": payment_ids or [str(getattr(paid, "id", 1))], "plan_id": [str(plan)],
        "staff_id": [str(other)], "location": [str(loc)], "token": [token], "kind": ["receipt", "invoice", "statement"],
        "subject": [f"receipt:{payment_ids[0] if payment_ids else 1}:v1", f"invoice:{invoice['id']}:v1"],
    }
    # A running membership with a coming freeze, and one waiting for payment (freeze, renew, change plan).
    from datetime import timedelta

    from portal.lib.clock import today
    from portal.members import changes
    from tests.factories import make_membership

    running = await make_membership(member, plan, today() - timedelta(days=5), today() + timedelta(days=24), "active")
    coming = await changes.freeze(running, today() + timedelta(days=10), today() + timedelta(days=19), "Fuzz trip", None, staff)
    unpaid = await make_membership(await make_member("Fuzz", "Unpaid"), plan, today(), today() + timedelta(days=29), "unpaid")
    ids["membership_id"] = [str(running), str(unpaid)]
    ids["freeze_id"] = [str(coming["id"])]
    ids["all"] = sorted({v for vs in ids.values() for v in vs} | {str(loc), str(plan), str(staff)})
    return ids


async def _login(client: httpx.AsyncClient) -> None:
    """A session straight from the login rule: the fuzz posts wrong logins from this address, and
    the throttle must not keep the fuzzing admin out."""
    from portal.auth import SESSION_COOKIE, login
    from portal.settings import get_settings

    token = await login(get_settings(), ADMIN, PASSWORD, "10.255.255.1")
    assert token, "the fuzzing admin could not log in"
    client.cookies.set(SESSION_COOKIE, token)
    # The API's routes are fuzzed behind their key too (an admin-scope key opens every one).
    from portal.api import keys

    _, api_key = await keys.create_key("Fuzz", ["admin"], None, None)
    client.headers["authorization"] = f"Bearer {api_key}"
    if "portal_csrf" not in client.cookies:
        await client.get("/login")


def _path(template: str, params: dict, draw, known) -> str:
    path = template
    for name, kind in params.items():
        pool = known.get(name) or (known["all"] if kind == "int" else NASTY[6:10])
        segment = draw(path_segment(pool))
        path = path.replace("{%s:%s}" % (name, kind), segment)
    return path


def _hook_token(path_template: str) -> str:
    return TOKENS["AT_CALLBACK_TOKEN"] if "/sms/" in path_template else TOKENS["DARAJA_CALLBACK_TOKEN"]


def request_strategy(method: str, template: str, params: dict, known: dict):
    """One request to this route: path parameters, query parameters, and a body for a POST."""

    @st.composite
    def build(draw):
        if template.startswith("/hooks/"):
            right = draw(st.booleans())
            token = _hook_token(template) if right else draw(st.sampled_from(["wrong", "x" * 300, "%00", "²"]))
            path = template.replace("{token:str}", token)
            headers = {"content-type": "application/json"}
            if "flutterwave" in template:
                headers["verif-hash"] = TOKENS["FLUTTERWAVE_SECRET_HASH"] if right else "wrong-hash"
            body = draw(st.one_of(
                st.recursive(values(known["all"]) | st.integers() | st.none() | st.booleans(),
                             lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                                 st.sampled_from(NAMES) | st.text(max_size=20), inner, max_size=6),
                             max_leaves=20).map(lambda v: json.dumps(v).encode()),
                fields(NAMES, known["all"]).map(lambda d: httpx.QueryParams(d).__str__().encode()),
                st.binary(max_size=2000),
            ))
            if "/sms/" in template and draw(st.booleans()):
                headers["content-type"] = "application/x-www-form-urlencoded"
            return {"method": method, "url": path, "content": body, "headers": headers, "form": None,
                    "params": {}}
        path = _path(template, params, draw, known)
        query = draw(fields(NAMES, known["all"]))
        form = draw(fields(NAMES, known["all"])) if method == "POST" else None
        htmx = draw(st.booleans())
        return {"method": method, "url": path, "params": query, "form": form, "content": None,
                "headers": {"HX-Request": "true"} if htmx else {}}

    return build()


async def send(client: httpx.AsyncClient, req: dict) -> httpx.Response:
    headers = dict(req["headers"])
    kwargs = {}
    if req["form"] is not None:
        kwargs["data"] = {**req["form"], "_csrf_token": client.cookies.get("portal_csrf", "")}
    elif req["content"] is not None:
        kwargs["content"] = req["content"]
    if req["method"] == "POST" and not req["url"].startswith("/hooks/"):
        headers["x-csrftoken"] = client.cookies.get("portal_csrf", "")
    response = await client.request(req["method"], req["url"], params=req["params"], headers=headers, **kwargs)
    await response.aread()
    return response


def _label(method: str, template: str) -> str:
    return f"{method} {template}"


@pytest.mark.parametrize("method,template,params", ROUTES, ids=[_label(m, t) for m, t, _ in ROUTES])
async def test_no_route_answers_5xx_or_logs_a_traceback(served, method, template, params):
    client, known, watch = served
    loop = asyncio.get_running_loop()
    counts = BY_ROUTE.setdefault(_label(method, template), Counter())
    failures: list[str] = []

    async def one(req: dict) -> str | None:
        watch.records.clear()
        try:
            response = await send(client, req)
        except httpx.RemoteProtocolError as e:  # a response cut short (e.g. a stream that raised)
            status, text = 599, f"connection broken: {e}"
        else:
            status, text = response.status_code, response.text[:500]
            if status in (303, 401) and "/login" in response.headers.get("location", "") + response.headers.get(
                    "hx-redirect", ""):
                await _login(client)  # the fuzz logged itself out (/logout); later requests need a session
        await asyncio.sleep(0)  # let the server finish logging the request
        counts[status] += 1
        TOTALS[status] += 1
        traces = [logging.Formatter().format(r) for r in watch.records]
        if status >= 500 or traces:
            return f"{req['method']} {req['url']} params={req['params']!r} form={req['form']!r} " \
                   f"content={req['content']!r:.300} -> {status}\n{text}\n" + "\n".join(traces)[:3000]
        return None

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink],
              print_blob=False, report_multiple_bugs=False)
    @seed(SEED ^ zlib.crc32(_label(method, template).encode()))
    @given(request_strategy(method, template, params, known))
    def fuzz(req):
        problem = asyncio.run_coroutine_threadsafe(one(req), loop).result(timeout=120)
        if problem:
            failures.append(problem)
        assert problem is None, problem

    await asyncio.to_thread(fuzz)


def _write_totals() -> None:
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    report = {"requests": sum(TOTALS.values()), "by_status": dict(sorted(TOTALS.items())),
              "examples_per_route": EXAMPLES, "seed": SEED,
              "by_route": {k: dict(sorted(v.items())) for k, v in sorted(BY_ROUTE.items())}}
    (out / "fuzz-totals.json").write_text(json.dumps(report, indent=1))
