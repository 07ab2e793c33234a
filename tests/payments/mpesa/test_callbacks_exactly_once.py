"""Daraja callbacks: stored raw first, acted on exactly once, whatever arrives and however often."""

import asyncio
import json
import random
import time

import httpx
import pytest

from portal.callbacks import store as callbacks
from portal.lib import db as portal_db
from portal.lib.money import Money
from portal.payments import state
from portal.payments.mpesa import stk as mpesa
from portal.payments.mpesa.c2b import unmatched_count
from tables.billing import Invoice, Payment, PaymentEvent
from tables.gateway import GatewayCallback, StaffAlert
from tables.ledger import LedgerLeg
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_member
from tests.payments.mpesa.test_stk_scenarios import _ask
from tests.support.live import PHONES, wait_for_status


def stk_body(checkout: str, code: int = 0, amount=None, receipt: str = "", phone: int = 254712000001) -> bytes:
    cb = {"MerchantRequestID": "m-" + checkout, "CheckoutRequestID": checkout, "ResultCode": code,
          "ResultDesc": "The service request is processed successfully." if code == 0 else "Request cancelled by user"}
    if code == 0:
        cb["CallbackMetadata"] = {"Item": [
            {"Name": "Amount", "Value": amount}, {"Name": "MpesaReceiptNumber", "Value": receipt}, {"Name": "Balance"},
            {"Name": "TransactionDate", "Value": 20261126101500}, {"Name": "PhoneNumber", "Value": phone}]}
    # Amounts go out as JSON numbers with decimals, as Daraja sends them.
    return json.dumps({"Body": {"stkCallback": cb}}).encode()


async def in_flight_payment(member_id: int, amount: int, checkout: str) -> int:
    recorded = await mpesa.start_stk_push(member_id=member_id, phone="0712000001", amount=Money(amount),
                                          idempotency_key=f"k-{checkout}")
    pid = recorded.payment["id"]
    async with portal_db.transaction():
        await state.transition(pid, state.PROCESSING, reason="Prompt sent", values={Payment.gateway_ref: checkout})
    return pid


# 1,000 requests through one server process: 230 s seen beside another suite, over 300 s (the
# default hang bound) with two suites and six other test sessions on the same two cores.
@pytest.mark.hang_seconds(900)
async def test_200_payments_each_delivered_5_times_concurrently_out_of_order_credit_once(live, capsys):
    members = [await make_member(phone=f"2547130{i:05d}") for i in range(200)]
    for m in members:
        await invoice_for(m, 3000)
    payments = {}
    for i, m in enumerate(members):
        payments[f"ws_CO_LOAD{i:04d}"] = await in_flight_payment(m, 3000, f"ws_CO_LOAD{i:04d}")
    deliveries = [(checkout, stk_body(checkout, 0, 3000, f"LD{i:08d}")) for i, checkout in enumerate(payments) for _ in range(5)]
    random.Random(42).shuffle(deliveries)
    started = time.monotonic()
    limits = httpx.Limits(max_connections=20)
    # What is proven is exactly once, not speed (the time is printed): on a machine shared with
    # another suite the burst took 230 s and one answer over 60 s, which failed the run.
    async with httpx.AsyncClient(limits=limits, timeout=600) as http:
        answers = await asyncio.gather(*[
            http.post(live.hook(), content=body, headers={"content-type": "application/json"}) for _, body in deliveries])
    elapsed = time.monotonic() - started
    assert all(a.status_code == 200 and a.json() == {"ResultCode": 0, "ResultDesc": "Accepted"} for a in answers)
    completed = await Payment.count().where(Payment.status == "completed")
    credits = await LedgerLeg.count().where((LedgerLeg.account == "mpesa") & (LedgerLeg.amount > 0))
    stored = await GatewayCallback.select(GatewayCallback.deliveries, GatewayCallback.outcome)
    assert completed == 200 and credits == 200
    assert len(stored) == 200 and {r["deliveries"] for r in stored} == {5}
    assert {r["outcome"] for r in stored} == {"applied"}
    assert await PaymentEvent.count().where((PaymentEvent.old_status == "processing") & (PaymentEvent.new_status == "completed")) == 200
    await assert_books_agree()
    with capsys.disabled():
        print(f"\n  duplicate delivery: 200 payments, {len(deliveries)} deliveries, {credits} credits, {elapsed:.1f} s")


async def test_a_failure_after_success_never_undoes_the_money(live):
    member = await make_member()
    await invoice_for(member, 3000)
    pid = await in_flight_payment(member, 3000, "ws_CO_ORDER1")
    async with httpx.AsyncClient() as http:
        await http.post(live.hook(), content=stk_body("ws_CO_ORDER1", 0, 3000, "OK12345678"))
        await http.post(live.hook(), content=stk_body("ws_CO_ORDER1", 1032))
    row = await Payment.select().where(Payment.id == pid).first()
    assert row["status"] == "completed"
    notes = [r["outcome"] for r in await GatewayCallback.select(GatewayCallback.outcome).order_by(GatewayCallback.id)]
    assert notes == ["applied", "duplicate"]


