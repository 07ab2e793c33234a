"""Schemathesis against the live API: the OpenAPI document fetched from a real server over HTTP,
and requests generated from it for every operation, valid ones and invalid ones. Every answer must
be one the document describes (status code, content type, headers, body schema), never a 5xx, and
Schemathesis's own checks must hold (an invalid request is refused, a valid one is not, a request
without the key or with a wrong key is 401). Then, for every operation, the rules the document
cannot express: a key without the operation's scope is 403, and a key past its rate limit is 429
with Retry-After; both answers conform to the document too.

The operations come from the app's own schema, so a new endpoint is tested without touching this
file. Bounded in the normal suite (API_FUZZ_EXAMPLES per operation and generation mode, default
5); a long run on demand: `make api-fuzz` (API_FUZZ_EXAMPLES=100). Totals land in
test-artifacts/api-fuzz-totals.json.

Hypothesis runs in a worker thread (Schemathesis sends with `requests`, which blocks) while the
portal is served on the test's event loop, as in tests/fuzz."""

from __future__ import annotations

import asyncio
import json
import os
import zlib
from collections import Counter
from datetime import timedelta

import pytest
import pytest_asyncio
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.strategies import ROOT
from tests.support.servers import free_port, serve_on_this_loop

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "5"))
SEED = int(os.environ.get("API_FUZZ_SEED", "20261207"))
SCOPES = ("read", "members", "payments", "admin")

TOTALS: Counter = Counter()
BY_OPERATION: dict[str, Counter] = {}
FAILURES: Counter = Counter()
EXAMPLES_RUN: Counter = Counter()


def _operations() -> list[tuple[str, str, str]]:
    """(method, OpenAPI path, scope) for every operation the app documents, with the scope its
    guard asks for (read from the route table, so the document and the guards cannot drift)."""
    os.environ.setdefault("SECRET_KEY", "fuzz-collection-secret-key-0123456789abcdef")
    from portal.app import create_app
    from portal.settings import get_settings

    app = create_app(get_settings(), manage_resources=False)
    documented = app.openapi_schema.to_schema()["paths"]
    scopes = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for guard in handler.guards or []:
                if hasattr(guard, "api_scope"):
                    path = route.path
                    for name, p in route.path_parameters.items():
                        path = path.replace("{%s:%s}" % (name, p.type.__name__), "{%s}" % name)
                    for method in handler.http_methods:
                        scopes[(method.upper(), path)] = guard.api_scope
    found = []
    for path, ops in documented.items():
        for method in ops:
            if method in {"get", "post", "put", "patch", "delete"}:
                # None: no scope guard, which the refusal test below reports for that operation.
                found.append((method.upper(), path, scopes.get((method.upper(), path))))
    return sorted(found, key=lambda o: (o[1], o[0]))


OPERATIONS = _operations()


def _label(method: str, path: str) -> str:
    return f"{method} {path}"


class Live:
    def __init__(self, base: str, schema, known: dict):
        self.base, self.schema, self.known = base, schema, known

    async def key(self, *scopes: str) -> str:
        from portal.api import keys

        _, key = await keys.create_key("Schemathesis", list(scopes), None, None)
        return key


WRITES = ["POST", "PUT", "PATCH", "DELETE"]


