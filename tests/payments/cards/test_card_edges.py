"""Card payments where people and Flutterwave misbehave: a checkout left open, a return URL typed
by hand, a verify that says pending first, more money than asked. Only Flutterwave's verify
answer moves money or status; nothing is left in flight past its checkout time."""

import asyncio
import re

import httpx

from portal.payments.cards.checkout import check_card_payment
from tables.billing import Payment
from tables.gateway import GatewayCallback, StaffAlert
from tasks.cards import sweep_card_checkouts
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_member
from tests.payments.cards.test_cards import _checkout, _pay
from tests.support.live import wait_for_status


async def _resend_webhook(live, transaction_id) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{live.sandbox}/_sandbox/flutterwave/transactions/{transaction_id}/webhook",
                            json={"times": 1})
        assert r.status_code < 300, r.text


async def _status(pid: int) -> str:
    return (await Payment.select(Payment.status).where(Payment.id == pid).first())["status"]


async def _as_if_minutes_passed(pid: int, minutes: int) -> None:
    """Move the payment's clock back (the card check runs on the database's now())."""
    await Payment.raw("UPDATE payment SET created_at = created_at - make_interval(mins => {}), "
                      "expires_at = expires_at - make_interval(mins => {}) WHERE id = {}", minutes, minutes, pid)


async def test_a_return_url_saying_cancelled_moves_nothing(card_live, alice):
    member = await make_member()
    await invoice_for(member, 3000)
    pid, tx_ref, _ = await _checkout(alice, member)
    async with httpx.AsyncClient(base_url=card_live.portal) as anyone:
        r = await anyone.get("/pay/card/return", params={"tx_ref": tx_ref, "status": "cancelled"})
        assert r.status_code == 200
    assert await _status(pid) == "processing"
    # Then the member does pay on the page they still have open: it is credited.
    done = await _pay(card_live, tx_ref, card="success", scenario="none")
    async with httpx.AsyncClient() as phone:
        await phone.get(done["redirect_url"])
    await wait_for_status(pid, {"completed"})


async def test_another_payments_transaction_id_fails_nobody(card_live, alice):
    victim, other = await make_member(), await make_member()
    await invoice_for(victim, 3000)
    await invoice_for(other, 500)
    victim_pid, victim_ref, _ = await _checkout(alice, victim)
    _, other_ref, _ = await _checkout(alice, other, "500")
    paid = await _pay(card_live, other_ref, card="success", scenario="none")
    async with httpx.AsyncClient(base_url=card_live.portal) as anyone:
        await anyone.get("/pay/card/return", params={"status": "successful", "tx_ref": victim_ref,
                                                      "transaction_id": paid["transaction_id"]})
    assert await _status(victim_pid) == "processing"
    assert await StaffAlert.count() == 0
    row = await GatewayCallback.select().where(GatewayCallback.kind == "redirect").first()
    assert row["outcome"] == "rejected" and "not this payment's" in row["note"]


async def test_an_abandoned_checkout_is_checked_then_expired_and_staff_can_check_it(card_live, alice, worker):
    member = await make_member()
    await invoice_for(member, 3000)
    pid, tx_ref, _ = await _checkout(alice, member)
    cancelled = await _pay(card_live, tx_ref, card="cancel")
    async with httpx.AsyncClient() as phone:
        await phone.get(cancelled["redirect_url"])
    assert await _status(pid) == "processing"  # the redirect's word alone moves nothing

    page = await alice.get(f"/payments/{pid}")
    assert 'data-testid="card-check"' in page.text and 'data-testid="card-cancel"' in page.text
    checked = await alice.post(f"/payments/{pid}/card-check")
    assert checked.headers["location"].endswith("notice=card_waiting")
    assert await _status(pid) == "processing"

    await _as_if_minutes_passed(pid, 31)  # past CARD_CHECKOUT_MINUTES (30)
    await sweep_card_checkouts({})
    assert await _status(pid) == "expired"
    assert await sweep_card_checkouts({}) == {"checked": 0}


async def test_a_paid_checkout_nobody_came_back_from_is_credited_by_the_card_check(card_live, alice):
    member = await make_member()
    await invoice_for(member, 3000)
    pid, tx_ref, _ = await _checkout(alice, member)
    await _pay(card_live, tx_ref, card="success", scenario="none")
    await asyncio.sleep(0.3)
    assert await _status(pid) == "processing"  # no redirect, no webhook
    await _as_if_minutes_passed(pid, 6)
    assert await sweep_card_checkouts({}) == {"checked": 1}
    paid = await wait_for_status(pid, {"completed"})
    assert paid["receipt_number"]
    assert await check_card_payment(pid) == "nothing to do"
    await assert_books_agree()


async def test_staff_cancel_a_card_payment_and_a_later_success_is_still_credited(card_live, alice):
    member = await make_member()
    await invoice_for(member, 3000)
    pid, tx_ref, _ = await _checkout(alice, member)
    r = await alice.post(f"/payments/{pid}/card-cancel")
    assert r.headers["location"].endswith("notice=card_cancelled")
    assert await _status(pid) == "cancelled"
    again = await alice.post(f"/payments/{pid}/card-cancel")
    assert again.headers["location"].endswith("notice=card_not_in_flight")
    await _pay(card_live, tx_ref, card="success")  # the webhook comes
    await wait_for_status(pid, {"completed"})
    await assert_books_agree()


async def test_a_webhook_while_verify_says_pending_is_verified_again_when_repeated(card_live, alice):
    member = await make_member()
    await invoice_for(member, 3000)
    pid, tx_ref, _ = await _checkout(alice, member)
    done = await _pay(card_live, tx_ref, card="success", scenario="pending_first")
    for _ in range(400):
        row = await GatewayCallback.select().where(GatewayCallback.kind == "webhook").first()
        if row and row["attempts"]:
            break
        await asyncio.sleep(0.05)
    assert (row["outcome"], row["processed_at"]) == ("stored", None) and "pending" in row["note"]
    assert await _status(pid) == "processing"  # pending is not failed
    await _resend_webhook(card_live, done["transaction_id"])  # settled: sent again
    await wait_for_status(pid, {"completed"})
    row = await GatewayCallback.select().where(GatewayCallback.kind == "webhook").first()
    assert (row["outcome"], row["deliveries"]) == ("applied", 2)
    await assert_books_agree()


async def test_a_card_overpayment_is_credited_and_flagged(card_live, alice):
    member = await make_member()
    await invoice_for(member, 3000)
    pid, tx_ref, _ = await _checkout(alice, member)
    await _pay(card_live, tx_ref, card="success", scenario="overpaid")
    paid = await wait_for_status(pid, {"completed"})
    assert (paid["amount"], paid["flag"]) == (3500, "amount_mismatch")
    alert = await StaffAlert.select().where(StaffAlert.kind == "amount_mismatch").first()
    assert "asked KES 3,000" in alert["message"] and "KES 3,500 credited" in alert["message"]
    page = await alice.get(f"/members/{member}")
    assert re.search(r'data-testid="balance-credit">KES 500<', page.text)
    await assert_books_agree()
