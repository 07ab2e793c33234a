"""The member search costs the same number of queries at 200 members as at 5,000."""

import pytest

from tests.factories import make_members


async def _queries(client, path: str) -> int:
    r = await client.get(path, htmx=True)
    assert r.status_code == 200
    return int(r.headers["x-query-count"])


@pytest.mark.parametrize("members", [200, 5000])
async def test_search_query_count_is_fixed(alice, members):
    await make_members(members)
    # 3 queries: the session's staff member, the page of rows (memberships joined), the total.
    assert await _queries(alice, "/members") == 3
    assert await _queries(alice, "/members?q=ach") == 3
    assert await _queries(alice, "/members?q=0720&page=2") == 3
    full = await alice.get("/members?q=kamau")
    assert int(full.headers["x-query-count"]) == 3


@pytest.mark.parametrize("payments", [3, 60])
async def test_the_member_page_query_count_is_fixed(alice, payments):
    from tests.billing.helpers import invoice_for, pay
    from tests.factories import make_member

    member = await make_member()
    await invoice_for(member, 3000)
    for _ in range(payments):
        await pay(member, 10)
    r = await alice.get(f"/members/{member}")
    assert r.status_code == 200
    # session, member, balances, invoices, payments, plans, recent messages (with the failure
    # count in the same query), memberships, the desks (for a login with none of its own), recent visits,
    # session packs with sessions left
    assert int(r.headers["x-query-count"]) == 11
