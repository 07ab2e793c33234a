"""Each /api/v1 endpoint over real HTTP: what it answers, its errors as problem+json naming the
field, cursor paging, money as decimal strings, and Idempotency-Key on POST."""

from datetime import timedelta
from decimal import Decimal

from portal.lib.clock import today
from tables.billing import Invoice
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member, make_members, make_membership, make_plan


async def _overdue(member: int, amount, days: int) -> dict:
    inv = await invoice_for(member, amount)
    await Invoice.update({Invoice.due_date: today() - timedelta(days=days)}).where(Invoice.id == inv["id"])
    return inv


def _problem(r, status: int, field: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert field in [e["name"] for e in body.get("errors", [])], body
    return body


async def _all_pages(client, path: str, limit: int) -> list[dict]:
    items, cursor, pages = [], None, 0
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        r = await client.get(path, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_members_list_search_and_detail(reader):
    a = await make_member("Achieng", "Ng'ang'a", phone="254711000001")
    b = await make_member("Otieno", "Kamau", phone="254711000002")
    r = await reader.get("/api/v1/members")
    assert [m["id"] for m in r.json()["items"]] == [b, a]  # newest first
    r = await reader.get("/api/v1/members", params={"q": "nganga"})  # the page's folding search
    assert [m["id"] for m in r.json()["items"]] == [a]
    r = await reader.get(f"/api/v1/members/{b}")
    assert r.status_code == 200
    assert r.json()["last_name"] == "Kamau" and r.json()["phone"] == "254711000002" and r.json()["on_hold"] is False
    _problem(await reader.get("/api/v1/members", params={"limit": "ten"}), 400, "limit")
    _problem(await reader.get("/api/v1/members", params={"limit": 1000}), 400, "limit")
    _problem(await reader.get("/api/v1/members", params={"cursor": "garbage!"}), 400, "cursor")
    r = await reader.get("/api/v1/members/999999")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


async def test_member_cursor_paging_is_stable_while_members_are_added(reader):
    await make_members(23)
    first = await reader.get("/api/v1/members", params={"limit": 10})
    cursor = first.json()["next_cursor"]
    await make_member("New", "Arrival")  # a member added between pages shifts nothing
    rest = await _all_pages_from(reader, "/api/v1/members", 10, cursor)
    ids = [m["id"] for m in first.json()["items"]] + [m["id"] for m in rest]
    assert len(ids) == 23 and len(set(ids)) == 23 and ids == sorted(ids, reverse=True)


async def _all_pages_from(client, path, limit, cursor):
    items = []
    while cursor:
        page = (await client.get(path, params={"limit": limit, "cursor": cursor})).json()
        items += page["items"]
        cursor = page["next_cursor"]
    return items


async def test_create_and_update_member_with_field_errors(writer):
    body = _problem(await writer.post("/api/v1/members", json={"first_name": "", "last_name": "Otieno", "phone": "12"}),
                    422, "first_name")
    assert "phone" in [e["name"] for e in body["errors"]]
    _problem(await writer.post("/api/v1/members", json={"first_name": 5}), 400, "first_name")
    r = await writer.post("/api/v1/members", json={"first_name": "Achieng", "last_name": "Otieno", "phone": "0712 345 678"})
    assert r.status_code == 201
    member = r.json()
    assert member["phone"] == "254712345678" and member["member_number"]
    r = await writer.patch(f"/api/v1/members/{member['id']}", json={"email": "achieng@example.com"})
    assert r.status_code == 200 and r.json()["email"] == "achieng@example.com" and r.json()["last_name"] == "Otieno"
    _problem(await writer.patch(f"/api/v1/members/{member['id']}", json={"email": "not an address"}), 422, "email")
    assert (await writer.patch("/api/v1/members/999999", json={"email": "a@b.co"})).status_code == 404


async def test_idempotency_key_repeat_returns_the_first_answer_and_a_new_body_is_refused(writer):
    body = {"first_name": "Achieng", "last_name": "Otieno", "phone": "0712345678"}
    headers = {"Idempotency-Key": "create-achieng-1"}
    first = await writer.post("/api/v1/members", json=body, headers=headers)
    again = await writer.post("/api/v1/members", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    listed = (await writer.get("/api/v1/members", params={"q": "achieng"})).json()["items"]
    assert len(listed) == 1  # one member, not two
    other = await writer.post("/api/v1/members", json={**body, "first_name": "Akinyi"}, headers=headers)
    assert "different body" in _problem(other, 422, "Idempotency-Key")["detail"]
    # Without the header every POST is a new write.
    assert (await writer.post("/api/v1/members", json=body)).json()["id"] != first.json()["id"]


async def test_idempotency_keys_are_per_api_key(api):
    body = {"first_name": "Achieng", "last_name": "Otieno", "phone": "0712345678"}
    headers = {"Idempotency-Key": "same-key"}
    async with api.client(await api.key("members")) as one, api.client(await api.key("members")) as two:
        a = await one.post("/api/v1/members", json=body, headers=headers)
        b = await two.post("/api/v1/members", json={**body, "first_name": "Akinyi"}, headers=headers)
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]


async def test_plans_money_is_a_decimal_string_with_currency(reader):
    plan = await make_plan("Annual", "30000.50", months=12)
    r = await reader.get("/api/v1/plans")
    (row,) = [p for p in r.json() if p["id"] == plan]
    assert row["price"] == {"amount": "30000.50", "currency": "KES"} and row["duration_months"] == 12


async def test_payments_list_filters_detail_and_member_history(reader):
    a = await make_member("Achieng", "Otieno", phone="254711000001")
    b = await make_member("Barasa", "Wekesa", phone="254711000002")
    await invoice_for(a, 3000)
    await invoice_for(b, 3000)
    p1 = await pay(a, "1000.50")
    p2 = await pay(b, 2000, method="bank", reference="BANKREF1")
    r = await reader.get("/api/v1/payments")
    items = r.json()["items"]
    assert [p["member_id"] for p in items] == [b, a]
    assert items[1]["amount"] == {"amount": "1000.50", "currency": "KES"}
    assert [p["method"] for p in (await reader.get("/api/v1/payments", params={"method": "bank"})).json()["items"]] == ["bank"]
    assert [p["member_id"] for p in (await reader.get("/api/v1/payments", params={"q": "otieno"})).json()["items"]] == [a]
    _problem(await reader.get("/api/v1/payments", params={"date_from": "30/11/2026"}), 400, "date_from")
    pid = items[0]["id"]
    detail = (await reader.get(f"/api/v1/payments/{pid}")).json()
    assert detail["payment"]["reference"] == "BANKREF1" and detail["payment"]["status"] == "completed"
    assert detail["events"] and detail["events"][-1]["new_status"] == "completed"
    assert (await reader.get("/api/v1/payments/999999")).status_code == 404
    history = (await reader.get(f"/api/v1/members/{a}/payments")).json()["items"]
    assert [p["member_id"] for p in history] == [a]
    assert (await reader.get("/api/v1/members/999999/payments")).status_code == 404
    assert p1 and p2


async def test_payments_cursor_pages_cover_every_payment_once(reader):
    member = await make_member()
    await invoice_for(member, 100000)
    for _ in range(7):
        await pay(member, 10)
    items = await _all_pages(reader, "/api/v1/payments", 3)
    ids = [p["id"] for p in items]
    assert len(ids) == 7 and ids == sorted(set(ids), reverse=True)


async def test_a_key_for_one_location_sees_its_payments_only(api):
    from tables.billing import Payment
    from tests.factories import make_location

    west = await make_location("WST", "Westlands")
    member = await make_member()
    await invoice_for(member, 5000)
    here, there = (await pay(member, 10)).payment["id"], (await pay(member, 20)).payment["id"]  # at the one desk
    east = await make_location("KLM", "Kilimani")
    await Payment.update({Payment.location: west}).where(Payment.id == here)
    await Payment.update({Payment.location: east}).where(Payment.id == there)
    async with api.client(await api.key("read", location=west)) as c:
        assert [p["id"] for p in (await c.get("/api/v1/payments")).json()["items"]] == [here]
        assert (await c.get(f"/api/v1/payments/{there}")).status_code == 404


async def test_dues_renewals_and_access_status(reader):
    late = await make_member("Otieno", "Late", phone="254711000001")
    ok = await make_member("Wanjiku", "Fine", phone="254711000002")
    inv = await _overdue(late, 3000, 20)
    await _overdue(ok, 3000, 3)
    plan = await make_plan()
    await make_membership(late, plan, today() - timedelta(days=25), today() + timedelta(days=5), "active")
    await make_membership(ok, plan, today() - timedelta(days=25), today() + timedelta(days=5), "active")

    dues = (await reader.get("/api/v1/dues")).json()["items"]
    assert [(d["member_id"], d["on_hold"], d["owed"]["amount"]) for d in dues] == [(late, True, "3000.00"), (ok, False, "3000.00")]
    assert [d["member_id"] for d in (await reader.get("/api/v1/dues", params={"q": "fine"})).json()["items"]] == [ok]
    _problem(await reader.get("/api/v1/dues", params={"urgency": "soon"}), 422, "urgency")
    paged = await _all_pages(reader, "/api/v1/dues", 1)
    assert [d["invoice_id"] for d in paged] == [d["invoice_id"] for d in dues]

    renewals = (await reader.get("/api/v1/renewals")).json()["items"]
    assert sorted(r["member_id"] for r in renewals) == sorted([late, ok])
    assert renewals[0]["price"] == {"amount": "3000.00", "currency": "KES"}
    _problem(await reader.get("/api/v1/renewals", params={"window": "9"}), 422, "window")

    door = (await reader.get(f"/api/v1/members/{late}/access")).json()
    assert door["allowed"] is False and door["on_hold"] is True and door["hold_invoice"] == inv["number"]
    assert door["reason"].startswith(f"On hold: invoice {inv['number']} is 20 days overdue")
    assert (await reader.get(f"/api/v1/members/{ok}/access")).json()["allowed"] is True
    await pay(late, 3000, invoice_id=inv["id"])  # paying clears the hold, as on the member page
    assert (await reader.get(f"/api/v1/members/{late}/access")).json()["allowed"] is True
    nobody = await make_member("No", "Plan")
    door = (await reader.get(f"/api/v1/members/{nobody}/access")).json()
    assert door["allowed"] is False and door["reason"] == "No membership."
    assert Decimal(dues[0]["total"]["amount"]) == Decimal("3000")


async def test_the_same_idempotency_key_sent_twice_at_once_writes_once(writer):
    import asyncio

    body = {"first_name": "Njeri", "last_name": "Mwangi", "phone": "0722000333"}
    headers = {"Idempotency-Key": "at-once-1"}
    a, b = await asyncio.gather(writer.post("/api/v1/members", json=body, headers=headers),
                                writer.post("/api/v1/members", json=body, headers=headers))
    assert a.status_code == b.status_code == 201 and a.json() == b.json()
    assert len((await writer.get("/api/v1/members", params={"q": "njeri"})).json()["items"]) == 1


async def test_a_refused_write_does_not_use_up_its_idempotency_key(writer):
    headers = {"Idempotency-Key": "fix-and-retry"}
    bad = await writer.post("/api/v1/members", json={"first_name": "Njeri", "last_name": "Mwangi", "phone": "1"}, headers=headers)
    assert bad.status_code == 422
    good = await writer.post("/api/v1/members", json={"first_name": "Njeri", "last_name": "Mwangi", "phone": "0722000333"},
                             headers=headers)
    assert good.status_code == 201


async def test_a_nul_byte_in_a_json_field_is_named_not_a_500(writer):
    r = await writer.post("/api/v1/members", json={"first_name": "Nj\u0000eri", "last_name": "Mwangi", "phone": "0722000333"})
    _problem(r, 422, "first_name")
