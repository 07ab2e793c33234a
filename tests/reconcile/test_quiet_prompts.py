"""Quiet STK prompts: no callback ever comes and STK Query answers "being processed" for ever; only
Daraja's Transaction Status knows how the prompt ended. The chain is real: portal over HTTP, SAQ
worker, the Daraja sandbox posting its Result to the portal's ResultURL."""

import asyncio
from datetime import timedelta
from decimal import Decimal

import httpx

from portal.callbacks import dispatch
from tables.billing import Invoice, Payment, PaymentEvent
from tables.gateway import GatewayCallback, GatewayRequest
from tables.members import Member
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_member
from tests.support.live import wait_for_status

QUIET = "254700000020"  # bound to the sandbox's "quiet" scenario by each test
QUIET_CANCELLED = "254700000021"


async def _sandbox(live, path: str, body: dict) -> dict:
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{live.sandbox}/_sandbox/daraja/{path}", json=body)
        assert r.status_code < 300, r.text
        return r.json()


async def _ask(alice, member: int, phone: str, amount: str = "3000") -> int:
    r = await alice.post(f"/members/{member}/mpesa", {"phone": phone, "amount": amount, "idempotency_key": f"k-{phone}"})
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


async def _completions(pid: int) -> list[dict]:
    return await PaymentEvent.select().where((PaymentEvent.payment == pid) & (PaymentEvent.new_status == "completed")
                                             & (PaymentEvent.kind == "status"))


async def _quiet_prompt_past_its_time(live, alice, queue, phone: str, scenario: str) -> tuple[int, int, dict]:
    await _sandbox(live, "scenarios", {"phone": phone, "scenario": scenario})
    member = await make_member()
    inv = await invoice_for(member, 3000)
    pid = await _ask(alice, member, phone)
    processing = await wait_for_status(pid, {"processing"})
    # STK Query cannot settle it: "The transaction is being processed".
    assert await queue.apply("check_stk", payment_id=pid, timeout=30) == "pending"
    assert (await Payment.select(Payment.status).where(Payment.id == pid).first())["status"] == "processing"
    # Time passes: the prompt's time is up.
    await Payment.update({Payment.expires_at: processing["created_at"]}).where(Payment.id == pid)
    return pid, inv["id"], processing


async def test_a_quiet_prompt_is_settled_by_transaction_status_once(live, worker, alice, queue):
    """Worked example: invoice KES 3,000 (incl. 16% VAT: 2,586.21 + 413.79); the member pays KES 3,000
    to a prompt that never calls back. Transaction Status says Completed, receipt R, Amount 3000:
    one completion of KES 3,000, the invoice paid (3,000 - 3,000 = 0 owed). The Result arrives twice
    (the sandbox repeats it) and then the late STK callback comes: neither changes anything."""
    await _sandbox(live, "settings", {"status_result_times": 2})
    pid, invoice_id, processing = await _quiet_prompt_past_its_time(live, alice, queue, QUIET, "quiet")

    assert await queue.apply("check_stk", payment_id=pid, timeout=30) == "status"
    paid = await wait_for_status(pid, {"completed"})
    assert paid["amount"] == Decimal("3000.00") and paid["receipt_number"]
    [done] = await _completions(pid)
    assert done["gateway_event"].startswith("transaction_status:")
    assert done["old_status"] == "processing"
    assert (await Invoice.select(Invoice.status).where(Invoice.id == invoice_id).first())["status"] == "paid"
    req = await GatewayRequest.select().where((GatewayRequest.payment == pid) & (GatewayRequest.kind == "status")).first()
    assert (req["status"], req["result_code"]) == ("succeeded", "0")
    # The sandbox's M-Pesa knows the receipt the portal now shows.
    async with httpx.AsyncClient() as http:
        prompt = (await http.get(f"{live.sandbox}/_sandbox/daraja/stk/{processing['gateway_ref']}")).json()
    assert paid["reference"] == prompt["receipt"]

    # The Result was POSTed twice: one row, two deliveries, credited once.
    for _ in range(200):
        result = await GatewayCallback.select().where(GatewayCallback.kind == "result").first()
        if result and result["deliveries"] == 2:
            break
        await asyncio.sleep(0.05)
    assert result["deliveries"] == 2 and result["payment"] == pid

    # Asking again (the next sweep) asks nothing more: the prompt is final.
    assert await queue.apply("check_stk", payment_id=pid, timeout=30) == "final"
    assert await GatewayRequest.count().where(GatewayRequest.kind == "status") == 1

    # The STK callback after all, late: a duplicate.
    late = {"Body": {"stkCallback": {
        "MerchantRequestID": processing["gateway_request"], "CheckoutRequestID": processing["gateway_ref"],
        "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": [{"Name": "Amount", "Value": 3000}, {"Name": "MpesaReceiptNumber", "Value": prompt["receipt"]},
                                      {"Name": "TransactionDate", "Value": 20261207101500},
                                      {"Name": "PhoneNumber", "Value": int(QUIET)}]}}}}
    async with httpx.AsyncClient() as http:
        assert (await http.post(live.hook("stk"), json=late)).status_code == 200
    cb = await GatewayCallback.select().where(GatewayCallback.kind == "stk").first()
    assert cb["outcome"] == "duplicate"
    assert len(await _completions(pid)) == 1
    assert (await Payment.select(Payment.amount, Payment.status).where(Payment.id == pid).first()) == {
        "amount": Decimal("3000.00"), "status": "completed"}
    await assert_books_agree()