@pytest.mark.parametrize("body", [
    b"", b"not json", b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_X"',  # truncated
    b'{"Body": {"stkCallback": {"CheckoutRequestID": 12345, "ResultCode": 0}}}',  # wrong type
    b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_Y", "ResultCode": "zero"}}}',
    b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_Z", "ResultCode": 0, "CallbackMetadata": {"Item": [{"Name": "Amount", "Value": "lots"}]}}}}',
    b'[1, 2, 3]', b'{"Body": null}', "\u00ff\u00fe".encode("latin-1"), b"{" * 5000,
])
async def test_malformed_bodies_are_stored_acknowledged_and_shown(live, body):
    async with httpx.AsyncClient() as http:
        r = await http.post(live.hook(), content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    row = await GatewayCallback.select().first()
    assert row["outcome"] in ("malformed", "stored")
    if row["outcome"] == "malformed":
        assert await StaffAlert.count().where(StaffAlert.kind == "malformed") == 1
    assert await Payment.count() == 0


async def test_an_oversized_body_is_cut_stored_and_acknowledged(live):
    body = b'{"Body": {"stkCallback": {"pad": "' + b"x" * (400 * 1024) + b'"}}}'
    async with httpx.AsyncClient() as http:
        r = await http.post(live.hook(), content=body)
    assert r.status_code == 200
    row = await GatewayCallback.select().first()
    assert row["outcome"] == "malformed" and "cut" in row["note"] and len(row["body"]) == callbacks.MAX_BODY


async def test_a_wrong_token_is_counted_as_rejected_and_never_acted_on(live):
    """Kept as a count on one row per hook, address and day, with the first bytes of the first
    (what staff need to see who tried what), never acted on, never kept whole (issue 12.4)."""
    member = await make_member()
    await invoice_for(member, 3000)
    pid = await in_flight_payment(member, 3000, "ws_CO_FORGED")
    forged = [stk_body("ws_CO_FORGED", 0, 3000, "FAKE000001"), stk_body("ws_CO_FORGED", 0, 3000, "FAKE000002")]
    async with httpx.AsyncClient() as http:
        answers = [await http.post(live.hook().replace("test-hook-token-1234", "guess"), content=body) for body in forged]
    assert [(r.status_code, r.json()) for r in answers] == [(200, {"ResultCode": 0, "ResultDesc": "Accepted"})] * 2
    [row] = await GatewayCallback.select()
    assert (row["outcome"], row["note"], row["deliveries"]) == ("rejected", "wrong callback token", 2)
    assert row["body"] == forged[0][:callbacks.REFUSED_SAMPLE].decode() and row["processed_at"] is None
    assert (await Payment.select().where(Payment.id == pid).first())["status"] == "processing"


async def test_an_unknown_checkout_is_kept_then_let_go_when_it_moved_no_money(live, worker, queue):
    """A failure result for a prompt we have no record of (yet) waits for our record; ten minutes on
    the sweeper lets it go. (Money with an unknown id goes to staff at once: test_stk_scenarios.)"""
    async with httpx.AsyncClient() as http:
        await http.post(live.hook(), content=stk_body("ws_CO_NOBODY", 1032))
    row = await GatewayCallback.select().first()
    assert row["outcome"] == "stored" and row["processed_at"] is None
    await GatewayCallback.raw("UPDATE gateway_callback SET received_at = now() - interval '11 minutes'")
    await queue.apply("sweep_mpesa", timeout=30)
    row = await GatewayCallback.select().first()
    assert row["outcome"] == "unmatched" and "no money" in row["note"]
    assert await StaffAlert.count().where(StaffAlert.kind == "unmatched") == 1
    assert await unmatched_count() == 0  # nothing for staff to match: no money moved


async def test_a_callback_stored_but_never_processed_is_processed_by_the_sweeper(live, worker, queue):
    """The process died between storing the raw callback and acting on it."""
    member = await make_member()
    await invoice_for(member, 3000)
    pid = await in_flight_payment(member, 3000, "ws_CO_CRASH")
    stored = await callbacks.store("daraja", "stk", stk_body("ws_CO_CRASH", 0, 3000, "CR12345678"),
                                   external_id="ws_CO_CRASH")
    await GatewayCallback.raw("UPDATE gateway_callback SET received_at = now() - interval '10 seconds'")
    assert (await Payment.select().where(Payment.id == pid).first())["status"] == "processing"
    result = await queue.apply("sweep_mpesa", timeout=30)
    assert result["callbacks"] == 1
    assert (await Payment.select().where(Payment.id == pid).first())["status"] == "completed"
    assert (await GatewayCallback.select().where(GatewayCallback.id == stored.id).first())["outcome"] == "applied"


async def test_a_malformed_success_never_takes_the_genuine_callbacks_place(live, worker, alice):
    """Issue 11.11: a body naming the real request with ResultCode 0 but no Amount arrives first;
    the genuine callback that follows has the same gateway id and result, yet is applied."""
    member = await make_member()
    inv = await invoice_for(member, 3000)
    pid = await _ask(alice, member, PHONES["no_callback"])  # the sandbox holds its callback back
    checkout = (await wait_for_status(pid, {"processing"}))["gateway_ref"]
    async with httpx.AsyncClient(base_url=live.sandbox) as sandbox:
        genuine = (await sandbox.get(f"/_sandbox/daraja/stk/{checkout}")).json()["callback_body"]
        broken = json.loads(json.dumps(genuine))
        items = broken["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
        broken["Body"]["stkCallback"]["CallbackMetadata"]["Item"] = [i for i in items if i["Name"] != "Amount"]
        async with httpx.AsyncClient() as http:
            for _ in range(2):  # the same broken body twice is one callback
                r = await http.post(live.hook(), content=json.dumps(broken), headers={"content-type": "application/json"})
                assert r.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
        rows = await GatewayCallback.select().order_by(GatewayCallback.id)
        assert [(r["outcome"], r["deliveries"]) for r in rows] == [("malformed", 2)]
        assert (await Payment.select().where(Payment.id == pid).first())["status"] == "processing"

        assert (await sandbox.post(f"/_sandbox/daraja/stk/{checkout}/resend", json={"times": 2})).status_code < 300
    rows = await GatewayCallback.select().order_by(GatewayCallback.id)
    assert [(r["outcome"], r["deliveries"]) for r in rows] == [("malformed", 2), ("applied", 2)]
    paid = await wait_for_status(pid, {"completed"})
    completed = await PaymentEvent.select().where((PaymentEvent.payment == pid) & (PaymentEvent.new_status == "completed")).first()
    assert completed["gateway_event"] == f"callback:{rows[1]['id']}"
    assert paid["amount"] == 3000 and paid["reference"] == genuine["Body"]["stkCallback"]["CallbackMetadata"]["Item"][1]["Value"]
    assert (await Invoice.select(Invoice.status).where(Invoice.id == inv["id"]).first())["status"] == "paid"
    await assert_books_agree()


async def test_the_sandbox_sending_garbage_before_the_real_callback_credits_once(live, worker, alice):
    """The sandbox's "malformed_first" (magic phone 254700000014): a copy without its Amount, then
    the genuine callback, for the same CheckoutRequestID and ResultCode."""
    member = await make_member()
    inv = await invoice_for(member, 3000)
    pid = await _ask(alice, member, "254700000014")
    paid = await wait_for_status(pid, {"completed"})
    rows = await GatewayCallback.select().where(GatewayCallback.external_id == paid["gateway_ref"]).order_by(GatewayCallback.id)
    assert [r["outcome"] for r in rows] == ["malformed", "applied"]
    assert (await Invoice.select(Invoice.status).where(Invoice.id == inv["id"]).first())["status"] == "paid"
    await assert_books_agree()


async def test_a_callback_arriving_while_the_push_is_recorded_credits_the_payment(live):
    """The callback can beat our record of the push: it then waits for that record to commit instead of
    looking for the payment before it and for an unanswered attempt after it (finding neither, it listed
    credited money as unmatched; seen in CI)."""
    member = await make_member()
    await invoice_for(member, 3000)
    recorded = await mpesa.start_stk_push(member_id=member, phone="0712000001", amount=Money(3000),
                                          idempotency_key="k-race")
    locked, posted = asyncio.Event(), asyncio.Event()

    async def record_slowly():
        async with portal_db.transaction():
            await mpesa.record_push(recorded.payment, "ws_CO_RACE", "m-race")
            locked.set()
            await posted.wait()
            await asyncio.sleep(0.5)  # the callback's request is in flight, waiting for this commit

    recording = asyncio.create_task(record_slowly())
    await locked.wait()
    async with httpx.AsyncClient() as http:
        send = asyncio.create_task(http.post(live.hook(), content=stk_body("ws_CO_RACE", 0, 3000, "RC12345678")))
        await asyncio.sleep(0.1)
        posted.set()
        assert (await send).status_code == 200
    await recording
    row = await GatewayCallback.select().first()
    assert (row["outcome"], row["payment"]) == ("applied", recorded.payment["id"]), row
    paid = await Payment.select().where(Payment.id == recorded.payment["id"]).first()
    assert (paid["status"], paid["reference"]) == ("completed", "RC12345678")
    assert await unmatched_count() == 0
    await assert_books_agree()
