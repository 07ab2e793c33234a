"""Page timings at real size: for each data set (2,000 members / 50,000 payments and 20,000 /
500,000), each page in PAGES is requested REQUESTS times by a logged-in manager, and each API list in
API_PAGES by a caller with an admin-scope key; the table gives
median and p95 server time and queries per request, and is written to test-artifacts/bench.md
with the EXPLAIN of the slowest page's slowest query.

    make bench                                  # both sizes, 30 requests a page
    BENCH_SIZES=2000x50000 BENCH_REQUESTS=10 make bench
    BENCH_RELOAD=1 make bench                   # load the data sets afresh
"""

from __future__ import annotations

import contextlib
import os
import platform
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.bench import datasets, pages
from tests.support.client import PortalClient

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "test-artifacts" / "bench.md"
SIZES = [(2_000, 50_000), (20_000, 500_000)]
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "30"))

# The pages to time. Placeholders are filled from the data set (see SAMPLES); a page that answers
# 404 is reported as not built yet, so pages can be listed before they land.
PAGES = [
    ("members", "/members"),
    ("members search", "/members?q={search}"),
    ("member, most payments", "/members/{busiest_member}"),
    ("payments", "/payments"),
    ("invoice, part paid, most allocations", "/invoices/{busiest_invoice}"),
    ("payments due", "/dues"),
    ("renewals due", "/renewals"),
    ("analytics", "/analytics"),
    ("end-of-day close", "/close"),
    ("catalogue", "/catalogue"),
    ("sell to a walk-in", "/sales/new"),
    ("reconciliation, this month", "/reconcile"),
    ("reconciliation, last month (whole)", "/reconcile?month={last_month}"),
    ("reconciliation, busiest day", "/reconcile/days/{busiest_day}"),
]
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
]
SAMPLES = {
    "search": "SELECT left(lower(last_name), 3) AS v FROM member GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
    "busiest_member": "SELECT member AS v FROM payment GROUP BY member ORDER BY count(*) DESC, member LIMIT 1",
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


async def test_page_timings(app):
    results: list[pages.PageResult] = []
    loads: list[datasets.DataSet] = []
    slowest_sql = ""
    for members, payments in _sizes():
        data = datasets.prepare(members, payments)
        loads.append(data)
        async with pages.engine_on(data.url) as log:
            values = await _samples()
            async with PortalClient(app) as manager:
                await manager.login("manager", "manager")
                size_results = [await pages.measure(manager, log, name, path.format(**values), data.label, REQUESTS)
                                for name, path in PAGES]
            async with _api_client(app) as api:
                size_results += [await pages.measure(api, log, name, path.format(**values), data.label, REQUESTS)
                                 for name, path in API_PAGES]
            results.extend(size_results)
            timed = [r for r in size_results if r.status == "ok"]
            if timed and (members, payments) == max(_sizes()):
                worst = max(timed, key=lambda r: r.p50)  # the median: one GC pause should not pick it
                query = worst.slowest_query()
                slowest_sql = (f"Slowest page at {data.label}: {worst.name} ({worst.path}), p50 {worst.p50:.1f} ms; "
                               f"its slowest query (median {query.ms:.1f} ms):\n\n```sql\n{query.sql.strip()}\n```\n"
                               f"arguments: {list(query.args)}\n\n```\n{await pages.explain(query)}\n```\n")
                # The API's lists are meant to answer within 50 ms at p95 (issue 13): any that
                # does not gets its slowest query EXPLAINed in the report too.
                for r in timed:
                    if r.name.startswith("API ") and r.p95 >= API_P95_MS:
                        query = r.slowest_query()
                        slowest_sql += (f"\nAPI list over {API_P95_MS} ms at p95: {r.name} ({r.path}), p95 {r.p95:.1f} ms; "
                                        f"its slowest query (median {query.ms:.1f} ms):\n\n```sql\n{query.sql.strip()}\n```\n"
                                        f"arguments: {list(query.args)}\n\n```\n{await pages.explain(query)}\n```\n")
    report = _report(results, loads, slowest_sql)
    print("\n" + report)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(report)
    broken = [r for r in results if r.status.startswith("error")]
    assert not broken, [(r.name, r.size, r.status) for r in broken]


@contextlib.asynccontextmanager
async def _api_client(app):
    """A caller with an admin-scope key made in the bench database, allowed more requests a minute
    than the bench sends (the limit's statement still runs in every request)."""
    from portal.api import keys
    from portal.settings import get_settings

    _, key = await keys.create_key("Bench", ["admin"], None, None)
    saved = os.environ.get("API_RATE_PER_MINUTE")
    os.environ["API_RATE_PER_MINUTE"] = "100000"
    get_settings.cache_clear()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                     headers={"authorization": f"Bearer {key}"}) as client:
            yield client
    finally:
        if saved is None:
            os.environ.pop("API_RATE_PER_MINUTE", None)
        else:
            os.environ["API_RATE_PER_MINUTE"] = saved
        get_settings.cache_clear()


def _report(results: list[pages.PageResult], loads: list[datasets.DataSet], slowest_sql: str) -> str:
    lines = [f"# Page benchmark, {datetime.now():%Y-%m-%d %H:%M}", "",
             f"{os.cpu_count()} cores, Python {platform.python_version()}, {REQUESTS} requests a page after "
             f"{pages.WARM_UP} warm-up requests, logged in as a manager; server time from the Server-Timing header.", ""]
    for data in loads:
        lines.append(f"- {data.label}: " + (f"loaded in {data.load_seconds:.0f} s" if data.load_seconds is not None
                                            else f"kept ({data.note})"))
    lines += ["", "| page | size | p50 ms | p95 ms | queries | db ms p50 |", "|---|---|---:|---:|---:|---:|"]
    for r in results:
        if r.status == "ok":
            lines.append(f"| {r.name} | {r.size} | {r.p50:.1f} | {r.p95:.1f} | {r.query_count} | {r.db_ms:.1f} |")
        else:
            lines.append(f"| {r.name} | {r.size} | {r.status} | | | |")
    changed = sorted({r.name for r in results if r.status == "ok"} - {
        name for name in {r.name for r in results}
        if len({r.query_count for r in results if r.name == name and r.status == "ok"}) == 1})
    if changed:
        lines += ["", "Query counts that differ between sizes: " + ", ".join(changed)]
    lines += ["", slowest_sql or "(no page timed at the largest size: no EXPLAIN)"]
    return "\n".join(lines) + "\n"
