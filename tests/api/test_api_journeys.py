"""The seed's journeys through the API alone, over real HTTP: the portal served on this loop, the
real worker, the gateway sandbox answering M-Pesa prompts and calling back. Nothing here touches
the database except to make a plan (plans are not made through the API) and to count rows."""

from __future__ import annotations

import asyncio

import httpx
import pytest_asyncio

from portal.api import keys
from tables.billing import Payment
from tests.factories import make_plan
from tests.support.live import PHONES


@pytest_asyncio.fixture
async def client(live):
    _, key = await keys.create_key("Members' app", ["read", "members", "payments"], None, None)
    async with httpx.AsyncClient(base_url=live.portal + "/api/v1", headers={"authorization": f"Bearer {key}"},
                                 timeout=30) as c:
        yield c


async def _until(client, path: str, done, timeout: float = 30) -> httpx.Response:
    for _ in range(int(timeout / 0.1)):
        r = await client.get(path)
        if done(r):
            return r
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never got there: {r.status_code} {r.text[:300]}")


async def _member_on_a_plan(client) -> tuple[int, dict]:
    r = await client.post("/members", json={"first_name": "Achieng", "last_name": "Otieno", "phone": "0711 000 111"})
    assert r.status_code == 201, r.text
    member = r.json()["id"]
    plan = await make_plan("Monthly", "3000", months=1)
    r = await client.post(f"/members/{member}/memberships", json={"plan_id": plan})
    assert r.status_code == 201, r.text
    enrolled = r.json()
    assert enrolled["membership"]["status"] == "unpaid" and enrolled["membership"]["plan_id"] == plan
    invoice = enrolled["invoice"]
    assert invoice["balance"] == {"amount": "3000.00", "currency": "KES"} and invoice["status"] == "open"
    dues = (await client.get("/dues", params={"limit": 100})).json()["items"]
    assert [d["invoice_id"] for d in dues] == [invoice["id"]]
    return member, invoice


async def _after_paying(client, member: int, invoice: dict, payment: int) -> None:
    history = (await client.get(f"/members/{member}/payments")).json()["items"]
    assert [(p["id"], p["status"]) for p in history] == [(payment, "completed")]
    assert (await client.get("/dues", params={"limit": 100})).json()["items"] == []
    detail = (await client.get(f"/invoices/{invoice['id']}")).json()
    assert detail["invoice"]["status"] == "paid" and detail["invoice"]["balance"]["amount"] == "0.00"
    assert [(a["payment_id"], a["amount"]["amount"]) for a in detail["allocations"]] == [(payment, "3000.00")]
    (membership,) = (await client.get(f"/members/{member}/memberships")).json()
    assert membership["status"] == "active"
    receipt = await _until(client, f"/payments/{payment}/receipt", lambda r: r.status_code != 202)
    assert receipt.status_code == 200 and receipt.headers["content-type"] == "application/pdf"
    assert receipt.content.startswith(b"%PDF")


async def test_mpesa_journey_through_the_api_alone(live, worker, client):
    member, invoice = await _member_on_a_plan(client)
    r = await client.post("/payments", json={"member_id": member, "method": "mpesa", "amount": "3000",
                                             "phone": "0" + PHONES["success"][3:], "invoice_id": invoice["id"]})
    assert r.status_code == 201, r.text
    started = r.json()["payment"]
    assert started["status"] == "pending" and started["in_flight"] and started["method"] == "mpesa"
    assert (await client.get(f"/payments/{started['id']}/receipt")).status_code == 409  # nothing to print yet
    done = (await _until(client, f"/payments/{started['id']}/status", lambda r: not r.json()["in_flight"])).json()
    assert done["status"] == "completed" and done["receipt_number"].startswith("RCP-")
    assert done["amount"] == {"amount": "3000.00", "currency": "KES"} and len(done["reference"]) == 10
    # Asking the gateway again about a settled payment changes nothing.
    again = await client.post(f"/payments/{started['id']}/verify")
    assert again.status_code == 200 and again.json()["status"] == "completed"
    await _after_paying(client, member, invoice, started["id"])


async def test_cash_journey_with_an_idempotency_key_sent_twice(live, worker, client):
    member, invoice = await _member_on_a_plan(client)
    body = {"member_id": member, "method": "cash", "amount": "3000.00", "invoice_id": invoice["id"]}
    headers = {"Idempotency-Key": "till-3-sale-0001"}
    first = await client.post("/payments", json=body, headers=headers)
    again = await client.post("/payments", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    payment = first.json()["payment"]
    assert payment["status"] == "completed" and payment["receipt_number"].startswith("RCP-")
    assert await Payment.count() == 1  # one payment, not two
    changed = await client.post("/payments", json={**body, "amount": "2000.00"}, headers=headers)
    assert changed.status_code == 422 and changed.json()["errors"][0]["name"] == "Idempotency-Key"
    assert await Payment.count() == 1
    status = (await client.get(f"/payments/{payment['id']}/status")).json()
    assert status["status"] == "completed" and not status["in_flight"]
    await _after_paying(client, member, invoice, payment["id"])


async def test_the_same_key_sent_twice_at_once_records_one_payment(live, worker, client):
    member, invoice = await _member_on_a_plan(client)
    body = {"member_id": member, "method": "cash", "amount": "500"}
    headers = {"Idempotency-Key": "double-tap"}
    a, b = await asyncio.gather(client.post("/payments", json=body, headers=headers),
                                client.post("/payments", json=body, headers=headers))
    assert a.status_code == b.status_code == 201 and a.json() == b.json()
    assert await Payment.count() == 1


async def test_verify_asks_mpesa_when_no_callback_comes(live, worker, client):
    """The sandbox's no_callback phone: paid, but only an STK query tells. The worker's own first
    query is 15 s after the push; the API's verify asks now."""
    member, invoice = await _member_on_a_plan(client)
    r = await client.post("/payments", json={"member_id": member, "method": "mpesa", "amount": "3000",
                                             "phone": PHONES["no_callback"]})
    pid = r.json()["payment"]["id"]
    await _until(client, f"/payments/{pid}/status", lambda r: r.json()["status"] == "processing")
    started = asyncio.get_running_loop().time()
    for _ in range(50):
        verified = await client.post(f"/payments/{pid}/verify")
        assert verified.status_code == 200, verified.text
        if not verified.json()["in_flight"]:
            break
        await asyncio.sleep(0.2)
    assert verified.json()["status"] == "completed"
    assert asyncio.get_running_loop().time() - started < 12  # the verify's query, not the worker's
    await _after_paying(client, member, invoice, pid)
