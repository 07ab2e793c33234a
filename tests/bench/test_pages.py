"""Page timings at real size, end to end over real HTTP: for each data set (2,000 members / 50,000
payments and 20,000 / 500,000; 100,000 / 5,000,000 on demand), `portal run` serves it
(tests/bench/server.py) and one sequential client on one keep-alive connection requests each page
in PAGES REQUESTS times after 3 warm-ups, logged in as a manager (check-in is posted as the desk's
scanner does), and each API list in API_PAGES with an admin-scope key. Then a burst of BENCH_BURST
distinct M-Pesa STK callbacks over 32 connections (tests/bench/burst.py), checked exactly once
after. The table (median and p95 wall time, queries per request, the app's own median
Server-Timing) goes to test-artifacts/bench.md with the EXPLAIN (ANALYZE, BUFFERS) of the slowest
page's slowest query at the largest size (found by timing that page in process, where each query
is seen).

    make bench                                  # 2000x50000 and 20000x500000, 20 requests a page
    BENCH_SIZES=100000x5000000 make bench       # a chain's size (about 20 minutes to load)
    BENCH_SIZES=2000x50000 BENCH_REQUESTS=10 BENCH_BURST=100 make bench
    BENCH_RELOAD=1 make bench                   # load the data sets afresh
"""

from __future__ import annotations

import os
import platform
import statistics
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.bench import burst, datasets, pages, server
from tests.support.client import PortalClient

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "test-artifacts" / "bench.md"
SIZES = [(2_000, 50_000), (20_000, 500_000)]
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "20"))
BURST = int(os.environ.get("BENCH_BURST", "300"))
QUERIES_PER_CALLBACK_SAMPLE = 5

# The pages to time: issue 17's table first. Placeholders are filled from the data set (see
# SAMPLES); a page that answers 404 is reported as not built yet, so pages can be listed before
# they land.
PAGES = [
    ("payments due", "/dues"),
    ("renewals due", "/renewals"),
    ("analytics, last 30 days", "/analytics"),
    ("payments, completed", "/payments?status=completed"),
    ("member, most payments", "/members/{busiest_member}"),
    ("members", "/members"),
    ("members search", "/members?q={search}"),
    ("payments", "/payments"),
    ("invoice, part paid, most allocations", "/invoices/{busiest_invoice}"),
    ("end-of-day close", "/close"),
    ("catalogue", "/catalogue"),
    ("sell to a walk-in", "/sales/new"),
    ("reconciliation, this month", "/reconcile"),
    ("reconciliation, last month (whole)", "/reconcile?month={last_month}"),
    ("reconciliation, busiest day", "/reconcile/days/{busiest_day}"),
    # Issue 14's pages.
    ("sell to a member, most payments", "/members/{busiest_member}/sale"),
    ("sale, most lines", "/sales/{busiest_sale}"),
    ("payers", "/payers"),
    ("payer, most invoices addressed to it", "/payers/{busiest_payer}"),
    ("freeze form, membership frozen most", "/memberships/{frozen_membership}/freeze"),
    ("discount approvals queue", "/discounts/approvals"),
    ("promo codes", "/discounts/promo-codes"),
]
CHECK_IN = ("check-in by member number", "/checkin")
# The API's lists, with an admin-scope key (the key's lookup and its rate limit are in every
# request's time and query count, as they are for a real caller).
API_P95_MS = 50
API_PAGES = [
    ("API members", "/api/v1/members"),
    ("API members search", "/api/v1/members?q={search}"),
    ("API payments", "/api/v1/payments"),
    ("API payments, completed", "/api/v1/payments?status=completed"),
    ("API payments due", "/api/v1/dues"),
    ("API renewals due", "/api/v1/renewals"),
    ("API member's payments, most payments", "/api/v1/members/{busiest_member}/payments"),
    ("API invoices", "/api/v1/invoices"),
    ("API invoices, part paid", "/api/v1/invoices?status=partially_paid"),
    ("API member's invoices, most payments", "/api/v1/invoices?member={busiest_member}"),
    ("API member's memberships, most payments", "/api/v1/members/{busiest_member}/memberships"),
    ("API plans", "/api/v1/plans"),
]
SAMPLES = {
    "search": "SELECT left(lower(last_name), 3) AS v FROM member GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
    # Not the walk-in account (portal.sales.walkin): every walk-in sale's payment is on it.
    "busiest_member": "SELECT member AS v FROM payment WHERE member NOT IN (SELECT id FROM member WHERE member_number = "
                      "'WALKIN') GROUP BY member ORDER BY count(*) DESC, member LIMIT 1",
    # Issue 14's: 0 (a 404, reported as not built) where the data set has none (one loaded before
    # the bulk history had them).
    "busiest_sale": "SELECT coalesce((SELECT sale FROM sale_line GROUP BY sale ORDER BY count(*) DESC, sale DESC LIMIT 1),"
                    " 0) AS v",
    "busiest_payer": "SELECT coalesce((SELECT payer FROM invoice_bill_to GROUP BY payer ORDER BY count(*) DESC, payer "
                     "LIMIT 1), 0) AS v",
    "frozen_membership": "SELECT coalesce((SELECT f.membership FROM membership_freeze f JOIN membership ms "
                         "ON ms.id = f.membership WHERE ms.status = 'active' GROUP BY f.membership "
                         "ORDER BY count(*) DESC, f.membership DESC LIMIT 1), 0) AS v",
    # Part paid: an open invoice shows its pay link too, so every size times the same work.
    "last_month": "SELECT to_char(now() AT TIME ZONE 'Africa/Nairobi' - interval '1 month', 'YYYY-MM') AS v",
    "busiest_day": "SELECT coalesce((SELECT day FROM gateway_line GROUP BY day ORDER BY count(*) DESC, day DESC LIMIT 1), "
                   "current_date) AS v",
    "busiest_invoice": "SELECT a.invoice AS v FROM allocation a JOIN invoice i ON i.id = a.invoice "
                       "WHERE i.status = 'partially_paid' GROUP BY a.invoice ORDER BY count(*) DESC, a.invoice DESC LIMIT 1",
}


