"""Payments through the API over real HTTP: the desk's rules (limits, large amounts, references,
which desk takes the cash) as problem+json naming the field, the card link and asking Flutterwave
(the sandbox) about it, refunds by each rail, and location keys. The M-Pesa and cash journeys
are in test_api_journeys.py."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from portal.api import keys
from portal.settings import get_settings
from tables.audit import AuditLog
from tables.billing import CreditNote, Invoice, Payment
from tests.billing.helpers import assert_books_agree, invoice_for, pay
from tests.factories import make_location, make_member
from tests.support.servers import free_port


def _problem(r, status: int, field: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert field in [e["name"] for e in body.get("errors", [])], body
    return body


@pytest.fixture
async def payer(api):
    async with api.client(await api.key("read", "payments")) as client:
        yield client


async def test_desk_rules_answer_problem_json_naming_the_field(payer):
    member = await make_member()
    cash = {"member_id": member, "method": "cash", "amount": "1000"}
    body = _problem(await payer.post("/api/v1/payments", json={**cash, "method": "bank"}), 422, "reference")
    assert "bank reference" in body["detail"]
    _problem(await payer.post("/api/v1/payments", json={**cash, "method": "cheque", "reference": " "}), 422, "reference")
    _problem(await payer.post("/api/v1/payments", json={**cash, "amount": "0"}), 422, "amount")
    _problem(await payer.post("/api/v1/payments", json={**cash, "amount": "ten"}), 422, "amount")
    _problem(await payer.post("/api/v1/payments", json={**cash, "amount": 1000}), 400, "amount")  # never a number
    _problem(await payer.post("/api/v1/payments", json={**cash, "method": "bitcoin"}), 422, "method")
    assert "limited to" in _problem(await payer.post("/api/v1/payments", json={**cash, "amount": "150000"}),
                                    422, "amount")["detail"]  # CASH_MAX_AMOUNT
    _problem(await payer.post("/api/v1/payments", json={**cash, "member_id": 999999}), 422, "member_id")
    _problem(await payer.post("/api/v1/payments", json={**cash, "method": "mpesa"}), 422, "phone")
    _problem(await payer.post("/api/v1/payments", json={**cash, "method": "mpesa", "phone": "0712345678",
                                                        "amount": "10.50"}), 422, "amount")  # whole shillings
    other = await make_member("Other", "Member", phone="254711000099")
    theirs = await invoice_for(other, 1000)
    _problem(await payer.post("/api/v1/payments", json={**cash, "invoice_id": theirs["id"]}), 422, "invoice_id")
    assert await Payment.count() == 0


async def test_a_large_amount_is_recorded_once_confirmed(payer):
    member = await make_member()
    body = {"member_id": member, "method": "cash", "amount": "60000.00"}  # above LARGE_AMOUNT_CONFIRM
    assert "confirm" in _problem(await payer.post("/api/v1/payments", json=body), 422, "confirmed")["detail"]
    assert await Payment.count() == 0
    r = await payer.post("/api/v1/payments", json={**body, "confirmed": True})
    assert r.status_code == 201 and r.json()["payment"]["amount"] == {"amount": "60000.00", "currency": "KES"}


async def test_cash_belongs_to_a_desk(api, payer):
    west, east = await make_location("WST", "Westlands"), await make_location("KLM", "Kilimani")
    member = await make_member()
    body = {"member_id": member, "method": "cash", "amount": "100"}
    assert "desk" in _problem(await payer.post("/api/v1/payments", json=body), 422, "location_id")["detail"]
    _problem(await payer.post("/api/v1/payments", json={**body, "location_id": 999999}), 422, "location_id")
    _problem(await payer.post("/api/v1/payments", json={**body, "location_id": 2**31}), 400, "location_id")
    r = await payer.post("/api/v1/payments", json={**body, "location_id": east})
    assert r.status_code == 201, r.text
    assert (await Payment.select(Payment.location).where(Payment.id == r.json()["payment"]["id"]).first())["location"] == east
    # A key made for one location takes money at that desk, whatever the body says.
    async with api.client(await api.key("read", "payments", location=west)) as desk:
        r = await desk.post("/api/v1/payments", json={**body, "location_id": east})
        assert r.status_code == 201, r.text
        mine = r.json()["payment"]["id"]
        assert (await Payment.select(Payment.location).where(Payment.id == mine).first())["location"] == west
        # ... and sees nothing of another desk's payments.
        elsewhere = (await Payment.select(Payment.id).where(Payment.location == east).first())["id"]
        assert (await desk.get(f"/api/v1/payments/{elsewhere}/status")).status_code == 404
        assert (await desk.post(f"/api/v1/payments/{elsewhere}/refund", json={"reason": "x"})).status_code == 404
        assert (await desk.get(f"/api/v1/payments/{mine}/status")).status_code == 200


async def test_payment_writes_need_the_payments_scope_and_are_audited_with_the_key(api):
    member = await make_member()
    body = {"member_id": member, "method": "cash", "amount": "100"}
    for scopes in (("read",), ("members",)):
        async with api.client(await api.key(*scopes)) as c:
            assert (await c.post("/api/v1/payments", json=body)).status_code == 403
    async with api.client(await api.key("payments", name="Till 3")) as c:
        r = await c.post("/api/v1/payments", json=body)
    assert r.status_code == 201
    row = await AuditLog.select(AuditLog.details).where(
        (AuditLog.action == "payment.completed") & (AuditLog.entity_id == str(r.json()["payment"]["id"]))).first()
    assert json.loads(row["details"])["api_key"]["name"] == "Till 3"


async def test_desk_refund_part_then_the_rest_with_reasons(payer):
    member = await make_member()
    inv = await invoice_for(member, 3000)
    pid = (await pay(member, 3000, invoice_id=inv["id"])).payment["id"]
    _problem(await payer.post(f"/api/v1/payments/{pid}/refund", json={"reason": "  "}), 422, "reason")
    _problem(await payer.post(f"/api/v1/payments/{pid}/refund", json={"reason": "x", "amount": "5000"}), 422, "amount")
    _problem(await payer.post(f"/api/v1/payments/{pid}/refund", json={"reason": "x", "amount": "lots"}), 422, "amount")
    _problem(await payer.post(f"/api/v1/payments/{pid}/refund", json={"amount": "1"}), 400, "reason")
    r = await payer.post(f"/api/v1/payments/{pid}/refund", json={"reason": "Charged twice", "amount": "1000.00"},
                         headers={"Idempotency-Key": "refund-1"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["rail"] == "desk" and out["done"] and out["credit_note"].startswith("CRN-")
    assert out["payment"]["status"] == "partially_refunded" and out["payment"]["refunded"]["amount"] == "1000.00"
    again = await payer.post(f"/api/v1/payments/{pid}/refund", json={"reason": "Charged twice", "amount": "1000.00"},
                             headers={"Idempotency-Key": "refund-1"})
    assert again.json() == out and again.headers["idempotent-replayed"] == "true"
    assert await CreditNote.count() == 1  # refunded once
    rest = await payer.post(f"/api/v1/payments/{pid}/refund", json={"reason": "Left the gym"})
    assert rest.json()["payment"]["status"] == "refunded" and rest.json()["payment"]["refunded"]["amount"] == "3000.00"
    assert (await Invoice.select(Invoice.status).where(Invoice.id == inv["id"]).first())["status"] == "open"
    assert (await payer.post(f"/api/v1/payments/{pid}/refund", json={"reason": "again"})).status_code == 422
    assert (await payer.post("/api/v1/payments/999999/refund", json={"reason": "x"})).status_code == 404
    await assert_books_agree()


async def _card_client(card_live, *scopes):
    _, key = await keys.create_key("Kiosk", list(scopes), None, None)
    return httpx.AsyncClient(base_url=card_live.portal + "/api/v1", headers={"authorization": f"Bearer {key}"}, timeout=30)


async def test_card_link_then_verify_asks_flutterwave(card_live, worker):
    member = await make_member()
    inv = await invoice_for(member, 3000)
    async with await _card_client(card_live, "read", "payments") as c:
        r = await c.post("/payments", json={"member_id": member, "method": "card", "amount": "3000",
                                            "invoice_id": inv["id"]})
        assert r.status_code == 201, r.text
        started = r.json()
        assert started["checkout_url"].startswith(card_live.sandbox + "/checkout/")
        pid = started["payment"]["id"]
        assert started["payment"]["status"] == "processing" and started["payment"]["in_flight"]
        waiting = await c.post(f"/payments/{pid}/verify")
        assert waiting.status_code == 200 and waiting.json()["status"] == "processing"
        tx_ref = (await Payment.select(Payment.gateway_request).where(Payment.id == pid).first())["gateway_request"]
        async with httpx.AsyncClient() as http:  # paid, but neither redirect nor webhook comes back
            done = await http.post(f"{card_live.sandbox}/_sandbox/flutterwave/complete",
                                   json={"tx_ref": tx_ref, "card": "success", "scenario": "none"})
            assert done.status_code < 300, done.text
        assert (await c.get(f"/payments/{pid}/status")).json()["status"] == "processing"
        verified = await c.post(f"/payments/{pid}/verify")
        assert verified.status_code == 200 and verified.json()["status"] == "completed"
        assert verified.json()["receipt_number"].startswith("RCP-")
        # Part of it back through Flutterwave: asked for now, posted when Flutterwave accepts.
        r = await c.post(f"/payments/{pid}/refund", json={"reason": "Wrong plan", "amount": "1000"})
        assert r.status_code == 200, r.text
        assert r.json()["rail"] == "card" and r.json()["done"] is False
        for _ in range(300):
            status = (await c.get(f"/payments/{pid}/status")).json()
            if status["status"] == "partially_refunded":
                break
            await asyncio.sleep(0.05)
        assert status["status"] == "partially_refunded" and status["refunded"]["amount"] == "1000.00"
    await assert_books_agree()


async def test_mpesa_is_reversed_whole_and_an_unfinished_payment_is_not_refunded(payer):
    member = await make_member()
    payment = Payment(member=member, method="mpesa", amount=3000, currency="KES", status="processing",
                      idempotency_key="stk-x", phone="254700000001")
    await payment.save()
    r = await payer.post(f"/api/v1/payments/{payment.id}/refund", json={"reason": "x", "amount": "3000"})
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    assert "completed" in r.json()["detail"]
    _problem(await payer.post(f"/api/v1/payments/{payment.id}/refund", json={"reason": "x", "amount": "1000"}),
             422, "amount")  # M-Pesa reverses whole payments only
    assert (await payer.get(f"/api/v1/payments/{payment.id}/receipt")).status_code == 409


async def test_a_card_link_flutterwave_cannot_give_is_503_and_records_nothing(payer, monkeypatch):
    """Flutterwave does not answer (nothing listens at its address), so there is no link to give."""
    monkeypatch.setenv("FLUTTERWAVE_BASE_URL", f"http://127.0.0.1:{free_port()}/v3")
    get_settings.cache_clear()
    member = await make_member()
    theirs = await invoice_for(await make_member("Other", "Member", phone="254711000099"), 1000)
    try:
        # The rule of every rail, before Flutterwave is asked: only this member's open invoice.
        _problem(await payer.post("/api/v1/payments", json={"member_id": member, "method": "card", "amount": "3000",
                                                            "invoice_id": theirs["id"]}), 422, "invoice_id")
        r = await payer.post("/api/v1/payments", json={"member_id": member, "method": "card", "amount": "3000"})
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"] and "try again" in r.json()["detail"]
    assert await Payment.count() == 0
