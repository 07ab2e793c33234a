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
