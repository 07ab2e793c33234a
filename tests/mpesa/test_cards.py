"""Card payments through the Flutterwave sandbox: redirect and webhook, each verified, credited once."""

import asyncio

import httpx
import pytest

from tables.billing import Payment
from tables.gateway import GatewayCallback, StaffAlert
from tests.billing.helpers import assert_ledger_balanced, invoice_for
from tests.factories import make_member
from tests.mpesa.conftest import wait_for_status


@pytest.fixture
async def card_live(live):
    async with httpx.AsyncClient() as http:
        await http.post(f"{live.sandbox}/_sandbox/flutterwave/reset")
        r = await http.post(f"{live.sandbox}/_sandbox/flutterwave/settings", json={"webhook_url": f"{live.portal}/hooks/flutterwave"})
        assert r.status_code < 300, r.text
    return live


async def _checkout(alice, member: int, amount: str = "3000") -> tuple[int, str, str]:
    r = await alice.post(f"/members/{member}/card", {"amount": amount, "idempotency_key": f"card-{member}"})
    assert r.status_code == 303, r.text
    payment = await Payment.select().where(Payment.method == "card").first()
    assert payment["status"] == "processing"
    return payment["id"], payment["gateway_request"], r.headers["location"]


async def _pay(live, tx_ref: str, card: str = "success", scenario: str = "normal") -> dict:
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{live.sandbox}/_sandbox/flutterwave/complete", json={"tx_ref": tx_ref, "card": card, "scenario": scenario})
        assert r.status_code < 300, r.text
        return r.json()


async def _follow(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(url)


async def test_redirect_and_webhook_are_each_verified_and_credit_once(card_live, alice):
    member = await make_member(email="wanjiku@example.com")
    await invoice_for(member, 3000)
    pid, tx_ref, link = await _checkout(alice, member)
    assert link.startswith(card_live.sandbox + "/checkout/")
    done = await _pay(card_live, tx_ref)
    page = await _follow(done["redirect_url"])
    assert "Thank you" in page.text
    paid = await wait_for_status(pid, {"completed"})
    assert (paid["card_brand"], len(paid["card_last4"])) != ("", 0) and paid["card_last4"].isdigit()
    for _ in range(100):
        if await GatewayCallback.count().where(GatewayCallback.kind == "webhook") >= 1:
            break
        await asyncio.sleep(0.05)
    outcomes = {r["kind"]: r["outcome"] for r in await GatewayCallback.select(GatewayCallback.kind, GatewayCallback.outcome)}
    # Whichever came first credited; the other changed nothing.
    assert sorted([outcomes["redirect"], outcomes["webhook"]]) == ["applied", "duplicate"]
    await assert_ledger_balanced()


async def test_a_webhook_without_a_redirect_credits(card_live, alice):
    member = await make_member()
    await invoice_for(member, 3000)
    pid, tx_ref, _ = await _checkout(alice, member)
    await _pay(card_live, tx_ref)  # the member closes the browser: no redirect comes back
    await wait_for_status(pid, {"completed"})


async def test_a_redirect_without_a_webhook_credits(card_live, alice):
    member = await make_member()
    await invoice_for(member, 3000)
    pid, tx_ref, _ = await _checkout(alice, member)
    done = await _pay(card_live, tx_ref, scenario="none")
    await _follow(done["redirect_url"])
    await wait_for_status(pid, {"completed"})


async def test_both_twice_concurrently_credit_once(card_live, alice):
    member = await make_member()
    await invoice_for(member, 3000)
    pid, tx_ref, _ = await _checkout(alice, member)
    done = await _pay(card_live, tx_ref, scenario="none")
    async with httpx.AsyncClient() as http:
        await asyncio.gather(
            http.get(done["redirect_url"]), http.get(done["redirect_url"]),
            http.post(f"{card_live.sandbox}/_sandbox/flutterwave/transactions/{done['transaction_id']}/webhook", json={"times": 2}))
    await wait_for_status(pid, {"completed"})
    await asyncio.sleep(0.5)
    assert await Payment.count().where(Payment.status == "completed") == 1
    credited = await Payment.select(Payment.amount).where(Payment.id == pid).first()
    assert str(credited["amount"]) == "3000.00"
    await assert_ledger_balanced()


async def test_a_forged_webhook_is_stored_as_rejected_and_credits_nothing(card_live, alice):
    member = await make_member()
    await invoice_for(member, 3000)
    pid, tx_ref, _ = await _checkout(alice, member)
    await _pay(card_live, tx_ref, scenario="wrong_hash")
    for _ in range(100):
        row = await GatewayCallback.select().where(GatewayCallback.kind == "webhook").first()
        if row:
            break
        await asyncio.sleep(0.05)
    assert row["outcome"] == "rejected"
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{card_live.portal}/hooks/flutterwave", content=b'{"event": "charge.completed", "data": {}}')
    assert r.status_code == 200
    assert (await Payment.select(Payment.status).where(Payment.id == pid).first())["status"] == "processing"


async def test_a_tampered_amount_is_credited_as_confirmed_and_flagged(card_live, alice):
    member = await make_member()
    await invoice_for(member, 3000)
    pid, tx_ref, _ = await _checkout(alice, member)
    done = await _pay(card_live, tx_ref, scenario="tampered")
    await _follow(done["redirect_url"])
    paid = await wait_for_status(pid, {"completed"})
    assert str(paid["amount"]) == "300.00" and paid["flag"] == "amount_mismatch"
    assert await StaffAlert.count().where(StaffAlert.kind == "amount_mismatch") == 1


@pytest.mark.parametrize("card, status", [("declined", "failed"), ("insufficient_funds", "failed"), ("cancel", "cancelled")])
async def test_declines_and_cancels_credit_nothing(card_live, alice, card, status):
    member = await make_member()
    await invoice_for(member, 3000)
    pid, tx_ref, _ = await _checkout(alice, member)
    done = await _pay(card_live, tx_ref, card=card, scenario="none")
    page = await _follow(done["redirect_url"])
    assert "not completed" in page.text
    await wait_for_status(pid, {status})
