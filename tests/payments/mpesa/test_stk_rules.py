"""Asking a phone for money, refused before anything is recorded: each refusal names its field."""

import re
from decimal import Decimal

import pytest

from portal.lib.errors import RuleBroken
from portal.lib.money import Money
from portal.payments.mpesa import stk as mpesa
from portal.settings import get_settings
from tables.billing import Payment
from tables.members import Member
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member
from tests.support.client import field_error


async def _push(member: int, phone: str = "0712 345 678", amount: str = "1000", **kw):
    return await mpesa.start_stk_push(member_id=member, phone=phone, amount=Money(Decimal(amount)),
                                      idempotency_key=f"rules-{member}-{phone}-{amount}", **kw)


@pytest.mark.parametrize("phone, message", [("", "Enter a phone number"),
                                            ("020 123 4567", "Use a mobile number (M-Pesa needs one)")])
async def test_a_phone_m_pesa_cannot_reach_is_refused(db, phone, message):
    member = await make_member()
    with pytest.raises(RuleBroken) as refused:
        await _push(member, phone=phone)
    assert (refused.value.field, str(refused.value)) == ("phone", message)
    assert await Payment.count() == 0


async def test_a_phone_on_another_network_than_safaricom_is_refused(db):
    member = await make_member()
    with pytest.raises(RuleBroken) as refused:
        await _push(member, phone="0733 123 456")
    assert (refused.value.field, str(refused.value)) == (
        "phone", "0733 123 456 is an Airtel number; M-Pesa prompts need a Safaricom number")
    assert await Payment.count() == 0


@pytest.mark.parametrize("amount", ["0", "-5", "999.50"])
async def test_m_pesa_takes_whole_shillings_of_at_least_one(db, amount):
    member = await make_member()
    with pytest.raises(RuleBroken) as refused:
        await _push(member, amount=amount)
    assert (refused.value.field, str(refused.value)) == ("amount", "M-Pesa takes whole shillings (at least 1)")
    assert await Payment.count() == 0


async def test_the_amount_is_judged_before_the_phone(db):
    member = await make_member()
    with pytest.raises(RuleBroken) as refused:
        await _push(member, phone="020 123 4567", amount="0.50")
    assert refused.value.field == "amount"


async def test_a_paid_invoice_is_not_asked_for_again(db):
    member = await make_member()
    inv = await invoice_for(member, 1000)
    await pay(member, 1000, invoice_id=inv["id"])
    with pytest.raises(RuleBroken) as refused:
        await _push(member, invoice_id=inv["id"])
    assert (refused.value.field, str(refused.value)) == ("invoice", "That invoice is not open")


async def test_the_desk_form_shows_each_refusal_under_its_field(alice):
    member = await make_member()
    inv = await invoice_for(member, 1000)
    await pay(member, 1000, invoice_id=inv["id"])

    async def ask(phone: str, amount: str, invoice: str = ""):
        r = await alice.post(f"/members/{member}/mpesa", {"phone": phone, "amount": amount, "invoice": invoice,
                                                          "idempotency_key": "desk-rules"})
        assert r.status_code == 422
        return field_error(r.text, "mpesa_phone"), field_error(r.text, "mpesa_amount"), r.text

    phone, amount, page = await ask("020 123 4567", "1000")
    assert (phone, amount) == ("Use a mobile number (M-Pesa needs one)", None)
    assert 'value="020 123 4567" data-testid="mpesa-phone"' in page
    assert (await ask("0712 345 678", "12.50"))[:2] == (None, "M-Pesa takes whole shillings (at least 1)")
    assert (await ask("020 123 4567", ""))[:2] == (None, "Enter an amount")
    assert (await ask("0712 345 678", "1000", str(inv["id"])))[:2] == (None, "That invoice is not open")
    assert await Payment.count() == 1