async def test_a_result_and_a_late_callback_at_the_same_moment_credit_once(live, worker, alice, queue):
    """The Result (held back by the sandbox, then sent twice by us), the STK callback and the Paybill
    copy of the same receipt race: KES 3,000 credited once."""
    await _sandbox(live, "settings", {"async_result_mode": "none"})
    pid, invoice_id, processing = await _quiet_prompt_past_its_time(live, alice, queue, QUIET, "quiet")
    assert await queue.apply("check_stk", payment_id=pid, timeout=30) == "status"
    req = await GatewayRequest.select().where((GatewayRequest.payment == pid) & (GatewayRequest.kind == "status")).first()
    assert req["status"] == "sent" and req["originator_conversation_id"]
    async with httpx.AsyncClient() as http:
        prompt = (await http.get(f"{live.sandbox}/_sandbox/daraja/stk/{processing['gateway_ref']}")).json()
    receipt = prompt["receipt"]
    result = {"Result": {
        "ResultType": 0, "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": req["originator_conversation_id"], "ConversationID": req["conversation_id"],
        "TransactionID": receipt, "ResultParameters": {"ResultParameter": [
            {"Key": "ReceiptNo", "Value": receipt}, {"Key": "TransactionStatus", "Value": "Completed"},
            {"Key": "Amount", "Value": 3000}, {"Key": "DebitPartyName", "Value": f"{QUIET} - JOHN"}]},
        "ReferenceData": {"ReferenceItem": {"Key": "Occasion", "Value": ""}}}}
    callback = {"Body": {"stkCallback": {
        "MerchantRequestID": processing["gateway_request"], "CheckoutRequestID": processing["gateway_ref"],
        "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": [{"Name": "Amount", "Value": 3000}, {"Name": "MpesaReceiptNumber", "Value": receipt},
                                      {"Name": "PhoneNumber", "Value": int(QUIET)}]}}}}
    member_number = (await Member.select(Member.member_number).where(Member.id == processing["member"]).first())["member_number"]
    paybill_copy = {"TransactionType": "Pay Bill", "TransID": receipt, "TransTime": "20261207101500", "TransAmount": "3000.00",
                    "BusinessShortCode": "174379", "BillRefNumber": member_number, "InvoiceNumber": "",
                    "OrgAccountBalance": "", "ThirdPartyTransID": "", "MSISDN": "2547 ***** 020", "FirstName": "JOHN",
                    "MiddleName": "", "LastName": ""}
    async with httpx.AsyncClient() as http:
        answers = await asyncio.gather(http.post(live.hook("result"), json=result), http.post(live.hook("stk"), json=callback),
                                       http.post(live.hook("result"), json=result),
                                       http.post(live.hook("c2b/confirmation"), json=paybill_copy))
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    await wait_for_status(pid, {"completed"})
    # The Paybill copy may have come while the prompt was in flight ("waiting for the STK callback"):
    # what the sweeper does with it later, done now.
    copy = await GatewayCallback.select().where(GatewayCallback.kind == "c2b_confirmation").first()
    if copy["outcome"] == "stored":
        await dispatch.process(copy["id"])
    outcomes = sorted(r["outcome"] for r in await GatewayCallback.select(GatewayCallback.outcome).where(
        GatewayCallback.kind.is_in(["result", "stk", "c2b_confirmation"])))
    assert outcomes == ["applied", "duplicate", "duplicate"]
    assert await Payment.count() == 1
    assert len(await _completions(pid)) == 1
    assert (await Invoice.select(Invoice.status).where(Invoice.id == invoice_id).first())["status"] == "paid"
    await assert_books_agree()


