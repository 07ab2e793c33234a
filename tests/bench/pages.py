"""Timing pages: the app in-process against a bench database, as a logged-in manager. Server time
is the app's own Server-Timing header (request in, response out, templates included), queries
its X-Query-Count; a hook on the Piccolo engine times each query too, so the slowest can be
EXPLAINed with the arguments it ran with."""

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
    server_ms: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    logs: list[list[Query]] = field(default_factory=list)  # per request

    @property
    def p50(self) -> float:
        return statistics.median(self.server_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.server_ms)
        return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]  # nearest rank

    @property
    def query_count(self) -> str:
        low, high = min(self.queries), max(self.queries)
        return str(low) if low == high else f"{low}–{high}"

    @property
    def db_ms(self) -> float:
        return statistics.median(sum(q.ms for q in log) for log in self.logs)

    def slowest_query(self) -> Query:
        """The query (by its place in the request) with the highest median time; its median run."""
        by_place: dict[int, list[Query]] = {}
        for log in self.logs:
            for i, q in enumerate(log):
                by_place.setdefault(i, []).append(q)
        runs = max(by_place.values(), key=lambda qs: statistics.median(q.ms for q in qs))
        return sorted(runs, key=lambda q: q.ms)[len(runs) // 2]


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


async def measure(client: PortalClient, log: QueryLog, name: str, path: str, size: str, requests: int) -> PageResult:
    result = PageResult(name, path, size)
    for i in range(WARM_UP + requests):
        log.active = []
        response = await client.get(path)
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