def _sizes() -> list[tuple[int, int]]:
    given = os.environ.get("BENCH_SIZES", "")
    if not given:
        return SIZES
    return [tuple(int(n) for n in size.lower().split("x")) for size in given.split(",")]


# The gateways' book for the reconciliation page: last month's and this month's M-Pesa, card and bank payments as
# the statements, Pull and the cards pass would have told of them, less one in fifty (lost
# confirmations: lines with no payment would be credited, so here payments with no line make the
# differences), one in a hundred at another amount. Idempotent: a kept data set is filled once.
GATEWAY_BOOK = """
INSERT INTO gateway_line (channel, external_id, day, amount, source)
SELECT p.method, CASE WHEN p.method = 'card' THEN p.gateway_ref ELSE p.reference END,
       (p.completed_at AT TIME ZONE 'Africa/Nairobi')::date,
       CASE WHEN p.id % 100 = 7 THEN p.amount + 10 ELSE p.amount END,
       CASE p.method WHEN 'card' THEN 'card_pass' WHEN 'bank' THEN 'bank_statement' ELSE 'statement' END
  FROM payment p
 WHERE p.method IN ('mpesa', 'card', 'bank') AND p.status IN ('completed', 'partially_refunded', 'refunded')
   AND p.completed_at >= (date_trunc('month', now() AT TIME ZONE 'Africa/Nairobi') - interval '1 month')
                         AT TIME ZONE 'Africa/Nairobi'
   AND p.id % 50 <> 3 AND coalesce(CASE WHEN p.method = 'card' THEN p.gateway_ref ELSE p.reference END, '') <> ''
ON CONFLICT (channel, external_id) DO NOTHING
"""


async def _samples() -> dict[str, object]:
    from tables.members import Member

    await Member.raw(GATEWAY_BOOK)
    await Member.raw("ANALYZE gateway_line")  # as autovacuum would after a statement's bulk insert
    return {name: (await Member.raw(sql))[0]["v"] for name, sql in SAMPLES.items()}


