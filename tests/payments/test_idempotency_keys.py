"""A form sent twice records one payment; a form sent again after Back *and changed* is refused
with what the first send recorded and a fresh form, never answered with the first payment."""

from tables.billing import Invoice, Payment
from tests.billing.helpers import invoice_for
from tests.factories import make_member
from tests.support.client import field_value


def _form(html: str, testid: str) -> str:
    start = html.index(f'data-testid="{testid}"')
    return html[start:html.index("</form>", start)]


async def test_back_then_a_changed_desk_payment_is_refused_and_a_fresh_form_offered(alice):
    member = await make_member()
    first = await alice.post(f"/members/{member}/payments",
                             {"idempotency_key": "desk-back", "method": "cash", "amount": "100"})
    assert first.status_code == 303
    # Back: the cached page still holds the same key; the desk changes amount and method.
    changed = {"idempotency_key": "desk-back", "method": "bank", "amount": "250", "reference": "EQ123"}
    refused = await alice.post(f"/members/{member}/payments", changed)
    assert refused.status_code == 409
    assert "already been sent: it recorded KES 100" in refused.text
    assert f'href="{first.headers["location"]}" data-testid="reused-payment"' in refused.text
    form = _form(refused.text, "payment-form")
    fresh_key = field_value(form, "idempotency_key")
    assert fresh_key and fresh_key != "desk-back"
    assert (field_value(form, "amount"), field_value(form, "reference")) == ("250", "EQ123")
    assert [(p["amount"], p["method"]) for p in await Payment.select(Payment.amount, Payment.method)] == [(100, "cash")]

    # The fresh form records the 250; sending *it* twice still records it once.
    for _ in range(2):
        again = await alice.post(f"/members/{member}/payments", {**changed, "idempotency_key": fresh_key})
        assert again.status_code == 303
    rows = await Payment.select(Payment.amount, Payment.method, Payment.reference).order_by(Payment.id)
    assert [(r["amount"], r["method"], r["reference"]) for r in rows] == [(100, "cash", ""), (250, "bank", "EQ123")]


async def test_the_same_desk_form_sent_twice_unchanged_is_one_payment(alice):
    member = await make_member()
    form = {"idempotency_key": "desk-twice", "method": "cheque", "amount": "1,500", "reference": " CHQ 88 "}
    first = await alice.post(f"/members/{member}/payments", form)
    second = await alice.post(f"/members/{member}/payments", {**form, "amount": "1500.00", "reference": "CHQ 88"})
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert await Payment.count() == 1


async def test_back_then_a_changed_mpesa_prompt_is_refused(alice, queue):
    member = await make_member()
    inv = await invoice_for(member, 3000)
    first = await alice.post(f"/members/{member}/mpesa",
                             {"idempotency_key": "stk-back", "phone": "0712345678", "amount": "3000"})
    assert first.status_code == 303
    refused = await alice.post(f"/members/{member}/mpesa", {"idempotency_key": "stk-back", "phone": "0712345678",
                                                            "amount": "1000", "invoice": str(inv["id"])})
    assert refused.status_code == 409 and "it recorded KES 3,000" in refused.text
    assert field_value(_form(refused.text, "mpesa-form"), "idempotency_key") != "stk-back"
    assert field_value(_form(refused.text, "mpesa-form"), "amount") == "1000"
    assert await Payment.count() == 1


async def test_a_desk_form_that_paid_its_invoice_sent_again_is_the_same_payment_not_an_error(alice):
    # Found by the chain of gyms (tests/ops/test_chain.py): the same form on two tills at once.
    member = await make_member()
    inv = await invoice_for(member, 1000)
    form = {"idempotency_key": "desk-paid", "method": "cash", "amount": "1160", "invoice": str(inv["id"])}
    first = await alice.post(f"/members/{member}/payments", form)
    assert first.status_code == 303
    assert (await Invoice.select(Invoice.status).where(Invoice.id == inv["id"]).first())["status"] == "paid"
    again = await alice.post(f"/members/{member}/payments", form)
    assert again.status_code == 303, again.text
    assert again.headers["location"] == first.headers["location"]
    assert await Payment.count() == 1
    # A new form for the paid invoice is still refused.
    other = await alice.post(f"/members/{member}/payments", {**form, "idempotency_key": "desk-paid-2"})
    assert other.status_code == 422 and "That invoice is not open" in other.text
    assert await Payment.count() == 1


async def test_an_mpesa_form_sent_again_after_its_invoice_was_paid_is_the_same_prompt(alice, queue):
    member = await make_member()
    inv = await invoice_for(member, 1000)
    form = {"idempotency_key": "stk-paid", "phone": "0712345678", "amount": "1160", "invoice": str(inv["id"])}
    first = await alice.post(f"/members/{member}/mpesa", form)
    assert first.status_code == 303
    paid = await alice.post(f"/members/{member}/payments", {"idempotency_key": "desk-pays-it", "method": "cash",
                                                            "amount": "1160", "invoice": str(inv["id"])})
    assert paid.status_code == 303
    again = await alice.post(f"/members/{member}/mpesa", form)
    assert again.status_code == 303, again.text
    assert again.headers["location"] == first.headers["location"]
    assert await Payment.count() == 2
