"""Every Daraja STK scenario end to end: front desk asks, the worker pushes, the sandbox answers,
the callback (or the STK query) settles the payment."""

import asyncio
import json

import httpx
import pytest

from tables.billing import Invoice, Payment, PaymentEvent
from tables.gateway import GatewayCallback, StaffAlert
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_member
from tests.support.live import PHONES, wait_for_status


async def _ask(alice, member: int, phone: str, amount: str = "3000") -> int:
    r = await alice.post(f"/members/{member}/mpesa", {"phone": phone, "amount": amount, "idempotency_key": f"k-{phone}"})
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


async def _reason(payment_id: int) -> str:
    event = await PaymentEvent.select().where(PaymentEvent.payment == payment_id).order_by(PaymentEvent.id, ascending=False).first()
    return event["reason"]


async def test_success_completes_settles_and_shows_the_code(live, worker, alice):
    member = await make_member()
    inv = await invoice_for(member, 3000)
    pid = await _ask(alice, member, "0700 000 001")
    paid = await wait_for_status(pid, {"completed"})
    assert paid["reference"] and len(paid["reference"]) == 10 and paid["receipt_number"].startswith("RCP-")
    assert paid["phone"] == PHONES["success"]
    assert (await Invoice.select(Invoice.status).where(Invoice.id == inv["id"]).first())["status"] == "paid"
    status = await alice.get(f"/payments/{pid}/status", htmx=True)
    assert 'data-status="completed"' in status.text and paid["reference"] in status.text
    assert f'hx-get="/payments/{pid}/status' not in status.text  # final: stops polling
    live_poll = await alice.get(f"/payments/{pid}/status?live=1", htmx=True)
    assert live_poll.headers.get("hx-refresh") == "true"  # the page showing "waiting" reloads once
    events = await PaymentEvent.select().where(PaymentEvent.payment == pid).order_by(PaymentEvent.id)
    assert [(e["old_status"], e["new_status"]) for e in events][:3] == [("", "pending"), ("pending", "processing"), ("processing", "completed")]
    assert events[2]["gateway_event"].startswith("callback:")
    await assert_books_agree()


@pytest.mark.parametrize("scenario, status, words", [
    ("cancelled", "cancelled", "Cancelled by the member on the phone"),
    ("timeout", "failed", "No answer on the phone in time"),
    ("wrong_pin", "failed", "Wrong M-Pesa PIN entered"),
    ("insufficient", "failed", "Not enough money in the member's M-Pesa"),
])
async def test_failures_are_final_in_plain_words(live, worker, alice, scenario, status, words):
    member = await make_member()
    await invoice_for(member, 3000)
    pid = await _ask(alice, member, PHONES[scenario])
    await wait_for_status(pid, {status})
    assert await _reason(pid) == words
    page = await alice.get(f"/payments/{pid}/status", htmx=True)
    assert words in page.text.replace("&#39;", "'") and 'data-testid="retry"' in page.text
    owed = await Invoice.select(Invoice.status).first()
    assert owed["status"] == "open"


async def test_retry_asks_once_however_often_it_is_pressed(live, worker, alice):
    member = await make_member()
    await invoice_for(member, 3000)
    pid = await _ask(alice, member, PHONES["cancelled"])
    await wait_for_status(pid, {"cancelled"})
    r1, r2 = await asyncio.gather(alice.post(f"/payments/{pid}/retry"), alice.post(f"/payments/{pid}/retry"))
    assert r1.headers["location"] == r2.headers["location"] != f"/payments/{pid}"
    assert await Payment.count() == 2


async def test_a_callback_delivered_twice_credits_once(live, worker, alice):
    member = await make_member()
    await invoice_for(member, 3000)
    pid = await _ask(alice, member, PHONES["twice"])
    await wait_for_status(pid, {"completed"})
    for _ in range(400):
        cb = await GatewayCallback.select().where(GatewayCallback.payment == pid).first()
        if cb and cb["deliveries"] == 2:
            break
        await asyncio.sleep(0.05)
    assert cb["deliveries"] == 2
    assert await PaymentEvent.count().where((PaymentEvent.payment == pid) & (PaymentEvent.new_status == "completed")
                                            & (PaymentEvent.old_status == "processing")) == 1
    await assert_books_agree()


async def test_a_callback_before_the_push_response_is_still_applied(live, worker, alice):
    member = await make_member()
    await invoice_for(member, 3000)
    pid = await _ask(alice, member, PHONES["callback_first"])
    paid = await wait_for_status(pid, {"completed"})
    assert paid["gateway_ref"]


