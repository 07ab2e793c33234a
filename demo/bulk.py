"""Bulk demo data: `portal demo-data --members 20000 --payments 500000` in a few minutes.

The gym's history is simulated in memory (demo.history) and written with COPY, in one
transaction, so a failed or interrupted load leaves nothing behind. Ids come from each table's
own sequence (a reserved range), member numbers from member_number_seq and invoice, receipt and
credit-note numbers from document_counter, so the app carries on numbering after the bulk rows.

Every constraint and trigger stays on: the ledger's deferred balance trigger checks each loaded
entry at COMMIT as it does for the app (about 5 µs a leg, some 10 s at 500,000 payments).
"""

from __future__ import annotations

import gc
import itertools
import logging
import sys
import time
from dataclasses import dataclass, field

import asyncpg

from demo import extras as demo_extras
from demo.gym import FIRST_NAMES, LAST_NAMES, ensure_gym
from demo.history import EXTRA_TABLES, Gym, History, PlanTerms
from demo.visits import simulate_visits
from portal.lib.clock import now
from portal.lib.progress import Progress
from portal.settings import get_settings

log = logging.getLogger(__name__)

# In foreign-key order.
TABLES = ["member", "membership", "invoice", "invoice_line", "payment", "payment_event", "ledger_entry", "ledger_leg",
          "allocation", "credit_note", "gateway_request", "visit", *EXTRA_TABLES]
PLAN_WEIGHTS = {"Monthly": 70, "Quarterly": 22, "Annual": 8}
LOCATION_WEIGHTS = [60, 40]
# A front desk for each location, so cash at every branch has someone who took it.
DESK_NAMES = [("Kevin", "Ouma"), ("Mercy", "Chebet"), ("Brian", "Kiprotich"), ("Joy", "Nduta")]
COPY_BATCH = 50_000


class DemoDataRefused(RuntimeError):
    """Bulk demo data would land in a gym that already has members."""


@dataclass
class BulkReport:
    counts: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        c = self.counts
        return (f"{c['member']:,} members, {c['payment']:,} payments, {c['invoice']:,} invoices, "
                f"{c['ledger_entry']:,} ledger entries ({c['ledger_leg']:,} legs), {c['visit']:,} check-ins, "
                + (f"{c['sale']:,} desk sales, {c['discount']:,} discounts, {c['membership_freeze']:,} freezes, "
                   f"{c['payer']:,} payers for {c['payer_member']:,} members, " if c.get("sale") or c.get("payer") else "")
                + f"in "
                f"{sum(self.seconds.values()):.0f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items()) + ")")


async def load_bulk(members: int, payments: int, *, seed: int = 7, force_append: bool = False,
                    show_progress: bool = True, extras: bool = True) -> BulkReport:
    """Load `members` members and exactly `payments` payments of realistic history; with
    `extras`, desk sales, discounts, freezes and payers among them (demo.extras)."""
    from piccolo.engine import engine_finder

    if members < 1 or payments < 0:
        raise ValueError("members must be at least 1 and payments not negative")
    settings = get_settings()
    timings: dict[str, float] = {}
    started = time.monotonic()
    conn = await asyncpg.connect(**engine_finder().config)
    try:
        existing = await conn.fetchval("SELECT count(*) FROM member WHERE member_number <> 'WALKIN'")
        if existing and not force_append:
            raise DemoDataRefused(
                f"the database already has {existing:,} members: bulk demo data goes into an empty gym "
                "(add --force-append to add it anyway)")
        await ensure_gym(settings.currency)
        gym = await _gym(conn, settings)
        if extras:
            from portal.sales.catalogue import seed_default_items
            from portal.sales.walkin import walkin_member_id

            await seed_default_items(settings.currency, settings.vat_rate, settings.prices_include_vat)
            gym.items = {r["name"]: dict(r) for r in await conn.fetch(
                "SELECT * FROM catalogue_item WHERE active AND currency = $1 ORDER BY id", settings.currency)}
            gym.walkin = await walkin_member_id()
            gym.promos = {r["code"]: dict(r) for r in await conn.fetch("SELECT * FROM promo_code")}
        taken = {r["phone"] for r in await conn.fetch("SELECT phone FROM member")} if existing else set()
        history = History(gym, seed, demo_extras if extras else None)
        # Millions of small rows are alive until they are written: the cyclic garbage collector's
        # full passes over them took half the simulation's time (1,000 members / 25,000 payments:
        # 3.1 s of CPU with it, 1.5 s without). Off until the rows are written; the few cycles
        # made meanwhile (a history laid out again) are collected after.
        gc.disable()
        bar = Progress("simulating members", members, "members", enabled=show_progress)
        history.simulate(members, payments, _names(), taken, progress=bar)
        history.ordered()
        history.visits = simulate_visits(history)
        timings["simulate"] = bar.finish()
        counts = history.counts()
        assert counts["payment"] == payments, counts

        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {', '.join(TABLES)}, document_counter IN SHARE ROW EXCLUSIVE MODE")
            first_ids = {table: await _reserve_ids(conn, table, counts[table]) for table in TABLES}
            first_member = await conn.fetchval(
                "SELECT setval('member_number_seq', nextval('member_number_seq') + $1 - 1) - $1 + 1", members)
            first_numbers = {key: await _reserve_numbers(conn, *key, n) for key, n in history.numbers_needed().items()}
            history.assign(first_ids, first_numbers, first_member, settings.member_prefix)
            bar = Progress("writing rows", sum(counts.values()), "rows", enabled=show_progress)
            for table in TABLES:
                present = {r["column_name"] for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = $1 "
                    "AND table_schema = current_schema()", table)}
                columns, rows = history.rows(table, present)
                table_started = time.monotonic()
                while batch := list(itertools.islice(rows, COPY_BATCH)):
                    await conn.copy_records_to_table(table, records=batch, columns=columns)
                    bar.advance(len(batch))
                log.debug("%s: %d rows in %.1f s", table, counts[table], time.monotonic() - table_started)
            timings["write"] = bar.finish()
            mark = time.monotonic()
            if show_progress:
                print("committing (the database checks that every ledger entry balances)…", file=sys.stderr, flush=True)
        timings["commit"] = time.monotonic() - mark
        gc.enable()

        mark = time.monotonic()
        # VACUUM too, not only ANALYZE: it sets the visibility map (index-only scans) and hint bits
        # that autovacuum would have set in a live database, so first page loads are not slowed
        # by a one-off rewrite of every page read.
        for table in TABLES:
            await conn.execute(f"VACUUM (ANALYZE) {table}")
        timings["analyze"] = time.monotonic() - mark
    finally:
        gc.enable()
        await conn.close()
    report = BulkReport(counts, timings)
    log.debug("bulk demo data loaded in %.0f s: %s", time.monotonic() - started, report.summary())
    return report