def _config(key: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict({
        # The admin key as Schemathesis's own auth (not a header added to each call), so its auth
        # check knows the key is real and tries each answered request without it and with a wrong one.
        "auth": {"openapi": {"bearer": {"bearer": key}}},
        # A write may refuse a well-formed body with a 422 naming the field: rules no schema can
        # state (a home location that exists, a real Kenyan phone number, email before "email"
        # messages). Reads have no such excuse: a valid read must not be refused.
        "operations": [{"include-method": WRITES, "checks": {"positive_data_acceptance": {
            "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]}}}],
    })


@pytest_asyncio.fixture(scope="module")
async def live(_database, _queue):
    """The portal served over HTTP with a small gym in it (so detail operations find rows), and
    its OpenAPI document as the live server gives it."""
    from portal.api import keys
    from portal.settings import get_settings
    from tests.fixtures import empty_tables

    saved = dict(os.environ)
    os.environ.update(API_RATE_PER_MINUTE="100000",
                      # Nothing listens here: a write that calls a gateway inline fails fast, as when
                      # one is down, and no generated request reaches anything real.
                      DARAJA_BASE_URL="http://127.0.0.1:9", FLUTTERWAVE_BASE_URL="http://127.0.0.1:9",
                      AT_BASE_URL="http://127.0.0.1:9", GATEWAY_TIMEOUT_SECONDS="2")
    get_settings.cache_clear()
    await empty_tables(_database)
    known = await _gym()
    from portal.app import create_app

    app = create_app(get_settings(), manage_resources=False)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        async with serve_on_this_loop(app, port):
            _, key = await keys.create_key("Schemathesis", ["admin"], None, None)
            schema = await asyncio.to_thread(schemathesis.openapi.from_url, f"{base}/api/v1/openapi.json",
                                             config=_config(key), timeout=30)
            known["cursors"] = await asyncio.to_thread(_cursors, base, key, known)
            yield Live(base, schema, known)
    finally:
        await empty_tables(_database)
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        _write_totals()


async def _gym() -> dict:
    """Two of everything a list shows, so every list has a second page and so a real cursor."""
    from portal.lib.clock import today
    from tables.billing import Payment
    from tests.billing.helpers import invoice_for, pay
    from tests.factories import make_location, make_member, make_membership, make_plan

    location = await make_location()
    plan = await make_plan()
    member = await make_member()
    other = await make_member("Achieng", "Otieno", "254722000111")
    invoices = []
    for who in (member, other):
        await make_membership(who, plan, today() - timedelta(days=25), today() + timedelta(days=5), "active")
        invoice = await invoice_for(who, 3000)
        invoices.append(invoice["id"])
        await pay(who, 1000, invoice_id=invoice["id"])
    await pay(member, 500, method="bank", reference="BT-778812")
    payments = [r["id"] for r in await Payment.select(Payment.id)]
    return {"member_id": [member, other], "payment_id": payments, "invoice_id": invoices, "plan_id": [plan],
            "location": [location],
            # Bodies a write accepts, so its success answer is checked too (generated ones are
            # nearly always refused by a rule the schema cannot state).
            "bodies": {"POST /api/v1/members": [{"first_name": "Njeri", "last_name": "Mwangi", "phone": "0722000333"}],
                       "PATCH /api/v1/members/{member_id}": [{"last_name": "Odhiambo"}, {}]}}


def _cursors(base: str, key: str, known: dict) -> dict[str, str]:
    """A real next_cursor for each list that takes one: the only cursors a list accepts are those
    it gave (a made-up one is a 400), so a valid request carries one of these or none."""
    found = {}
    for method, path, _ in OPERATIONS:
        if method != "GET":
            continue
        url = path
        for name, values in known.items():
            url = url.replace("{%s}" % name, str(values[0]) if isinstance(values, list) else "")
        answer = requests.get(base + url, params={"limit": 1}, headers={"authorization": f"Bearer {key}"}, timeout=30)
        if answer.ok and isinstance(body := answer.json(), dict) and body.get("next_cursor"):
            found[_label(method, path)] = body["next_cursor"]
    return found


def _real_cursor(case, cursor: str | None):
    if case.query and "cursor" in case.query:
        if cursor is None:
            del case.query["cursor"]
        else:
            case.query["cursor"] = cursor
    return case


def _strategy(operation, mode: GenerationMode, known: dict, real_rows_only: bool = False):
    """Generated cases. A valid request names a row that exists half the time (a random id is
    nearly always a 404, which would leave the 200 answers untested), carries a real cursor, and
    for a write, sometimes a body it accepts. real_rows_only: always a row that exists, when the
    gym has one (a key is checked before the id is looked up, but an id beyond the database's
    integers is refused as no such address before that)."""
    plain = operation.as_strategy(generation_mode=mode)
    if mode is not GenerationMode.POSITIVE:
        return plain
    label = _label(operation.method.upper(), operation.path)
    names = [p.name for p in operation.path_parameters]
    path_params = st.fixed_dictionaries({n: st.sampled_from(known[n]) for n in names}) if all(
        n in known for n in names) and names else None
    strategies = [plain] if path_params is None or not real_rows_only else []
    if path_params is not None:
        strategies.append(path_params.flatmap(lambda params: operation.as_strategy(generation_mode=mode,
                                                                                   path_parameters=params)))
    if label in known["bodies"]:
        strategies.append(st.tuples(path_params if path_params is not None else st.just(None),
                                    st.sampled_from(known["bodies"][label])).flatmap(
            lambda pair: operation.as_strategy(generation_mode=mode, path_parameters=pair[0], body=pair[1])))
    cursor = known["cursors"].get(label)
    return st.tuples(st.one_of(strategies), st.sampled_from([cursor, None])).map(lambda pair: _real_cursor(*pair))


def _run(live: Live, method: str, path: str, mode: GenerationMode, check, examples: int = 0,
         real_rows_only: bool = False) -> None:
    """Hypothesis over one operation in this (worker) thread; `check(case, session)` per example
    sends the case and checks the answer, and returns the response."""
    operation = live.schema[path][method]
    label = _label(method, path)

    @settings(max_examples=examples or EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink],
              print_blob=False, report_multiple_bugs=False)
    @seed(SEED ^ zlib.crc32(f"{label} {mode.value} {check.__name__}".encode()))
    @given(case=_strategy(operation, mode, live.known, real_rows_only))
    def run(case):
        EXAMPLES_RUN[label] += 1
        with requests.Session() as session:
            try:
                responses = check(case, session)
            except BaseException:
                FAILURES[label] += 1
                raise
            counts = BY_OPERATION.setdefault(label, Counter())
            for response in responses:
                counts[response.status_code] += 1
                TOTALS[response.status_code] += 1

    run()


def _conforms(case, response) -> None:
    """The answer is one the document describes, whatever its status."""
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                             response_headers_conformance, response_schema_conformance])


def _without_key(case):
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    return case


@pytest.mark.parametrize("method,path,scope", OPERATIONS, ids=[_label(m, p) for m, p, _ in OPERATIONS])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
async def test_every_answer_conforms_to_the_schema(live, method, path, scope, mode):
    def every_check(case, session):
        response = case.call(base_url=live.base, session=session, timeout=60)
        assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
        # Every check Schemathesis has, its auth check among them: for an answer given to the
        # key it sends the same request again without a key and with a wrong one, expecting 401.
        case.validate_response(response, transport_kwargs={"base_url": live.base, "session": session})
        return [response]

    await asyncio.to_thread(_run, live, method, path, mode, every_check)


@pytest.mark.parametrize("method,path,scope", OPERATIONS, ids=[_label(m, p) for m, p, _ in OPERATIONS])
async def test_no_key_a_wrong_key_or_a_key_without_the_scope_is_refused(live, method, path, scope):
    """Valid requests, without a key (401), with a key no one issued (401), with a key that has
    every scope but this operation's (403), and for a write with a read-only key (403): refused
    before anything is read or written, with a problem the document describes."""
    assert scope, f"{method} {path} has no scope_required guard"
    lacking = await live.key(*[s for s in SCOPES if s not in (scope, "admin")])
    tries = [(None, 401), ("ptf_live_" + "x" * 40, 401), (lacking, 403)]
    if method != "GET":  # whatever its guard says, no write is open to a read-only key
        tries.append((await live.key("read"), 403))

    def refused(case, session):
        case = _without_key(case)
        answers = []
        for key, status in tries:
            headers = {"authorization": f"Bearer {key}"} if key else None
            response = case.call(base_url=live.base, session=session, headers=headers, timeout=60)
            assert response.status_code == status, f"key {key and key[:12]}: {response.status_code} {response.text[:300]}"
            assert response.headers["content-type"][0].startswith("application/problem+json")
            if status == 401:
                assert response.headers["www-authenticate"][0].startswith("Bearer")
            _conforms(case, response)
            answers.append(response)
        return answers

    await asyncio.to_thread(_run, live, method, path, GenerationMode.POSITIVE, refused, min(EXAMPLES, 3), True)


@pytest.mark.parametrize("method,path,scope", OPERATIONS, ids=[_label(m, p) for m, p, _ in OPERATIONS])
async def test_past_the_rate_limit_is_429_with_retry_after(live, method, path, scope):
    """With a limit of 2 requests a minute, the third valid request with the same key is a 429
    with Retry-After (seconds), whatever the operation, and the 429 is one the document describes."""
    from portal.settings import get_settings

    os.environ["API_RATE_PER_MINUTE"] = "2"
    get_settings.cache_clear()
    try:
        key = await live.key(scope)

        def limited(case, session):
            case = _without_key(case)
            headers = {"authorization": f"Bearer {key}"}
            answers = [case.call(base_url=live.base, session=session, headers=headers, timeout=60) for _ in range(3)]
            assert [r.status_code == 429 for r in answers] == [False, False, True], [r.status_code for r in answers]
            assert 1 <= int(answers[2].headers["retry-after"][0]) <= 60
            _conforms(case, answers[2])
            return answers

        await asyncio.to_thread(_run, live, method, path, GenerationMode.POSITIVE, limited, 1, True)
    finally:
        os.environ["API_RATE_PER_MINUTE"] = "100000"
        get_settings.cache_clear()


def _write_totals() -> None:
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    report = {"operations": len(OPERATIONS), "examples": sum(EXAMPLES_RUN.values()), "requests": sum(TOTALS.values()),
              "failures": sum(FAILURES.values()), "by_status": dict(sorted(TOTALS.items())),
              "examples_per_operation_and_mode": EXAMPLES, "seed": SEED,
              "by_operation": {k: dict(sorted(v.items())) for k, v in sorted(BY_OPERATION.items())},
              "examples_by_operation": dict(sorted(EXAMPLES_RUN.items())),
              "failures_by_operation": dict(sorted(FAILURES.items()))}
    (out / "api-fuzz-totals.json").write_text(json.dumps(report, indent=1))
