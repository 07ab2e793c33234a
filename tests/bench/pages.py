"""Timing pages against a bench database, as a logged-in manager: over real HTTP to `portal run`
(tests/bench/server.py: wall time per request as the client sees it, one keep-alive connection),
or in-process (the app's own Server-Timing header). Queries are the response's X-Query-Count; in
process, a hook on the Piccolo engine times each query too, so the slowest can be EXPLAINed with
the arguments it ran with."""

from __future__ import annotations

import contextlib
import re
import statistics
import time
from dataclasses import dataclass, field

from tests.support.client import PortalClient

WARM_UP = 3
_APP_DURATION = re.compile(r"app;dur=([0-9.]+)")


@dataclass
class Query:
    sql: str
    args: tuple
    ms: float


@dataclass
class PageResult:
    name: str
    path: str
    size: str
    status: str = "ok"  # ok | not built yet | error NNN
    wall_ms: list[float] = field(default_factory=list)  # as the client saw it, request sent to body read
    server_ms: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    logs: list[list[Query]] = field(default_factory=list)  # per request

    @property
    def timings(self) -> list[float]:
        return self.wall_ms or self.server_ms

    @property
    def p50(self) -> float:
        return statistics.median(self.timings)

    @property
    def p95(self) -> float:
        return p95(self.timings)

    @property
    def server_p50(self) -> float:
        return statistics.median(self.server_ms)

    @property
    def query_count(self) -> str:
        low, high = min(self.queries), max(self.queries)
        return str(low) if low == high else f"{low}–{high}"

    @property
    def db_ms(self) -> float | None:
        return statistics.median(sum(q.ms for q in log) for log in self.logs) if self.logs else None

    def slowest_query(self) -> Query:
        """The query (by its place in the request) with the highest median time; its median run."""
        by_place: dict[int, list[Query]] = {}
        for log in self.logs:
            for i, q in enumerate(log):
                by_place.setdefault(i, []).append(q)
        runs = max(by_place.values(), key=lambda qs: statistics.median(q.ms for q in qs))
        return sorted(runs, key=lambda q: q.ms)[len(runs) // 2]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]  # nearest rank


class QueryLog:
    """Every query the engine runs while `active`, with its time."""

    def __init__(self, engine):
        self.engine = engine
        self.active: list[Query] | None = None
        run = engine.run_querystring

        async def timed(querystring, in_pool: bool = True):
            started = time.perf_counter()
            try:
                return await run(querystring, in_pool)
            finally:
                if self.active is not None:
                    sql, args = querystring.compile_string(engine_type=engine.engine_type)
                    self.active.append(Query(sql, tuple(args), (time.perf_counter() - started) * 1000))

        engine.run_querystring = timed

    def remove(self) -> None:
        del self.engine.run_querystring  # back to the class's method


@contextlib.asynccontextmanager
async def engine_on(url: str):
    """Point the app's one Piccolo engine (every table uses it) at `url` for the block."""
    from piccolo.engine import engine_finder

    engine = engine_finder()
    saved = dict(engine.config)
    if engine.pool:
        await engine.close_connection_pool()
    engine.config["dsn"] = url
    await engine.start_connection_pool(min_size=1, max_size=4)
    log = QueryLog(engine)
    try:
        yield log
    finally:
        log.remove()
        await engine.close_connection_pool()
        engine.config.clear()
        engine.config.update(saved)


async def measure(client: PortalClient, log: QueryLog | None, name: str, path: str, size: str, requests: int,
                  form: list[dict] | None = None) -> PageResult:
    """GET `path` WARM_UP + `requests` times (or, with `form`, POST each form in turn by htmx, as
    check-in is asked); log=None: over HTTP, wall time only (the server is another process)."""
    result = PageResult(name, path, size)
    for i in range(WARM_UP + requests):
        if log is not None:
            log.active = []
        started = time.perf_counter()
        if form is not None:
            response = await client.post(path, form[i % len(form)], htmx=True)
        else:
            response = await client.get(path)
        wall = (time.perf_counter() - started) * 1000
        queries = None
        if log is not None:
            queries, log.active = log.active, None
        if response.status_code == 404 and i == 0:
            result.status = "not built yet"
            return result
        if response.status_code != 200:
            result.status = f"error {response.status_code}"
            return result
        if i < WARM_UP:
            continue
        result.server_ms.append(float(_APP_DURATION.search(response.headers["server-timing"]).group(1)))
        result.queries.append(int(response.headers["x-query-count"]))
        if queries is None:
            result.wall_ms.append(wall)
        else:
            result.logs.append(queries)
    return result


async def explain(query: Query) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) with the arguments it ran with, rolled back (ANALYZE runs it)."""
    from piccolo.engine import engine_finder

    async with engine_finder().pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + query.sql, *query.args)
        finally:
            await tx.rollback()
    return "\n".join(r[0] for r in rows)
