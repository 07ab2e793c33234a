"""The one payment state machine: allowed moves, refused moves, repeats and late successes."""

import asyncio

import pytest

from portal.lib import db as portal_db
from portal.payments import state
from tables.billing import Payment, PaymentEvent
from tests.factories import make_member


async def _payment(status: str = "pending") -> int:
    member = await make_member()
    row = await Payment.insert(Payment(member=member, method="mpesa", amount=1000, status=status,
                                       idempotency_key=f"k-{member}")).returning(Payment.id)
    return row[0]["id"]


async def _move(payment_id: int, new: str, **kw) -> state.Change:
    async with portal_db.transaction():
        return await state.transition(payment_id, new, reason=kw.pop("reason", "test"), **kw)


def test_every_status_has_a_row_and_final_states_only_go_forward():
    assert set(state.TRANSITIONS) == {s.value for s in Payment.Status}
    assert state.TRANSITIONS[state.REFUNDED] == set()
    for final in (state.FAILED, state.CANCELLED, state.EXPIRED):
        assert state.TRANSITIONS[final] == {state.COMPLETED}


async def test_a_move_records_an_event_with_its_source(db):
    p = await _payment()
    change = await _move(p, state.PROCESSING, reason="STK push accepted", gateway_event="daraja:ws_CO_1")
    assert change.changed and (change.old, change.new) == ("pending", "processing")
    event = await PaymentEvent.select().where(PaymentEvent.payment == p).first()
    assert (event["old_status"], event["new_status"], event["reason"], event["gateway_event"]) == (
        "pending", "processing", "STK push accepted", "daraja:ws_CO_1")


async def test_the_same_event_twice_changes_nothing(db):
    p = await _payment()
    await _move(p, state.FAILED)
    again = await _move(p, state.FAILED)
    assert not again.changed
    assert await PaymentEvent.count().where(PaymentEvent.payment == p) == 1


async def test_refused_moves_raise_and_change_nothing(db):
    p = await _payment()
    with pytest.raises(state.InvalidTransition):
        await _move(p, state.REFUNDED)
    assert (await Payment.select(Payment.status).where(Payment.id == p).first())["status"] == "pending"


async def test_a_late_success_after_expiry_is_applied_and_flagged(db):
    p = await _payment()
    await _move(p, state.EXPIRED)
    change = await _move(p, state.COMPLETED, reason="callback after expiry")
    assert change.changed and change.late_success


async def test_concurrent_identical_moves_record_one_event(db):
    p = await _payment()
    changes = await asyncio.gather(*[_move(p, state.CANCELLED) for _ in range(10)])
    assert sum(c.changed for c in changes) == 1
    assert await PaymentEvent.count().where(PaymentEvent.payment == p) == 1


async def test_a_payment_is_opened_once_per_key_with_its_birth_event(db):
    member = await make_member()
    columns = {"member": member, "invoice": None, "method": "cash", "amount": 1500, "currency": "KES",
               "idempotency_key": "open-once", "staff": None, "location": None, "reference": "", "note": ""}

    async def open_it():
        async with portal_db.transaction():
            return await state.open_payment(columns, reason="Cash recorded at the desk")

    results = await asyncio.gather(*(open_it() for _ in range(5)))
    ids = {payment_id for payment_id, _ in results}
    assert len(ids) == 1 and sum(created for _, created in results) == 1
    (payment_id,) = ids
    payment = await Payment.select().where(Payment.id == payment_id).first()
    assert (payment["status"], payment["amount"], payment["method"]) == ("pending", 1500, "cash")
    events = await PaymentEvent.select().where(PaymentEvent.payment == payment_id)
    assert [(e["old_status"], e["new_status"], e["reason"], e["kind"]) for e in events] == [
        ("", "pending", "Cash recorded at the desk", state.STATUS)]


async def test_only_known_columns_open_a_payment(db):
    with pytest.raises(ValueError, match="status"):
        await state.open_payment({"idempotency_key": "x", "status": "completed"}, reason="no")


async def test_the_settlement_is_its_own_kind_of_event_and_is_read_back(db):
    p = await _payment()
    facts = {"settled": [{"invoice": 1, "number": "INV-2026-000001", "amount": "1000.00"}], "credit_added": "0.00",
             "balance_owed": "0.00", "credit_balance": "0.00"}
    assert await state.settlement_of(p) == {}
    async with portal_db.transaction():
        await state.transition(p, state.COMPLETED, reason="Cash received")
        await state.record_settlement(p, facts)
    assert await state.settlement_of(p) == facts
    kinds = [e["kind"] for e in await PaymentEvent.select().where(PaymentEvent.payment == p).order_by(PaymentEvent.id)]
    assert kinds == [state.STATUS, state.SETTLEMENT]