@pytest.mark.parametrize("typed, refusal", [
    ("0109 218 072", "0109 218 072 is an Airtel number; M-Pesa prompts need a Safaricom number"),
    ("0733 123 456", "0733 123 456 is an Airtel number; M-Pesa prompts need a Safaricom number"),
    ("0115 123 456", None),
])
async def test_a_phone_is_judged_by_one_rule_when_kept_and_when_prompted(alice, typed, refusal):
    """A member's phone is kept if it is any Kenyan mobile (0109 218 072 used to be kept by the
    demo, then refused by the M-Pesa form as "not a valid Kenyan phone number"); the desk's M-Pesa
    form sends to it if it is Safaricom's, and otherwise says why under the phone."""
    r = await alice.post("/members/new", {"first_name": "Amina", "last_name": "Hassan", "phone": typed})
    assert r.status_code == 303, field_error(r.text, "phone")
    member = await Member.objects().where(Member.first_name == "Amina").first()
    assert member.phone == "254" + typed.replace(" ", "")[1:]
    page = await alice.get(f"/members/{member.id}")
    offered = re.search(r'value="([^"]*)" data-testid="mpesa-phone"', page.text).group(1)
    asked = await alice.post(f"/members/{member.id}/mpesa", {"phone": offered, "amount": "1000",
                                                             "idempotency_key": f"one-rule-{typed}"})
    if refusal:
        assert asked.status_code == 422 and field_error(asked.text, "mpesa_phone") == refusal
        assert await Payment.count() == 0
    else:
        assert asked.status_code == 303
        assert (await Payment.select(Payment.phone).first())["phone"] == member.phone


# --- Safaricom's cap and large amounts (issue 11.8) -----------------------------------------------

async def test_a_prompt_above_safaricoms_limit_is_not_sent(alice):
    member = await make_member()
    r = await alice.post(f"/members/{member}/mpesa", {"phone": "0712 345 678", "amount": "250001",
                                                      "idempotency_key": "cap", "confirmed": "250001"})
    assert r.status_code == 422
    assert field_error(r.text, "mpesa_amount") == "M-Pesa payments are limited to KES 250,000 each"
    assert 'value="250001" data-testid="mpesa-amount"' in r.text
    assert await Payment.count() == 0
    with pytest.raises(RuleBroken) as refused:  # whoever asks
        await _push(member, amount="250001", confirmed=True)
    assert refused.value.field == "amount"


async def test_the_limit_is_the_setting_and_the_daraja_client_keeps_to_it(alice, monkeypatch):
    from portal.gateways.daraja import DarajaClient, DarajaFieldError

    monkeypatch.setenv("MPESA_MAX_AMOUNT", "150000")
    get_settings.cache_clear()
    try:
        member = await make_member()
        with pytest.raises(RuleBroken) as refused:
            await _push(member, amount="150001", confirmed=True)
        assert str(refused.value) == "M-Pesa payments are limited to KES 150,000 each"
        async with DarajaClient(get_settings()) as client:  # refused before any HTTP call
            with pytest.raises(DarajaFieldError, match="at most KES 150,000"):
                await client.stk_push("0712345678", Money(Decimal("150001")), "PTF0001", "Membership",
                                      "https://gym.example.com/hooks/daraja/stk/t")
        assert (await _push(member, amount="150000", confirmed=True)).created
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


async def test_a_large_prompt_is_sent_only_once_confirmed(alice):
    member = await make_member()
    form = {"phone": "0712 345 678", "amount": "120000", "idempotency_key": "large-prompt"}
    asked = await alice.post(f"/members/{member}/mpesa", form)
    assert asked.status_code == 422
    assert field_error(asked.text, "mpesa_amount") == "KES 120,000 is a large amount: check it and confirm"
    assert 'value="0712 345 678" data-testid="mpesa-phone"' in asked.text
    assert 'value="120000" data-testid="mpesa-amount"' in asked.text
    assert 'name="idempotency_key" value="large-prompt"' in asked.text
    box = re.search(r'name="confirmed" value="([^"]+)" autofocus data-testid="mpesa-confirmed"', asked.text)
    assert box and await Payment.count() == 0
    done = await alice.post(f"/members/{member}/mpesa", {**form, "confirmed": box.group(1)})
    assert done.status_code == 303
    [payment] = await Payment.select()
    assert (payment["amount"], payment["status"]) == (Decimal("120000"), "pending")


async def test_a_bad_phone_is_said_before_the_large_amount_is_asked_about(alice):
    member = await make_member()
    r = await alice.post(f"/members/{member}/mpesa", {"phone": "020 123 4567", "amount": "120000",
                                                      "idempotency_key": "k"})
    assert field_error(r.text, "mpesa_phone") == "Use a mobile number (M-Pesa needs one)"
    assert 'data-testid="mpesa-confirmed"' not in r.text
