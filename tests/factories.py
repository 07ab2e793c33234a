"""Small, explicit builders: defaults for what a test doesn't care about, arguments for what it does."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

from tables.locations import Location
from tables.members import Member, Membership, Plan

_seq = itertools.count(1)


async def make_location(code: str = "WST", name: str = "Westlands") -> int:
    loc = Location(code=code, name=name)
    await loc.save()
    return loc.id


async def make_plan(name: str = "Monthly", price: str = "3000", months: int = 1, days: int = 0, active: bool = True) -> int:
    plan = Plan(name=name, price=Decimal(price), duration_months=months, duration_days=days, active=active)
    await plan.save()
    return plan.id


async def make_member(first_name: str = "Wanjiku", last_name: str = "Kamau", phone: str | None = None,
                      number: str | None = None, **extra) -> int:
    n = next(_seq)
    member = Member(
        member_number=number or f"PTF{9000 + n:04d}", first_name=first_name, last_name=last_name,
        phone=phone or f"254712{n:06d}", **extra,
    )
    await member.save()
    return member.id


async def make_members(count: int, start: int = 1) -> None:
    """Bulk insert `count` distinct members (for size tests)."""
    first = ["Achieng", "Kamau", "Njeri", "Otieno", "Wambui", "Kiprono", "Mwende", "Barasa"]
    last = ["Odhiambo", "Mwangi", "Kariuki", "Chebet", "Mutua", "Wekesa", "Omondi", "Maina"]
    rows = [
        Member(member_number=f"PTF{i:05d}", first_name=first[i % 8], last_name=f"{last[(i // 8) % 8]}",
               phone=f"25472{i:07d}")
        for i in range(start, start + count)
    ]
    for offset in range(0, len(rows), 1000):
        await Member.insert(*rows[offset:offset + 1000])


async def make_membership(member_id: int, plan_id: int, start: date, end: date, status: str,
                          price: str = "3000") -> int:
    ms = Membership(member=member_id, plan=plan_id, start_date=start, end_date=end, status=status, price=Decimal(price))
    await ms.save()
    return ms.id
