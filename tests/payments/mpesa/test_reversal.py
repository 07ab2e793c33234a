"""A manager refunds an M-Pesa payment: Daraja reverses it, and its result callback posts the refund."""

import asyncio

from tables.billing import CreditNote, Invoice, Payment
from tables.gateway import GatewayRequest, StaffAlert
from tests.billing.helpers import assert_ledger_balanced, invoice_for
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


async def _request(pid: int, statuses: set[str], timeout: float = 15) -> dict:
    for _ in range(int(timeout / 0.05)):
        req = await GatewayRequest.select().where(GatewayRequest.payment == pid).first()
        if req and req["status"] in statuses:
            return req
        await asyncio.sleep(0.05)
    raise AssertionError(f"reversal stayed {req and req['status']}")


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
    assert (await Invoice.select(Invoice.status).where(Invoice.id == invoice_id).first())["status"] == "open"
    assert await CreditNote.count().where(CreditNote.payment == pid) == 1
    page = await bob.get(f"/payments/{pid}")
    assert 'data-testid="reversal-status">Reversal succeeded' in page.text
    await assert_ledger_balanced()


async def test_a_refused_reversal_alerts_staff_and_changes_no_money(live, worker, alice, bob):
    pid, _ = await _paid_by_mpesa(alice)
    # Daraja does not know this M-Pesa code: its result callback refuses the reversal.
    await Payment.update({Payment.reference: "QQQ0000000"}).where(Payment.id == pid)
    await bob.post(f"/payments/{pid}/refund", {"reason": "Testing a refusal"})
    req = await _request(pid, {"succeeded", "failed"})
    assert req["status"] == "failed" and req["result_code"]
    assert (await Payment.select(Payment.status).where(Payment.id == pid).first())["status"] == "completed"
    assert await StaffAlert.count().where(StaffAlert.kind == "reversal_failed") == 1
    await assert_ledger_balanced()
