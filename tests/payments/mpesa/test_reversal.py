"""A manager refunds an M-Pesa payment: Daraja reverses it, and its result callback posts the refund."""

import asyncio
import json
from decimal import Decimal

import httpx

from portal.gateways.daraja import DarajaClient
from portal.lib.money import Money
from tables.billing import CreditNote, Invoice, Payment
from tables.gateway import GatewayCallback, GatewayRequest, StaffAlert
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_member
from tests.support.client import field_error
from tests.support.live import PHONES, wait_for_status


async def _paid_by_mpesa(alice, phone=PHONES["success"]) -> tuple[int, int]:
    member = await make_member()
    inv = await invoice_for(member, 3000)
    r = await alice.post(f"/members/{member}/mpesa", {"phone": phone, "amount": "3000", "idempotency_key": "k1"})
    pid = int(r.headers["location"].rsplit("/", 1)[1])
    await wait_for_status(pid, {"completed"})
    return pid, inv["id"]


async def _request(pid: int, statuses: set[str], timeout: float = 15, nth: int = 0) -> dict:
    """The payment's nth reversal request once it is in one of `statuses`."""
    req = None
    for _ in range(int(timeout / 0.05)):
        reqs = await GatewayRequest.select().where(GatewayRequest.payment == pid).order_by(GatewayRequest.id)
        req = reqs[nth] if len(reqs) > nth else None
        if req and req["status"] in statuses:
            return req
        await asyncio.sleep(0.05)
    raise AssertionError(f"reversal stayed {req and req['status']}")


async def _async_mode(live, mode: str) -> None:
    """How the sandbox answers the next reversals: "result", "queue_timeout" (Daraja gives up,
    no Result), "queue_timeout_then_result" (Daraja gives up, yet M-Pesa reverses the money)."""
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{live.sandbox}/_sandbox/daraja/settings", json={"async_result_mode": mode})
        assert r.status_code < 300, r.text


async def _async_callbacks() -> list[tuple[str, str]]:
    rows = await GatewayCallback.select(GatewayCallback.kind, GatewayCallback.outcome).where(
        GatewayCallback.kind.is_in(["result", "timeout"])).order_by(GatewayCallback.id)
    return [(r["kind"], r["outcome"]) for r in rows]


async def test_a_manager_reverses_an_mpesa_payment(live, worker, alice, bob):
    pid, invoice_id = await _paid_by_mpesa(alice)
    assert (await alice.post(f"/payments/{pid}/refund", {"reason": "x"})).status_code == 403
    part = await bob.post(f"/payments/{pid}/refund", {"amount": "1000", "reason": "Half back"})
    assert part.status_code == 422
    assert field_error(part.text, "refund_amount") == "M-Pesa reverses the whole payment: use Reverse"
    no_reason = await bob.post(f"/payments/{pid}/refund", {"reason": ""})
    assert no_reason.status_code == 422 and field_error(no_reason.text, "reason") == "Give a reason for the refund"
    assert await GatewayRequest.count() == 0
    r = await bob.post(f"/payments/{pid}/refund", {"reason": "Member paid twice"})
    assert r.status_code == 303
    again = await bob.post(f"/payments/{pid}/refund", {"reason": "Member paid twice"})
    assert again.status_code == 303 and await GatewayRequest.count() == 1
    req = await _request(pid, {"succeeded", "failed"})
    assert req["status"] == "succeeded", req
    paid = await wait_for_status(pid, {"refunded"})
    assert paid["refunded"] == paid["amount"]
    # The form sent once more after the money went back: the same reversal, not an error, not a second one.
    late = await bob.post(f"/payments/{pid}/refund", {"reason": "Member paid twice"})
    assert (late.status_code, late.headers.get("location")) == (303, f"/payments/{pid}") and await GatewayRequest.count() == 1
    assert (await Invoice.select(Invoice.status).where(Invoice.id == invoice_id).first())["status"] == "open"
    assert await CreditNote.count().where(CreditNote.payment == pid) == 1
    page = await bob.get(f"/payments/{pid}")
    assert 'data-testid="reversal-status">Reversal succeeded' in page.text
    await assert_books_agree()