async def _check_in_forms() -> list[dict]:
    from tables.members import Member

    rows = await Member.raw("SELECT member_number FROM member WHERE member_number <> 'WALKIN' ORDER BY md5(id::text) "
                            f"LIMIT {pages.WARM_UP + REQUESTS}")
    return [{"q": r["member_number"]} for r in rows]


async def _explained(label: str, result: pages.PageResult, query: pages.Query, why: str) -> str:
    return (f"{why} at {label}: {result.name} ({result.path}), p50 {result.p50:.1f} ms; its slowest query "
            f"(median {query.ms:.1f} ms in process):\n\n```sql\n{query.sql.strip()}\n```\n"
            f"arguments: {list(query.args)}\n\n```\n{await pages.explain(query)}\n```\n")


async def test_page_timings(app):
    from portal.api import keys
    from tables.members import Member

    results: list[pages.PageResult] = []
    bursts: list[burst.Burst] = []
    loads: list[datasets.DataSet] = []
    slowest_sql = ""
    for members, payments in _sizes():
        data = datasets.prepare(members, payments)
        loads.append(data)
        async with pages.engine_on(data.url) as log:
            values = await _samples()
            forms = await _check_in_forms()
            first_visit = (await Member.raw("SELECT coalesce(max(id), 0) + 1 AS v FROM visit"))[0]["v"]
            _, key = await keys.create_key("Bench", ["admin"], None, None)
            try:
                with server.portal_run(data.url) as base:
                    async with PortalClient(None, base) as manager:
                        await manager.login("manager", "manager")
                        size_results = [await pages.measure(manager, None, name, path.format(**values), data.label,
                                                            REQUESTS) for name, path in PAGES]
                        size_results.append(await pages.measure(manager, None, *CHECK_IN, data.label, REQUESTS,
                                                                form=forms))
                    async with httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {key}"},
                                                 limits=httpx.Limits(max_connections=1), timeout=60) as api:
                        size_results += [await pages.measure(api, None, name, path.format(**values), data.label,
                                                             REQUESTS) for name, path in API_PAGES]
                    hook = f"/hooks/daraja/stk/{server.HOOK_TOKEN}"
                    burst_result, paid = await burst.burst(base, hook, data.label, BURST)
            finally:
                await Member.raw("DELETE FROM visit WHERE id >= {}", first_visit)  # the kept set stays as loaded
            await burst.exactly_once(paid, BURST)
            burst_result.queries_per_callback = await _queries_per_callback(log)
            bursts.append(burst_result)
            results.extend(size_results)
            timed = [r for r in size_results if r.status == "ok"]
            if timed and (members, payments) == max(_sizes()):
                worst = max(timed, key=lambda r: r.p50)  # the median: one GC pause should not pick it
                slowest_sql = await _explained(data.label, worst, await _slowest_query(app, log, worst), "Slowest page")
                # The API's lists are meant to answer within 50 ms at p95 (issue 13): any that
                # does not gets its slowest query EXPLAINed in the report too.
                for r in timed:
                    if r.name.startswith("API ") and r.p95 >= API_P95_MS and r is not worst:
                        slowest_sql += "\n" + await _explained(data.label, r, await _slowest_query(app, log, r),
                                                                f"API list over {API_P95_MS} ms at p95")
    report = _report(results, bursts, loads, slowest_sql)
    print("\n" + report)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(report)
    broken = [r for r in results if r.status.startswith("error")]
    assert not broken, [(r.name, r.size, r.status) for r in broken]


async def _slowest_query(app, log: pages.QueryLog, result: pages.PageResult) -> pages.Query:
    """The page timed again in process, where the engine's hook sees each query."""
    from portal.api import keys

    if result.path.startswith("/api/"):
        _, key = await keys.create_key("Bench", ["admin"], None, None)
        client = PortalClient(app)
        client.http.headers["authorization"] = f"Bearer {key}"
    else:
        client = PortalClient(app)
        await client.login("manager", "manager")
    async with client:
        again = await pages.measure(client, log, result.name, result.path, result.size, 5)
    return again.slowest_query()


