"""Desk sales in the demo gym: day passes and drinks to walk-ins, personal training (sessions and
packs of 10, used up visit by visit), lockers and shakes to members, over the last 18 months.

Made by the app's own rule (portal.sales.sales.sell, and portal.sales.packs.use_session for the
sessions), each run at the moment it happened (portal.lib.clock.pinned): the invoice's dates, its INV and RCP
numbers' year, the ledger entries' time and business day, the payment's and its events' times and
the sale's are the app's own. The invoice message sell() queues for a member is dropped in the
same transaction (the bulk history sends none either). The audit log stamps its rows itself, at
the time the demo was loaded, as for freezes.

A generator of its own: the money the bulk history (demo.history) writes for a seed is unchanged;
sales only add to it. Most sales are recent (the close, the analytics by category and the
member pages are read for the last weeks), the rest spread over the months before. Only the
small demo gym has them, like freezes: the benchmarks' bulk loads do not need them.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

from demo.gym import FIRST_NAMES, MEMBER_BASKETS, TIME_WEIGHTS, TIMES, WALKIN_BASKETS
from portal.billing.invoices import Line
from portal.lib import db
from portal.lib.clock import now, pinned, today
from portal.lib.money import Money
from portal.sales import packs
from portal.sales.sales import SaleRequest, sale_total, sell
from portal.settings import get_settings
from tables.billing import Invoice
from tables.members import Membership
from tables.sales import CatalogueItem
from tables.staff import Staff

SALE_DAYS = 540  # 18 months
SALES_PER_MEMBER = 0.3  # each sale is the app's full rule (about 100 queries): kept few for a fast first start
# Made one by one by the app's rule, so a bulk load (the benchmarks' 20,000 members) gets the small
# gym's number, not 6,000 sales at a second each: the bulk history writes money in bulk.
MAX_SALES = 60
RECENT_DAYS, RECENT_SHARE = 60, 0.6
ACCOUNT_DAYS = 7  # "on my account" only lately: older ones would be long overdue
WALKIN_SHARE = 0.45


async def add_sales(members: int, seed: int = 7) -> int:
    """About SALES_PER_MEMBER sales a member; returns how many were made."""
    rng = random.Random(seed * 15485863 + 5)
    settings = get_settings()
    tz, t, moment_now = settings.tz, today(), now()
    catalogue = {r["name"]: r for r in await CatalogueItem.select().where(CatalogueItem.active == True)}  # noqa: E712
    desks = await Staff.select(Staff.id, Staff.location).where(
        (Staff.role == "front_desk") & Staff.location.is_not_null()).order_by(Staff.id)
    if not desks or not catalogue:
        return 0
    # Paid memberships, and the freezes' days: a member buys while their membership runs, not frozen.
    runs = await Membership.raw(
        "SELECT ms.member, ms.start_date, ms.end_date, m.home_location FROM membership ms "
        "JOIN member m ON m.id = ms.member WHERE ms.status IN ('active', 'expired') ORDER BY ms.id")
    frozen = await Membership.raw("SELECT member, start_date, end_date FROM membership_freeze")
    first = max(t - timedelta(days=SALE_DAYS), min((r["start_date"] for r in runs), default=t))

    moments = []
    for _ in range(min(round(members * SALES_PER_MEMBER), MAX_SALES)):
        recent = rng.random() < RECENT_SHARE
        lo = max(first, t - timedelta(days=RECENT_DAYS - 1)) if recent else first
        hi = t if recent else max(first, t - timedelta(days=RECENT_DAYS))
        day = lo + timedelta(days=rng.randint(0, (hi - lo).days))
        start, end = rng.choices(TIMES, TIME_WEIGHTS)[0]
        at = datetime.combine(day, time(0), tz) + timedelta(minutes=rng.randint(start, end), seconds=rng.randint(0, 59))
        if at > moment_now - timedelta(minutes=5):  # today, later than now: yesterday instead
            at -= timedelta(days=1)
        moments.append(at)
    moments.sort()

    made = 0
    for i, at in enumerate(moments):
        day = at.astimezone(tz).date()
        walk_in = rng.random() < WALKIN_SHARE
        member = None
        if not walk_in:
            running = [r for r in runs if r["start_date"] <= day <= r["end_date"]
                       and not any(f["member"] == r["member"] and f["start_date"] <= day <= f["end_date"] for f in frozen)]
            if running:
                member = rng.choice(running)
        basket = rng.choices(*zip(*(WALKIN_BASKETS if member is None else MEMBER_BASKETS)))[0]
        here = [d for d in desks if member is None or d["location"] == member["home_location"]] or desks
        desk = rng.choice(here)
        method = rng.choices(["cash", "bank", "cheque", "account"], [70, 14, 4, 12] if member else [85, 15, 0, 0])[0]
        if method == "account" and (t - day).days > ACCOUNT_DAYS:
            method = "cash"
        chosen = {name: qty for name, qty in basket.items() if name in catalogue}
        if not chosen:
            continue
        quantities = {catalogue[name]["id"]: qty for name, qty in chosen.items()}
        tendered = None
        if method == "cash":  # exact, or the next note up
            total = sale_total([Line(name, Money(catalogue[name]["price"], catalogue[name]["currency"]), qty,
                                     catalogue[name]["vat_rate"], catalogue[name]["vat_inclusive"])
                                for name, qty in chosen.items()], settings.currency).amount
            note = rng.choice([0, 0, 500, 1000])
            tendered = Money(total if not note else ((total // note) + 1) * note, settings.currency)
        reference = {"bank": f"FT{rng.randint(10**9, 10**10 - 1)}", "cheque": f"{rng.randint(100000, 999999)}"}.get(method, "")
        buyer = rng.choice(FIRST_NAMES) if member is None and rng.random() < 0.3 else ""
        request = SaleRequest(member_id=member["member"] if member else None, quantities=quantities, method=method,
                              tendered=tendered, reference=reference, buyer_name=buyer, confirmed=True,
                              location_id=desk["location"])
        with pinned(at):
            async with db.transaction():
                result = await sell(request, idempotency_key=f"demo-sale:{seed}:{i}", staff_id=desk["id"],
                                    currency=settings.currency)
                await _dated(result, at)
        made += 1
        if member and "PT pack of 10" in chosen:
            await _use_sessions(rng, member["member"], desk["id"], at, day, t, moment_now)
    return made


async def _dated(result, at: datetime) -> None:
    """The invoice message sell() queued for a member (the bulk history sends none either)."""
    await Invoice.raw("DELETE FROM message WHERE invoice = {}", result.invoice["id"])


async def _use_sessions(rng: random.Random, member: int, staff: int, sold: datetime, day: date, t: date,
                        moment_now: datetime) -> None:
    """The pack's sessions used since, two to five days apart (portal.sales.packs.use_session)."""
    at = sold
    for _ in range(10):
        at += timedelta(days=rng.randint(2, 5), minutes=rng.randint(-90, 90))
        if at > moment_now - timedelta(minutes=5) or rng.random() < 0.05:
            return
        with pinned(at):
            await packs.use_session(member, staff_id=staff)