async def test_a_large_prompt_and_its_reversal_are_each_confirmed_first(live, worker, alice, bob):
    member = await make_member()
    form = {"phone": PHONES["success"], "amount": "120000", "idempotency_key": "large"}
    asked = await alice.post(f"/members/{member}/mpesa", form)
    assert field_error(asked.text, "mpesa_amount") == "KES 120,000 is a large amount: check it and confirm"
    assert await Payment.count() == 0
    r = await alice.post(f"/members/{member}/mpesa", {**form, "confirmed": "120000.00"})
    pid = int(r.headers["location"].rsplit("/", 1)[1])
    await wait_for_status(pid, {"completed"})

    reverse = await bob.post(f"/payments/{pid}/refund", {"reason": "Meant 12,000"})
    assert reverse.status_code == 422
    assert field_error(reverse.text, "refund_amount") == "KES 120,000 is a large amount: check it and confirm"
    assert 'data-testid="refund-confirmed"' in reverse.text and 'value="Meant 12,000"' in reverse.text
    assert await GatewayRequest.count() == 0
    r = await bob.post(f"/payments/{pid}/refund", {"reason": "Meant 12,000", "confirmed": "120000.00"})
    assert r.status_code == 303
    assert (await _request(pid, {"succeeded", "failed"}))["status"] == "succeeded"
    assert (await wait_for_status(pid, {"refunded"}))["refunded"] == Decimal("120000")


async def test_a_refused_reversal_alerts_staff_and_changes_no_money(live, worker, alice, bob):
    pid, _ = await _paid_by_mpesa(alice)
    # Daraja does not know this M-Pesa code: its result callback refuses the reversal.
    await Payment.update({Payment.reference: "QQQ0000000"}).where(Payment.id == pid)
    await bob.post(f"/payments/{pid}/refund", {"reason": "Testing a refusal"})
    req = await _request(pid, {"succeeded", "failed"})
    assert req["status"] == "failed" and req["result_code"]
    assert (await Payment.select(Payment.status).where(Payment.id == pid).first())["status"] == "completed"
    assert await StaffAlert.count().where(StaffAlert.kind == "reversal_failed") == 1
    await assert_books_agree()


# --- Daraja times the reversal out (issue 11.12) ---------------------------------------------------

async def test_a_reversal_that_succeeds_after_its_time_out_refunds_once(live, worker, alice, bob):
    pid, invoice_id = await _paid_by_mpesa(alice)
    await _async_mode(live, "queue_timeout_then_result")
    assert (await bob.post(f"/payments/{pid}/refund", {"reason": "Member paid twice"})).status_code == 303
    req = await _request(pid, {"succeeded", "failed"})
    assert (req["status"], req["result_code"]) == ("succeeded", "0"), req
    paid = await wait_for_status(pid, {"refunded"})
    assert paid["refunded"] == paid["amount"]
    assert await CreditNote.count().where(CreditNote.payment == pid) == 1
    assert (await Invoice.select(Invoice.status).where(Invoice.id == invoice_id).first())["status"] == "open"
    assert await _async_callbacks() == [("timeout", "applied"), ("result", "applied")]
    assert await StaffAlert.count().where(StaffAlert.kind == "reversal_unconfirmed") == 1
    page = await bob.get(f"/payments/{pid}")
    assert 'data-testid="reversal-status">Reversal succeeded' in page.text
    assert 'data-testid="reversal-unconfirmed"' not in page.text
    await assert_books_agree()


async def test_a_reversal_refused_after_its_time_out_is_closed_and_can_be_asked_again(live, worker, alice, bob):
    pid, _ = await _paid_by_mpesa(alice)
    await Payment.update({Payment.reference: "QQQ0000000"}).where(Payment.id == pid)  # M-Pesa will refuse it
    await _async_mode(live, "queue_timeout_then_result")
    await bob.post(f"/payments/{pid}/refund", {"reason": "Testing a refusal"})
    req = await _request(pid, {"succeeded", "failed"})
    assert (req["status"], req["result_code"]) == ("failed", "R000002"), req
    assert await _async_callbacks() == [("timeout", "applied"), ("result", "applied")]
    assert (await Payment.select(Payment.status).where(Payment.id == pid).first())["status"] == "completed"
    assert {a["kind"] for a in await StaffAlert.select(StaffAlert.kind)} == {"reversal_unconfirmed", "reversal_failed"}
    page = await bob.get(f"/payments/{pid}")
    assert 'data-testid="reverse"' in page.text and 'data-testid="reversal-unconfirmed"' not in page.text
    await assert_books_agree()


