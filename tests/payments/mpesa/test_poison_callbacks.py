"""Callbacks that can never be processed back off, stop, and become one staff alert each; they
never stand in front of a genuine one, however many there are (issue 11.4)."""

import json

import pytest_asyncio

from portal.callbacks import store as callbacks
from portal.callbacks.store import MAX_ATTEMPTS
from tables.billing import Payment
from tables.gateway import GatewayCallback, StaffAlert
from tasks.mpesa import sweep_mpesa
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_member
from tests.payments.mpesa.test_c2b import _c2b_body, _number


async def _stored(trans_id: str, amount: str, account: str) -> int:
    """Stored as the hook stores it, then the process died before acting (the sweeper's case)."""
    body = json.dumps(_c2b_body(trans_id, amount, account)).encode()
    return (await callbacks.store("daraja", "c2b_confirmation", body, external_id=trans_id)).id


async def _age(seconds: int) -> None:
    await GatewayCallback.raw("UPDATE gateway_callback SET received_at = received_at - make_interval(secs => {})",
                              seconds)


# A fault nobody foresaw: the database refuses the payment these confirmations would record.
POISON = ["""CREATE OR REPLACE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.reference LIKE 'TKP%' THEN RAISE EXCEPTION 'poisoned %', NEW.reference; END IF; RETURN NEW; END $$""",
          "CREATE TRIGGER test_poison BEFORE INSERT ON payment FOR EACH ROW EXECUTE FUNCTION test_poison()"]


@pytest_asyncio.fixture
async def poisoned(db):
    for statement in POISON:
        await Payment.raw(statement)
    yield
    await Payment.raw("DROP TRIGGER IF EXISTS test_poison ON payment")
    await Payment.raw("DROP FUNCTION IF EXISTS test_poison()")


async def test_poison_callbacks_back_off_stop_and_never_starve_a_genuine_one(db, queue, poisoned):
    member = await make_member()
    await invoice_for(member, 3000)
    account = await _number(member)
    for i in range(510):
        await _stored(f"TKP{i:07d}", "3000", account)
    await _age(10)
    await sweep_mpesa({})  # the first try: 500 a sweep, each fails
    # On a busy machine that sweep can outlast the first back-off (a minute from receipt): as if
    # it had been quick, so what is proven is the order, not the machine's speed.
    await GatewayCallback.raw("UPDATE gateway_callback SET received_at = now() - interval '10 seconds'")
    await sweep_mpesa({})  # the other 10 go before any second try
    poison = await GatewayCallback.select(GatewayCallback.outcome, GatewayCallback.attempts).where(
        GatewayCallback.external_id.like("TKP%"))
    assert {(r["outcome"], r["attempts"]) for r in poison} == {("error", 1)}

    genuine = await _stored("TKG0000001", "3000", account)
    await _age(10)
    await sweep_mpesa({})  # the poison rows wait their back-off; the genuine one goes first
    row = await GatewayCallback.select().where(GatewayCallback.id == genuine).first()
    assert row["outcome"] == "applied"
    assert [p["amount"] for p in await Payment.select(Payment.amount)] == [3000]

    # Tried again only as the back-off allows, then given up with one alert each.
    for _ in range(MAX_ATTEMPTS):
        await _age(60 * 2 ** MAX_ATTEMPTS)
        await sweep_mpesa({})
    attempts = {r["attempts"] for r in await GatewayCallback.select(GatewayCallback.attempts).where(
        GatewayCallback.external_id.like("TKP%"))}
    assert attempts == {MAX_ATTEMPTS}
    assert await callbacks.unprocessed() == []
    alerts = await StaffAlert.select().where(StaffAlert.kind == "callback_stuck")
    assert len(alerts) == 510 and '"TransID": "TKP' in alerts[0]["message"] and "poisoned" in alerts[0]["message"]
    await assert_books_agree()
