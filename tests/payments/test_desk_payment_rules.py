"""The desk payment rules, called as the handler calls them: each refusal names the field it is about."""

import re
from decimal import Decimal

import pytest

from portal.lib.errors import RuleBroken
from portal.lib.money import Money
from portal.payments.limits import NeedsConfirmation
from portal.payments.service import desk_payment_problems
from portal.settings import get_settings
from tables.billing import Payment
from tables.locations import Location
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member
from tests.support.client import field_error, field_value


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


# --- limits per method and large amounts (issue 11.8) ---------------------------------------------

@pytest.mark.parametrize("method, reference, typed, message", [
    ("cash", "", "10,000,000", "Cash payments are limited to KES 100,000 each"),
    ("cash", "", "100000.01", "Cash payments are limited to KES 100,000 each"),
    ("bank", "EQ-1", "1000001", "Bank transfer payments are limited to KES 1,000,000 each"),
    ("cheque", "000123", "1000001", "Cheque payments are limited to KES 1,000,000 each"),
])
async def test_an_amount_above_the_methods_limit_is_refused_under_the_amount(alice, method, reference, typed, message):
    member = await make_member()
    r = await alice.post(f"/members/{member}/payments", {"method": method, "amount": typed, "reference": reference,
                                                        "idempotency_key": "too-much", "confirmed": typed})
    assert r.status_code == 422
    assert field_error(r.text, "amount") == message
    assert f'value="{typed}" data-testid="pay-amount"' in r.text and field_value(r.text, "reference") == reference
    assert 'data-testid="pay-confirmed"' not in r.text  # refused, not a question
    assert await Payment.count() == 0


async def test_a_limit_comes_from_the_settings(alice, monkeypatch):
    monkeypatch.setenv("CASH_MAX_AMOUNT", "5000")
    get_settings.cache_clear()
    try:
        member = await make_member()
        r = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "5001", "idempotency_key": "k"})
        assert field_error(r.text, "amount") == "Cash payments are limited to KES 5,000 each"
        ok = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "5000", "idempotency_key": "k"})
        assert ok.status_code == 303
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


async def test_a_large_amount_is_recorded_only_once_confirmed(alice):
    member = await make_member()
    inv = await invoice_for(member, 90000)
    form = {"method": "bank", "amount": "80,000", "reference": "EQ-778812", "invoice": str(inv["id"]),
            "idempotency_key": "large-1"}
    asked = await alice.post(f"/members/{member}/payments", form)
    assert asked.status_code == 422
    assert field_error(asked.text, "amount") == "KES 80,000 is a large amount: check it and confirm"
    # Everything typed comes back, with the same key and a box that confirms this very amount.
    assert 'name="idempotency_key" value="large-1"' in asked.text
    assert 'value="80,000" data-testid="pay-amount"' in asked.text and field_value(asked.text, "reference") == "EQ-778812"
    assert f'<option value="{inv["id"]}" selected>' in asked.text
    box = re.search(r'<input type="checkbox" name="confirmed" value="([^"]+)" autofocus data-testid="pay-confirmed">',
                    asked.text)
    assert box and box.group(1) == "80000.00"
    assert await Payment.count() == 0

    unticked = await alice.post(f"/members/{member}/payments", form)  # Enter again without ticking the box
    assert unticked.status_code == 422 and await Payment.count() == 0
    done = await alice.post(f"/members/{member}/payments", {**form, "confirmed": box.group(1)})
    assert done.status_code == 303
    again = await alice.post(f"/members/{member}/payments", {**form, "confirmed": box.group(1)})
    assert again.headers["location"] == done.headers["location"]  # the same payment, once
    [payment] = await Payment.select()
    assert (payment["amount"], payment["method"], payment["invoice"]) == (Decimal("80000"), "bank", inv["id"])


async def test_a_confirmation_is_for_the_amount_it_was_shown_for(alice):
    member = await make_member()
    form = {"method": "cash", "amount": "90000", "idempotency_key": "large-2", "confirmed": "60000.00"}
    r = await alice.post(f"/members/{member}/payments", form)  # 60,000 confirmed, then changed to 90,000
    assert r.status_code == 422
    assert field_error(r.text, "amount") == "KES 90,000 is a large amount: check it and confirm"
    assert await Payment.count() == 0
    # Sent by htmx (the X-CSRFToken header) it confirms the same way.
    assert (await alice.post(f"/members/{member}/payments", {**form, "confirmed": "90000"}, htmx=True)).status_code == 303
    assert await Payment.count() == 1


async def test_the_amount_up_to_the_threshold_needs_no_confirmation(alice):
    member = await make_member()
    r = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "50000", "idempotency_key": "k"})
    assert r.status_code == 303


async def test_the_rule_holds_whoever_calls_it(db):
    member = await make_member()
    with pytest.raises(NeedsConfirmation) as asked:
        await pay(member, 50000.01)
    assert (asked.value.field, str(asked.value)) == ("amount", "KES 50,000.01 is a large amount: check it and confirm")
    with pytest.raises(RuleBroken) as refused:
        await pay(member, 100001, confirmed=True)
    assert str(refused.value) == "Cash payments are limited to KES 100,000 each"
    assert await Payment.count() == 0
    assert (await pay(member, 50000.01, confirmed=True)).created


@pytest.mark.parametrize("typed", ["1e3", "1E3", "Infinity", "١٠٠٠"])
async def test_only_a_plain_number_is_an_amount_on_every_money_form(alice, bob, typed):
    """Issue 11.8: "1e3" was once recorded as KES 1,000. The desk payment, the M-Pesa prompt and
    the refund each refuse it under the amount, keep what was typed, and record nothing."""
    from html import unescape

    from tables.billing import CreditNote

    member = await make_member()
    r = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": typed, "idempotency_key": "k"})
    assert r.status_code == 422
    assert unescape(field_error(r.text, "amount")) == f"'{typed}' is not an amount"
    assert f'value="{typed}" data-testid="pay-amount"' in r.text
    r = await alice.post(f"/members/{member}/mpesa", {"phone": "0712 345 678", "amount": typed, "idempotency_key": "k"})
    assert r.status_code == 422 and unescape(field_error(r.text, "mpesa_amount")) == f"'{typed}' is not an amount"
    assert await Payment.count() == 0

    paid = (await pay(member, 3000)).payment
    r = await bob.post(f"/payments/{paid['id']}/refund", {"amount": typed, "reason": "Typo"})
    assert r.status_code == 422 and unescape(field_error(r.text, "refund_amount")) == f"'{typed}' is not an amount"
    assert await CreditNote.count() == 0