async def _queries_per_callback(log: pages.QueryLog) -> str:
    """Queries one STK callback costs, from its arrival to its payment's receipts requested:
    a few more prompts, each answered in process where the engine's hook counts every query."""
    import time

    tag = int(time.time()) % 1_000_000 + 500_000
    flight = await burst.prompts(QUERIES_PER_CALLBACK_SAMPLE, tag)
    counts = []
    from portal.app import create_app
    from portal.settings import get_settings

    saved = os.environ.get("DARAJA_CALLBACK_TOKEN")
    os.environ["DARAJA_CALLBACK_TOKEN"] = server.HOOK_TOKEN
    get_settings.cache_clear()
    try:
        hooked = create_app(get_settings(), manage_resources=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=hooked), base_url="http://testserver") as http:
            for _, _, body in flight:
                log.active = []
                r = await http.post(f"/hooks/daraja/stk/{server.HOOK_TOKEN}", content=body,
                                    headers={"content-type": "application/json"})
                counts.append(len(log.active))
                log.active = None
                assert r.status_code == 200 and r.json()["ResultCode"] == 0, r.text
    finally:
        if saved is None:
            os.environ.pop("DARAJA_CALLBACK_TOKEN", None)
        else:
            os.environ["DARAJA_CALLBACK_TOKEN"] = saved
        get_settings.cache_clear()
    await burst.exactly_once([p for p, _, _ in flight], QUERIES_PER_CALLBACK_SAMPLE)
    low, high = min(counts), max(counts)
    return str(low) if low == high else f"{low}–{high}"


def _report(results: list[pages.PageResult], bursts: list[burst.Burst], loads: list[datasets.DataSet],
            slowest_sql: str) -> str:
    lines = [f"# Page benchmark, {datetime.now():%Y-%m-%d %H:%M}", "",
             f"{os.cpu_count()} cores, Python {platform.python_version()}, end to end over HTTP to `portal run`: one "
             f"sequential client on one keep-alive connection, {REQUESTS} requests a page after {pages.WARM_UP} "
             f"warm-ups, logged in as a manager; wall time per request as the client saw it (server ms: the app's "
             f"own Server-Timing, median).", ""]
    for data in loads:
        lines.append(f"- {data.label}: " + (f"loaded in {data.load_seconds:.0f} s" if data.load_seconds is not None
                                            else f"kept ({data.note})"))
    lines += ["", "| page | size | p50 ms | p95 ms | queries | server ms p50 |", "|---|---|---:|---:|---:|---:|"]
    for r in results:
        if r.status == "ok":
            lines.append(f"| {r.name} | {r.size} | {r.p50:.1f} | {r.p95:.1f} | {r.query_count} | {r.server_p50:.1f} |")
        else:
            lines.append(f"| {r.name} | {r.size} | {r.status} | | | |")
    changed = sorted({r.name for r in results if r.status == "ok"} - {
        name for name in {r.name for r in results}
        if len({r.query_count for r in results if r.name == name and r.status == "ok"}) == 1})
    if changed:
        lines += ["", "Query counts that differ between sizes: " + ", ".join(changed)]
    lines += ["", f"Callback burst: distinct M-Pesa STK success callbacks over {burst.CONNECTIONS} connections, "
              "each checked applied once after (one completion, one M-Pesa credit, its ledger entries summing to "
              "zero; all legs summing to zero). Queries per callback: a few more, each answered in process.", "",
              "| size | callbacks | absorbed/s | answer p50 ms | answer p95 ms | applied/s | queries per callback | resent |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for b in bursts:
        lines.append(f"| {b.size} | {b.callbacks} | {b.absorbed_per_second:.0f} | {statistics.median(b.answer_ms):.1f} | "
                     f"{pages.p95(b.answer_ms):.1f} | {b.applied_per_second:.0f} | {b.queries_per_callback} | {b.resent} |")
    lines += ["", slowest_sql or "(no page timed at the largest size: no EXPLAIN)"]
    return "\n".join(lines) + "\n"