async def test_no_callback_is_settled_by_the_stk_query(live, worker, alice, queue):
    member = await make_member()
    await invoice_for(member, 3000)
    pid = await _ask(alice, member, PHONES["no_callback"])
    await wait_for_status(pid, {"processing"})
    assert await queue.apply("check_stk", payment_id=pid, timeout=30) == "final"
    paid = await wait_for_status(pid, {"completed"})
    assert (await PaymentEvent.select().where((PaymentEvent.payment == pid) & (PaymentEvent.new_status == "completed")).first())[
        "gateway_event"].startswith("stk_query:")
    assert paid["receipt_number"]


async def test_an_unanswered_prompt_expires_and_a_late_success_is_still_credited(live, worker, alice, queue):
    member = await make_member()
    await invoice_for(member, 3000)
    pid = await _ask(alice, member, PHONES["interactive"])
    processing = await wait_for_status(pid, {"processing"})
    # Time passes: the prompt's time is up and the sweeper gives up on it.
    await Payment.update({Payment.expires_at: processing["created_at"]}).where(Payment.id == pid)
    await queue.apply("sweep_mpesa", timeout=30)
    await wait_for_status(pid, {"expired"})
    # ...and then the member pays after all (the sandbox's phone accepts it late).
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{live.sandbox}/_sandbox/daraja/stk/{processing['gateway_ref']}/accept", json={"pin": "1234"})
        assert r.status_code < 300, r.text
    paid = await wait_for_status(pid, {"completed"})
    assert paid["flag"] == "late_success"
    alert = await StaffAlert.select().where(StaffAlert.payment == pid).first()
    assert alert["kind"] == "late_success"
    await assert_books_agree()