async def test_a_timed_out_reversal_is_shown_may_be_asked_again_and_never_refunds_twice(live, worker, alice, bob):
    pid, _ = await _paid_by_mpesa(alice)
    await _async_mode(live, "queue_timeout")  # Daraja gives up and no Result comes (yet)
    await bob.post(f"/payments/{pid}/refund", {"reason": "First try"})
    first = await _request(pid, {"timed_out"})
    assert await _async_callbacks() == [("timeout", "applied")]
    assert await StaffAlert.count().where(StaffAlert.kind == "reversal_unconfirmed") == 1
    for staff in (alice, bob):  # the desk sees it is unconfirmed; the manager may also reverse again
        page = await staff.get(f"/payments/{pid}")
        assert 'data-testid="reversal-unconfirmed"' in page.text
        assert ('data-testid="reverse"' in page.text) == (staff is bob)
    assert (await Payment.select(Payment.status).where(Payment.id == pid).first())["status"] == "completed"

    await _async_mode(live, "result")
    assert (await bob.post(f"/payments/{pid}/refund", {"reason": "Second try"})).status_code == 303
    second = await _request(pid, {"succeeded", "failed"}, nth=1)
    assert second["status"] == "succeeded"
    paid = await wait_for_status(pid, {"refunded"})

    # ...and then M-Pesa says the first one went through as well: nothing is refunded twice.
    async with httpx.AsyncClient() as http:
        items = (await http.get(f"{live.sandbox}/_sandbox/daraja/async")).json()["items"]
        late = next(i for i in items if i["conversation_id"] == second["conversation_id"])["result_body"]
        late["Result"].update(OriginatorConversationID=first["originator_conversation_id"],
                              ConversationID=first["conversation_id"])
        for _ in range(2):
            r = await http.post(live.hook("result"), content=json.dumps(late), headers={"content-type": "application/json"})
            assert r.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    assert (await _request(pid, {"succeeded"}))["id"] == first["id"]
    again = await Payment.select().where(Payment.id == pid).first()
    assert (again["status"], again["refunded"]) == ("refunded", paid["refunded"])
    assert await CreditNote.count().where(CreditNote.payment == pid) == 1
    assert await _async_callbacks() == [("timeout", "applied"), ("result", "applied"), ("result", "duplicate")]
    assert await StaffAlert.count().where(StaffAlert.kind == "reversal_twice") == 1
    page = await bob.get(f"/payments/{pid}")
    assert 'data-testid="reversal-status">Reversal succeeded' in page.text
    await assert_books_agree()


async def test_a_payment_mpesa_reversed_unseen_is_refunded_when_reversed_again(live, worker, alice, bob):
    """The first reversal timed out and its Result never reached us, though M-Pesa gave the money
    back: reversing again is answered "already reversed", which is the refund the books miss."""
    pid, _ = await _paid_by_mpesa(alice)
    await _async_mode(live, "queue_timeout")
    assert (await bob.post(f"/payments/{pid}/refund", {"reason": "First try"})).status_code == 303
    await _request(pid, {"timed_out"})
    await _async_mode(live, "result")
    payment = await Payment.select().where(Payment.id == pid).first()
    async with DarajaClient(live.settings) as client:  # M-Pesa reverses it; the Result goes astray
        await client.reversal(payment["reference"], Money(payment["amount"]), f"{live.portal}/lost", f"{live.portal}/lost",
                              "Refund, result lost")
    async with httpx.AsyncClient() as http:
        for _ in range(400):
            ledger = (await http.get(f"{live.sandbox}/_sandbox/daraja/ledger")).json()["items"]
            if next(e for e in ledger if e["receipt"] == payment["reference"])["reversed_by"]:
                break
            await asyncio.sleep(0.05)
    assert (await bob.post(f"/payments/{pid}/refund", {"reason": "Second try"})).status_code == 303
    second = await _request(pid, {"succeeded", "failed"}, nth=1)
    assert (second["status"], second["result_code"]) == ("succeeded", "R000001"), second
    paid = await wait_for_status(pid, {"refunded"})
    assert paid["refunded"] == paid["amount"] and await CreditNote.count().where(CreditNote.payment == pid) == 1
    assert await StaffAlert.count().where(StaffAlert.kind.is_in(["reversal_failed", "reversal_twice"])) == 0
    page = await bob.get(f"/payments/{pid}")
    assert 'data-testid="reversal-status">Reversal succeeded' in page.text
    assert 'data-testid="reversal-unconfirmed"' not in page.text
    await assert_books_agree()
