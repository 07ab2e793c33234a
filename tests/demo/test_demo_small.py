"""The small demo gym (demo.seed, what `make run` loads): its members' phones are kept by the
portal's phone rule as they are, and nearly all can be sent M-Pesa prompts."""

from __future__ import annotations

from collections import Counter

from portal.lib.phones import carrier_of, normalise_phone
from tables.members import Member
from tests.support.env import setting


async def test_demo_members_have_phones_the_desk_can_use(db):
    from demo.seed import load_demo_data

    with setting("DEMO", "1"):
        await load_demo_data(members=60)
    phones = [r["phone"] for r in await Member.select(Member.phone)]
    assert len(phones) == len(set(phones)) == 60
    assert all(normalise_phone(phone) == phone for phone in phones)
    networks = Counter(carrier_of(phone) for phone in phones)
    assert set(networks) <= {"Safaricom", "Airtel"} and networks["Safaricom"] >= 50, networks
