"""Every API list costs the same number of queries at two data sizes (X-Query-Count, which the
middleware sends to staff and to API callers whose key was accepted)."""

from datetime import timedelta

import pytest

from portal.lib.clock import today
from tables.billing import Invoice
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member, make_members, make_membership, make_plan

# Every API request: the key's lookup (which notes "last used" in the same statement) and the
# rate limit's one statement.
AUTH = 2


async def _count(client, path: str, **params) -> int:
    r = await client.get(path, params=params)
    assert r.status_code == 200, r.text
    return int(r.headers["x-query-count"])


async def _data(size: int) -> int:
    await make_members(size)
    plan = await make_plan()
    member = await make_member("Otieno", "Late")
    for _ in range(size // 10):
        inv = await invoice_for(member, 3000)
        await Invoice.update({Invoice.due_date: today() - timedelta(days=20)}).where(Invoice.id == inv["id"])
        await pay(member, 10, invoice_id=inv["id"])
    await make_membership(member, plan, today() - timedelta(days=25), today() + timedelta(days=5), "active")
    return member


@pytest.mark.parametrize("size", [20, 400])
async def test_list_query_counts_are_fixed(reader, size):
    member = await _data(size)
    assert await _count(reader, "/api/v1/members") == AUTH + 1
    assert await _count(reader, "/api/v1/members", q="ach", limit=100) == AUTH + 1
    assert await _count(reader, "/api/v1/plans") == AUTH + 1
    assert await _count(reader, "/api/v1/payments", limit=100) == AUTH + 1
    assert await _count(reader, "/api/v1/payments", q="otieno", method="cash") == AUTH + 1
    # the member's existence, their payments
    assert await _count(reader, f"/api/v1/members/{member}/payments", limit=100) == AUTH + 2
    # the payment (the list's query, one row), its events
    payment = (await reader.get("/api/v1/payments")).json()["items"][0]["id"]
    assert await _count(reader, f"/api/v1/payments/{payment}") == AUTH + 2
    # the report's page and its summary, as on the dues and renewals pages
    assert await _count(reader, "/api/v1/dues", limit=100) == AUTH + 2
    assert await _count(reader, "/api/v1/renewals") == AUTH + 2
    # the member with why they are on hold, their active membership, the check-in rule's standing
    assert await _count(reader, f"/api/v1/members/{member}/access") == AUTH + 3
    # the invoices list is one query, filtered or not
    assert await _count(reader, "/api/v1/invoices", limit=100) == AUTH + 1
    assert await _count(reader, "/api/v1/invoices", member=member, status="partially_paid", limit=100) == AUTH + 1
    # the invoice, its lines, its allocations
    invoice = (await reader.get("/api/v1/invoices", params={"member": member})).json()["items"][0]["id"]
    assert await _count(reader, f"/api/v1/invoices/{invoice}") == AUTH + 3
    # the member's existence, their memberships
    assert await _count(reader, f"/api/v1/members/{member}/memberships") == AUTH + 2
    # the payment, its last status event
    assert await _count(reader, f"/api/v1/payments/{payment}/status") == AUTH + 2
    # the analytics page's seven aggregates
    assert await _count(reader, "/api/v1/analytics") == AUTH + 7


async def test_query_count_is_not_sent_without_an_accepted_key(api):
    async with api.client(None) as c:
        r = await c.get("/api/v1/plans")
    assert r.status_code == 401 and "x-query-count" not in r.headers