async def test_the_money_received_is_what_is_credited_and_a_difference_is_flagged(live, worker, alice):
    member = await make_member()
    inv = await invoice_for(member, 3000)
    pid = await _ask(alice, member, PHONES["no_callback"])
    payment = await wait_for_status(pid, {"processing"})
    body = {"Body": {"stkCallback": {
        "MerchantRequestID": payment["gateway_request"], "CheckoutRequestID": payment["gateway_ref"], "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.", "CallbackMetadata": {"Item": [
            {"Name": "Amount", "Value": 2500.00}, {"Name": "MpesaReceiptNumber", "Value": "TK3AB1CD2E"},
            {"Name": "Balance"}, {"Name": "TransactionDate", "Value": 20261126101500},
            {"Name": "PhoneNumber", "Value": 254700000009}]}}}}
    async with httpx.AsyncClient() as http:
        r = await http.post(live.hook(), content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    paid = await wait_for_status(pid, {"completed"})
    assert (str(paid["amount"]), paid["flag"], paid["reference"]) == ("2500.00", "amount_mismatch", "TK3AB1CD2E")
    assert (await Invoice.select(Invoice.paid).where(Invoice.id == inv["id"]).first())["paid"] == paid["amount"]
    assert await StaffAlert.count().where(StaffAlert.kind == "amount_mismatch") == 1


async def test_receipts_follow_an_mpesa_payment(live, worker, alice):
    from tests.documents.test_documents_job import _wait_for

    member = await make_member()
    await invoice_for(member, 3000)
    pid = await _ask(alice, member, PHONES["success"])
    await wait_for_status(pid, {"completed"})
    await _wait_for("receipt", f"payment:{pid}")


async def test_a_late_callback_still_completes_the_payment(live, worker, alice):
    """The sandbox's 'late callback' scenario: the result arrives seconds after the push."""
    member = await make_member()
    await invoice_for(member, 3000)
    pid = await _ask(alice, member, PHONES["late"])
    await wait_for_status(pid, {"processing"})
    page = await alice.get(f"/payments/{pid}/status", htmx=True)
    assert "enter their M-Pesa PIN" in page.text and f'hx-get="/payments/{pid}/status?live=1"' in page.text
    paid = await wait_for_status(pid, {"completed"}, timeout=30)
    assert paid["reference"]


async def test_a_refusal_from_daraja_is_shown_in_its_own_words(live, worker, alice):
    """A second prompt to a phone whose first is still open: Daraja answers 500.001.1001 "Unable to
    lock subscriber". Nothing reached the phone, and staff read what M-Pesa said."""
    first, second = await make_member(), await make_member()
    await wait_for_status(await _ask(alice, first, PHONES["interactive"]), {"processing"})
    r = await alice.post(f"/members/{second}/mpesa", {"phone": PHONES["interactive"], "amount": "500",
                                                      "idempotency_key": "k-second"})
    pid = int(r.headers["location"].rsplit("/", 1)[1])
    await wait_for_status(pid, {"failed"})
    reason = await _reason(pid)
    assert reason.startswith("M-Pesa refused the request: Unable to lock subscriber") and "(500.001.1001)" in reason
    assert "wait a minute, then retry" in reason and "may still reach the phone" not in reason
    page = await alice.get(f"/payments/{pid}/status", htmx=True)
    assert "Unable to lock subscriber" in page.text and 'data-testid="retry"' in page.text


def _success_body(checkout: str, amount: str, receipt: str, phone: str) -> dict:
    return {"Body": {"stkCallback": {
        "MerchantRequestID": "29115-34620561-1", "CheckoutRequestID": checkout, "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.", "CallbackMetadata": {"Item": [
            {"Name": "Amount", "Value": int(amount)}, {"Name": "MpesaReceiptNumber", "Value": receipt},
            {"Name": "Balance"}, {"Name": "TransactionDate", "Value": 20261207101500},
            {"Name": "PhoneNumber", "Value": int(phone)}]}}}}


async def test_a_prompt_answered_after_our_timeout_is_credited_to_its_attempt(live, worker, alice, monkeypatch):
    """Daraja answers the push after the portal stopped waiting; the prompt reached the phone and
    the member paid. The result names a CheckoutRequestID the portal never learnt: it is tied to
    the attempt by phone and amount, at once, and credited once."""
    monkeypatch.setenv("GATEWAY_TIMEOUT_SECONDS", "1")
    __import__("portal.settings").settings.get_settings.cache_clear()
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{live.sandbox}/_sandbox/daraja/settings", json={"slow_response_delay": 2.5})
        assert r.status_code < 300, r.text
    member = await make_member()
    inv = await invoice_for(member, 3000)
    pid = await _ask(alice, member, "254700000013")
    failed = await wait_for_status(pid, {"failed", "completed"})
    assert failed["status"] == "failed" and "may still reach the phone" in await _reason(pid)
    paid = await wait_for_status(pid, {"completed"}, timeout=15)
    assert paid["flag"] == "late_success" and paid["gateway_ref"].startswith("ws_CO_") and len(paid["reference"]) == 10
    assert (await Invoice.select(Invoice.status).where(Invoice.id == inv["id"]).first())["status"] == "paid"
    cb = await GatewayCallback.select().where(GatewayCallback.external_id == paid["gateway_ref"]).first()
    assert (cb["outcome"], cb["payment"]) == ("applied", pid)
    reasons = [e["reason"] for e in await PaymentEvent.select().where(PaymentEvent.payment == pid).order_by(PaymentEvent.id)]
    assert any("matched by phone and amount" in r for r in reasons)
    assert await Payment.count() == 1 and await StaffAlert.count().where(StaffAlert.kind == "unmatched") == 0
    await assert_books_agree()


async def test_prompt_money_with_no_attempt_waits_on_the_unmatched_page_with_all_that_is_known(live, worker, alice):
    member = await make_member(first_name="Akinyi", last_name="Odera", phone="254722000111")
    await invoice_for(member, 3000)
    number = (await Payment.raw("SELECT member_number FROM member WHERE id = {}", member))[0]["member_number"]
    body = _success_body("ws_CO_07122026101500123456", "3000", "TL7AB1CD2E", "254722000111")
    async with httpx.AsyncClient() as http:
        r = await http.post(live.hook(), content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    cb = await GatewayCallback.select().where(GatewayCallback.external_id == "ws_CO_07122026101500123456").first()
    assert cb["outcome"] == "unmatched" and cb["processed_at"] is not None  # at once, not ten minutes later
    alert = await StaffAlert.select().where(StaffAlert.callback == cb["id"]).first()
    for known in ("TL7AB1CD2E", "KES 3,000", "0722 000 111", number, "Akinyi Odera"):
        assert known in alert["message"], known
    assert await Payment.count() == 0
    page = await alice.get("/mpesa/unmatched")
    assert 'data-testid="unmatched-via-prompt"' in page.text and "TL7AB1CD2E" in page.text
    r = await alice.post(f"/mpesa/unmatched/{cb['id']}/match", {"member_id": str(member)})
    assert r.status_code == 303, r.text
    [paid] = await Payment.select().where(Payment.member == member)
    assert (paid["status"], paid["reference"], paid["amount"]) == ("completed", "TL7AB1CD2E", 3000)
    # The same money told again (the Paybill copy, or the callback resent) credits nothing more.
    async with httpx.AsyncClient() as http:
        await http.post(live.hook(), content=json.dumps(body), headers={"content-type": "application/json"})
    assert await Payment.count() == 1
    assert (await alice.get("/mpesa/unmatched")).text.count('data-testid="unmatched-row"') == 0
    await assert_books_agree()


async def test_retrying_a_prompt_that_may_not_be_retried_says_so(live, worker, alice):
    """Retry pressed on a prompt already paid (a second tab): no new prompt, no error page."""
    member = await make_member()
    await invoice_for(member, 3000)
    pid = await _ask(alice, member, PHONES["success"])
    await wait_for_status(pid, {"completed"})
    r = await alice.post(f"/payments/{pid}/retry")
    assert r.status_code == 303 and r.headers["location"] == f"/payments/{pid}?notice=retry_refused"
    assert "Not asked again" in (await alice.get(r.headers["location"])).text
    assert await Payment.count() == 1
