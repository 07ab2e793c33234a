"""The desk payment rules, called as the handler calls them: each refusal names the field it is about."""

from decimal import Decimal

import pytest

from portal.lib.errors import RuleBroken
from portal.lib.money import Money
from portal.payments.service import desk_payment_problems
from tables.billing import Payment
from tables.locations import Location
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member
from tests.support.client import field_error


@pytest.mark.parametrize("method, message", [("bank", "Enter the bank reference"),
                                             ("cheque", "Enter the cheque number")])
async def test_bank_and_cheque_need_a_reference(db, method, message):
    member = await make_member()
    with pytest.raises(RuleBroken) as refused:
        await pay(member, 1000, method=method, reference="  ")
    assert (refused.value.field, str(refused.value)) == ("reference", message)
    assert await Payment.count() == 0


@pytest.mark.parametrize("amount", [0, -500])
async def test_the_amount_must_be_above_zero(db, amount):
    member = await make_member()
    with pytest.raises(RuleBroken) as refused:
        await pay(member, amount)
    assert (refused.value.field, str(refused.value)) == ("amount", "Enter an amount above zero")
    assert await Payment.count() == 0


async def test_only_cash_bank_or_cheque_at_the_desk(db):
    member = await make_member()
    with pytest.raises(RuleBroken) as refused:
        await pay(member, 1000, method="mpesa", reference="QK12")
    assert (refused.value.field, str(refused.value)) == ("method", "Choose cash, bank transfer or cheque")


async def test_a_paid_invoice_takes_no_more_payments(db):
    member = await make_member()
    inv = await invoice_for(member, 1000)
    await pay(member, 1000, invoice_id=inv["id"])
    with pytest.raises(RuleBroken) as refused:
        await pay(member, 500, invoice_id=inv["id"])
    assert (refused.value.field, str(refused.value)) == ("invoice", "That invoice is not open")


def test_every_problem_at_once_for_the_form():
    problems = desk_payment_problems(method="cheque", amount=None, reference="")
    assert [(p.field, str(p)) for p in problems] == [("reference", "Enter the cheque number")]
    problems = desk_payment_problems(method="card", amount=Money(Decimal("0")), reference="")
    assert [(p.field, str(p)) for p in problems] == [("method", "Choose cash, bank transfer or cheque"),
                                                     ("amount", "Enter an amount above zero")]


async def test_the_desk_form_shows_each_refusal_under_its_field(alice):
    member = await make_member()
    inv = await invoice_for(member, 1000)
    await pay(member, 1000, invoice_id=inv["id"])

    async def record(**form):
        r = await alice.post(f"/members/{member}/payments", {"idempotency_key": "desk-rules", **form})
        assert r.status_code == 422
        return {f: field_error(r.text, f) for f in ("method", "amount", "reference") if field_error(r.text, f)}

    assert await record(method="bank", amount="500") == {"reference": "Enter the bank reference"}
    assert await record(method="card", amount="0") == {"method": "Choose cash, bank transfer or cheque",
                                                       "amount": "Enter an amount above zero"}
    assert await record(method="cheque", amount="") == {"amount": "Enter an amount",
                                                        "reference": "Enter the cheque number"}
    assert await record(method="cash", amount="500", invoice=str(inv["id"])) == {"amount": "That invoice is not open"}
    assert await Payment.count() == 1


async def test_cash_always_belongs_to_a_desk(alice):
    """A login with no desk of its own, in a gym with two: the desk must be chosen, and the chosen
    desk's close counts the cash. With only one desk, that one."""
    from portal.billing.closes import expected
    from portal.lib.clock import today
    from tests.factories import make_location

    member = await make_member()
    westlands, karen = await make_location("WST", "Westlands"), await make_location("KRN", "Karen")
    form = {"method": "cash", "amount": "200", "idempotency_key": "desk-1"}
    page = await alice.get(f"/members/{member}")
    assert 'data-testid="pay-desk"' in page.text
    r = await alice.post(f"/members/{member}/payments", form)
    assert r.status_code == 422
    assert field_error(r.text, "location") == "Choose the desk that takes this money"
    assert await Payment.count() == 0
    r = await alice.post(f"/members/{member}/payments", {**form, "location": str(karen)})
    assert r.status_code == 303, r.text
    paid = await Payment.select().first()
    assert paid["location"] == karen
    counted = await expected(karen, today())
    assert [c["expected"] for c in counted["cash_by_staff"]] == ["200.00"]
    assert (await expected(westlands, today()))["cash_by_staff"] == []



async def test_in_a_gym_with_one_desk_cash_is_that_desks(db):
    from tests.factories import make_location

    only = await make_location("WST", "Westlands")
    await make_location("OLD", "Closed branch")
    await Location.update({Location.active: False}).where(Location.code == "OLD")
    recorded = await pay(await make_member(), 500)
    assert recorded.payment["location"] == only