async def test_a_quiet_prompt_cancelled_on_the_phone_ends_cancelled(live, worker, alice, queue):
    pid, invoice_id, _ = await _quiet_prompt_past_its_time(live, alice, queue, QUIET_CANCELLED, "quiet_cancelled")
    assert await queue.apply("check_stk", payment_id=pid, timeout=30) == "status"
    await wait_for_status(pid, {"cancelled"})
    event = await PaymentEvent.select().where(PaymentEvent.payment == pid).order_by(PaymentEvent.id, ascending=False).first()
    assert event["reason"] == "Cancelled by the member on the phone"
    assert event["gateway_event"].startswith("transaction_status:")
    assert (await Invoice.select(Invoice.status).where(Invoice.id == invoice_id).first())["status"] == "open"
    await assert_books_agree()


async def test_a_status_query_whose_answer_never_reached_us_still_ends_the_prompt_once(live, worker, alice, queue):
    """Daraja takes the Transaction Status query, but its HTTP answer comes after we stopped
    waiting (a time-out on our side, delivered all the same): we never learn the request's ids.
    The prompt is not expired for it (it was, and the Result that followed was called a duplicate:
    a prompt M-Pesa said was paid would have stayed expired); the Result names our request by the
    Occasion we sent and ends the prompt as the phone did, once."""
    import dataclasses

    from portal.gateways.daraja import DarajaClient
    from portal.reconcile import stk_status

    pid, invoice_id, _ = await _quiet_prompt_past_its_time(live, alice, queue, QUIET_CANCELLED, "quiet_cancelled")
    await _sandbox(live, "settings", {"async_ack_delay": 3})
    client = DarajaClient(dataclasses.replace(live.settings, gateway_timeout_seconds=1))
    try:
        payment = await Payment.select().where(Payment.id == pid).first()
        assert await stk_status.ask_status(payment, client=client) is True  # waits for the Result
    finally:
        await client.aclose()
    await wait_for_status(pid, {"cancelled"})
    [req] = await GatewayRequest.select().where((GatewayRequest.payment == pid) & (GatewayRequest.kind == "status"))
    assert req["status"] == "succeeded" and req["originator_conversation_id"]  # learnt from the Result
    event = await PaymentEvent.select().where(PaymentEvent.payment == pid).order_by(PaymentEvent.id, ascending=False).first()
    assert (event["new_status"], event["reason"]) == ("cancelled", "Cancelled by the member on the phone")
    # A later check finds it final; the Result's row says applied.
    assert await queue.apply("check_stk", payment_id=pid, timeout=30) == "final"
    [result] = await GatewayCallback.select().where(GatewayCallback.kind == "result")
    assert result["outcome"] == "applied"
    assert (await Invoice.select(Invoice.status).where(Invoice.id == invoice_id).first())["status"] == "open"
    await assert_books_agree()


