"""A body nested too deeply to read (issue 11.13): every gateway hook stores it raw, calls it
malformed and answers as it always does; neither the hook nor the sweeper coming back to it fails."""

import httpx
import pytest

from portal.callbacks import store as callbacks
from tables.gateway import GatewayCallback, StaffAlert
from tasks.mpesa import sweep_mpesa
from tests.billing.helpers import assert_books_agree

NESTED = {
    "arrays": b"[" * 50_000 + b"]" * 50_000,
    "objects": b'{"a":' * 30_000 + b"1" + b"}" * 30_000,
}
DARAJA_ACK = {"ResultCode": 0, "ResultDesc": "Accepted"}
HOOKS = {  # hook -> (gateway, kind, its usual answer to something it cannot read)
    "stk": ("daraja", "stk", DARAJA_ACK),
    "c2b/confirmation": ("daraja", "c2b_confirmation", {"ResultCode": 0, "ResultDesc": "Success"}),
    "c2b/validation": ("daraja", "c2b_validation", {"ResultCode": "C2B00016", "ResultDesc": "Rejected"}),
    "result": ("daraja", "result", DARAJA_ACK),
    "timeout": ("daraja", "timeout", DARAJA_ACK),
    "flutterwave": ("flutterwave", "webhook", {"status": "success"}),
    "sms": ("africastalking", "delivery", "OK"),
}


def _url(live, hook: str) -> tuple[str, dict]:
    if hook == "flutterwave":
        return f"{live.portal}/hooks/flutterwave", {"verif-hash": live.settings.flutterwave_secret_hash}
    if hook == "sms":
        return f"{live.portal}/hooks/sms/delivery/{live.settings.at_callback_token}", {}
    return live.hook(hook), {}


@pytest.mark.parametrize("shape", sorted(NESTED))
@pytest.mark.parametrize("hook", list(HOOKS))
async def test_a_deeply_nested_body_is_stored_malformed_and_answered(live, hook, shape):
    url, headers = _url(live, hook)
    gateway, kind, answer = HOOKS[hook]
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(url, content=NESTED[shape], headers={"content-type": "application/json", **headers})
    assert r.status_code == 200, r.text[:300]
    assert (r.text if isinstance(answer, str) else r.json()) == answer
    [row] = await GatewayCallback.select()
    assert (row["gateway"], row["kind"], row["outcome"]) == (gateway, kind, "malformed")
    assert row["body"] == NESTED[shape].decode()
    assert await StaffAlert.count().where(StaffAlert.kind == "malformed") == 1
    await assert_books_agree()


@pytest.mark.parametrize("shape", sorted(NESTED))
async def test_the_sweeper_reads_a_stored_nested_body_as_malformed(db, queue, shape):
    """Stored by a hook whose process then died: the sweeper reads it again from the row."""
    for gateway, kind, _ in HOOKS.values():
        await callbacks.store(gateway, kind, NESTED[shape], external_id=f"{kind}-1")
    await GatewayCallback.raw("UPDATE gateway_callback SET received_at = received_at - interval '10 seconds'")
    await sweep_mpesa({})
    rows = await GatewayCallback.select(GatewayCallback.kind, GatewayCallback.outcome, GatewayCallback.attempts)
    assert {(r["kind"], r["outcome"], r["attempts"]) for r in rows} == {
        (kind, "malformed", 1) for _, kind, _ in HOOKS.values()}
    assert await callbacks.unprocessed() == []


async def test_the_sandbox_posting_a_nested_body_before_the_real_callback_credits_once(live, worker, alice):
    """The Daraja sandbox's "nested_first" (magic phone 254700000015): 50,000 nested arrays reach
    the STK hook first, then the genuine callback. Invoice KES 3,000, prompt KES 3,000: the nested
    body is one malformed row, the genuine one credits 3,000 once and the invoice is paid."""
    from tables.billing import Invoice
    from tests.billing.helpers import invoice_for
    from tests.factories import make_member
    from tests.payments.mpesa.test_stk_scenarios import _ask
    from tests.support.live import wait_for_status

    member = await make_member()
    inv = await invoice_for(member, 3000)
    pid = await _ask(alice, member, "254700000015")
    paid = await wait_for_status(pid, {"completed"})
    assert paid["amount"] == 3000
    rows = await GatewayCallback.select().where(GatewayCallback.kind == "stk").order_by(GatewayCallback.id)
    assert [(r["outcome"], r["external_id"]) for r in rows] == [("malformed", None), ("applied", paid["gateway_ref"])]
    assert rows[0]["body"] == NESTED["arrays"].decode()
    assert await StaffAlert.count().where(StaffAlert.kind == "malformed") == 1
    assert (await Invoice.select(Invoice.status).where(Invoice.id == inv["id"]).first())["status"] == "paid"
    await assert_books_agree()