async def _gym(conn, settings) -> Gym:
    plans = [PlanTerms.of(dict(r), settings.vat_rate, settings.prices_include_vat) for r in await conn.fetch(
        "SELECT id, name, price, currency, duration_months, duration_days FROM plan WHERE active ORDER BY price")]
    if not plans:
        raise DemoDataRefused("no active plan to put members on")
    locations = [r["id"] for r in await conn.fetch("SELECT id FROM location WHERE active ORDER BY id")]
    desk: dict[int, list[int]] = {}
    for r in await conn.fetch("SELECT id, location FROM staff WHERE role = 'front_desk' AND location IS NOT NULL"):
        desk.setdefault(r["location"], []).append(r["id"])
    missing = [loc for loc in locations if loc not in desk]
    if missing:
        await _add_desk_staff(missing)
        return await _gym(conn, settings)
    manager = await conn.fetchval("SELECT id FROM staff WHERE role IN ('manager', 'admin') ORDER BY role = 'admin', id LIMIT 1")
    return Gym(plans=plans, plan_weights=[PLAN_WEIGHTS.get(p.name, 5) for p in plans], locations=locations,
               location_weights=[LOCATION_WEIGHTS[i] if i < len(LOCATION_WEIGHTS) else 20 for i in range(len(locations))],
               desk=desk, manager=manager, tz=settings.tz, member_prefix=settings.member_prefix,
               renewal_days_before=settings.renewal_days_before, stk_timeout_seconds=settings.stk_timeout_seconds,
               shortcode=settings.daraja_shortcode or "174379", currency=settings.currency, now=now())


async def _add_desk_staff(locations: list[int]) -> None:
    """Front-desk logins with unguessable passwords (not demo logins): they only own history."""
    import secrets

    from portal.auth import create_staff

    for i, location in enumerate(locations):
        first, last = DESK_NAMES[i % len(DESK_NAMES)]
        await create_staff(f"{first.lower()}{location}", secrets.token_urlsafe(16), "front_desk", first_name=first,
                           last_name=last, location_id=location)


def _names() -> tuple[list[str], list[str]]:
    from demo.history import FIRST_NAMES_EXTRA, LAST_NAMES_EXTRA

    return FIRST_NAMES + FIRST_NAMES_EXTRA, LAST_NAMES + LAST_NAMES_EXTRA


async def _reserve_ids(conn, table: str, count: int) -> int:
    """The first of `count` ids taken from the table's sequence (the table is locked)."""
    seq = await conn.fetchval("SELECT pg_get_serial_sequence($1, 'id')", table)
    if not count:
        return 0
    return await conn.fetchval(
        f"SELECT setval($1::regclass, greatest((SELECT coalesce(max(id), 0) FROM {table}),"
        f" (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {seq})) + $2) - $2 + 1",
        seq, count)


async def _reserve_numbers(conn, kind: str, year: int, count: int) -> int:
    last = await conn.fetchval(
        "INSERT INTO document_counter (kind, year, last) VALUES ($1, $2, $3) "
        "ON CONFLICT (kind, year) DO UPDATE SET last = document_counter.last + $3 RETURNING last", kind, year, count)
    return last - count + 1
