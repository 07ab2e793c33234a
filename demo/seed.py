"""Demo data: a realistic small gym in Nairobi. Only ever loaded in demo mode.

Deterministic for a seed. The default small gym goes through the business functions one
invoice and payment at a time; with `payments` given (benchmark sizes, 20,000 members and
500,000 payments) the history is simulated and written in bulk by demo.bulk.
"""

from __future__ import annotations

import random
import sys
from datetime import date, timedelta

from demo.bulk import load_bulk
from demo.gym import FIRST_NAMES, LAST_NAMES, demo_phone, ensure_gym
from portal.lib import db
from portal.lib.clock import today
from portal.lib.phones import SAFARICOM
from portal.members.memberships import membership_end, status_on
from portal.settings import get_settings
from tables.members import Member, Membership
from tables.staff import Staff


async def ensure_demo_data() -> None:
    """First start in demo mode: load the demo gym once."""
    if not await Staff.exists():
        await load_demo_data()


async def load_demo_data(members: int = 200, seed: int = 7, payments: int | None = None,
                         force_append: bool = False) -> None:
    settings = get_settings()
    if not settings.demo:
        sys.exit("demo data is only loaded in demo mode (DEMO=1): it creates logins with known passwords")
    if payments is not None:
        report = await load_bulk(members, payments, seed=seed, force_append=force_append)
        print(f"demo data: {report.summary()}", flush=True)
        return
    rng = random.Random(seed)
    async with db.transaction():
        locations, plans = await ensure_gym(settings.currency)
        await _members(rng, members, locations, plans, settings.member_prefix)
    await _billing(rng)
    print(f"demo data: {members} members, {len(plans)} plans, {len(locations)} locations", flush=True)


def _phone(rng: random.Random, used: set[str]) -> str:
    """Safaricom for nearly everyone (staff send them M-Pesa prompts); one member in twenty on
    Airtel, who the desk's M-Pesa form tells to pay another way."""
    return demo_phone(rng, used, "Airtel" if rng.random() < 0.05 else SAFARICOM)


async def _members(rng: random.Random, count: int, locations: list[int], plans: list[dict], prefix: str) -> None:
    day = today()
    start_n = (await Member.raw("SELECT nextval('member_number_seq') AS n"))[0]["n"]
    await Member.raw("SELECT setval('member_number_seq', {})", start_n + count - 1)
    used: set[str] = set()
    chunk = 1000
    for offset in range(0, count, chunk):
        batch = []
        for i in range(offset, min(offset + chunk, count)):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{first}.{last}{i}@example.com".lower() if rng.random() < 0.7 else None
            batch.append(Member(
                member_number=f"{prefix}{start_n + i:04d}", first_name=first, last_name=last,
                phone=_phone(rng, used), email=email, home_location=rng.choice(locations),
                reminder_opt_out=rng.random() < 0.05,
            ))
        async with db.transaction():
            inserted = await Member.insert(*batch).returning(Member.id)
            memberships = []
            for row in inserted:
                memberships.extend(_membership_rows(rng, row["id"], plans, day))
            if memberships:
                await Membership.insert(*memberships)


async def _billing(rng: random.Random) -> None:
    """Invoices and desk payments through the real rules, so the ledger is what it would be."""
    from portal.billing.invoices import issue_invoice, lock_member, plan_line
    from portal.lib.money import Money
    from portal.members.renewals import raise_renewal_invoices
    from portal.payments.service import record_desk_payment

    desk = await Staff.select(Staff.id, Staff.location).where(Staff.role == "front_desk").first()
    rows = await Membership.raw(
        "SELECT ms.id, ms.member, ms.start_date, ms.end_date, p.id AS plan_id, p.name, p.price, p.currency, "
        "p.duration_months, p.duration_days FROM membership ms JOIN plan p ON p.id = ms.plan "
        "WHERE NOT EXISTS (SELECT 1 FROM invoice i WHERE i.membership = ms.id) ORDER BY ms.id")
    for ms in rows:
        period = f"{ms['start_date']:%d %b %Y} – {ms['end_date']:%d %b %Y}"
        async with db.transaction():
            await lock_member(ms["member"])
            invoice = await issue_invoice(ms["member"], [plan_line(ms, period)], kind="other", plan_id=ms["plan_id"],
                                          membership_id=ms["id"], period_start=ms["start_date"], due_date=ms["start_date"])
        outcome = rng.choices(["paid", "part", "open"], weights=[82, 9, 9])[0]
        if outcome == "open":
            continue
        total = Money(invoice["total"], invoice["currency"])
        amount = total if outcome == "paid" else Money(invoice["total"] // 2, invoice["currency"])
        method = rng.choices(["cash", "bank", "cheque"], weights=[70, 22, 8])[0]
        reference = "" if method == "cash" else (f"EQ{rng.randrange(10**6):06d}" if method == "bank" else f"{rng.randrange(10**6):06d}")
        await record_desk_payment(member_id=ms["member"], method=method, amount=amount, reference=reference,
                                  invoice_id=invoice["id"], idempotency_key=f"demo-{invoice['id']}",
                                  staff_id=desk["id"], location_id=desk["location"])
    await raise_renewal_invoices()


def _membership_rows(rng: random.Random, member_id: int, plans: list[dict], day: date) -> list[Membership]:
    """A mix the dashboards can show: mostly active, some expiring soon, expired, or not yet started."""
    plan = rng.choices(plans, weights=[6, 3, 1])[0]
    kind = rng.choices(["active", "expiring", "expired", "future", "none"], weights=[55, 15, 15, 5, 10])[0]
    if kind == "none":
        return []
    length = (membership_end(day, plan["duration_months"], 0) - day).days + 1
    if kind == "active":
        start = day - timedelta(days=rng.randrange(0, max(1, length - 8)))
    elif kind == "expiring":
        start = day - timedelta(days=length - rng.randrange(1, 8))
    elif kind == "expired":
        start = day - timedelta(days=length + rng.randrange(1, 60))
    else:
        start = day + timedelta(days=rng.randrange(1, 14))
    end = membership_end(start, plan["duration_months"], 0)
    return [Membership(member=member_id, plan=plan["id"], start_date=start, end_date=end,
                       status=status_on(start, end, day), price=plan["price"], currency=plan["currency"])]