async def test_without_an_answer_in_time_the_prompt_expires_as_before(live, worker, alice, queue):
    """No Result comes (Daraja sends nothing): after STATUS_WAIT the sweep expires the prompt."""
    await _sandbox(live, "settings", {"async_result_mode": "none"})
    pid, _, _ = await _quiet_prompt_past_its_time(live, alice, queue, QUIET, "quiet")
    assert await queue.apply("check_stk", payment_id=pid, timeout=30) == "status"
    assert await queue.apply("check_stk", payment_id=pid, timeout=30) == "status"  # still waiting: asked once
    assert await GatewayRequest.count().where(GatewayRequest.kind == "status") == 1
    await GatewayRequest.update({GatewayRequest.created_at: GatewayRequest.created_at - timedelta(minutes=11)}).where(
        GatewayRequest.kind == "status")
    assert await queue.apply("check_stk", payment_id=pid, timeout=30) == "expired"
    await wait_for_status(pid, {"expired"})


async def test_a_prompt_completed_without_its_code_gets_it_from_transaction_status(live, worker, alice, queue):
    """Issue 11.7, the third source: STK Query settles a prompt while its Transaction Status is out.
    The query carries no receipt, so the payment is completed (KES 3,000, the invoice's 3,000: paid)
    with its code "to follow"; the Result that comes next fills the code in, credits nothing more
    (one payment_received of 3,000) and the receipt is made again with the code."""
    from portal.lib import db
    from portal.payments.mpesa import stk
    from tests.payments.mpesa.test_c2b import _receipt_text

    await _sandbox(live, "settings", {"status_result_delay": 3})
    pid, invoice_id, processing = await _quiet_prompt_past_its_time(live, alice, queue, QUIET, "quiet")
    assert await queue.apply("check_stk", payment_id=pid, timeout=30) == "status"
    async with db.transaction():  # STK Query says paid at last, before the Result is in
        fresh = await Payment.select().where(Payment.id == pid).first()
        outcome, _ = await stk.apply_stk_result(fresh, stk.StkOutcome(code="0", description="processed"),
                                                source=f"stk_query:{processing['gateway_ref']}")
    assert outcome == "applied"
    paid = await Payment.select().where(Payment.id == pid).first()
    assert (paid["status"], paid["reference"]) == ("completed", "")
    assert 'data-testid="mpesa-code-to-follow"' in (await alice.get(f"/payments/{pid}/status", htmx=True)).text

    async with httpx.AsyncClient() as http:
        prompt = (await http.get(f"{live.sandbox}/_sandbox/daraja/stk/{processing['gateway_ref']}")).json()
    for _ in range(300):  # the Result, status_result_delay s on
        paid = await Payment.select().where(Payment.id == pid).first()
        if paid["reference"]:
            break
        await asyncio.sleep(0.05)
    assert paid["reference"] == prompt["receipt"] and paid["status"] == "completed"
    event = await PaymentEvent.select().where(PaymentEvent.payment == pid).order_by(PaymentEvent.id, ascending=False).first()
    assert event["reason"] == f"M-Pesa code {prompt['receipt']} received"
    assert event["gateway_event"].startswith("transaction_status:")
    assert [e["old_status"] for e in await _completions(pid)] == ["processing", "completed"]  # completed, then the code
    assert prompt["receipt"] in await _receipt_text(pid, lambda text: "to follow" not in text)
    assert f'data-testid="mpesa-code">{prompt["receipt"]}' in (await alice.get(f"/payments/{pid}/status", htmx=True)).text
    assert (await Invoice.select(Invoice.status).where(Invoice.id == invoice_id).first())["status"] == "paid"
    await assert_books_agree()
