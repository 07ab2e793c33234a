"""The desk's queue (issue 15): type a name, Enter, the amount owed is already there, Enter, the
80 mm slip prints. Over HTTP: the search's Enter, the form's defaults, the record-and-print answer
and the slip page."""

from urllib.parse import quote

from tables.billing import Payment
from tests.billing.helpers import invoice_for
from tests.factories import make_member


async def test_enter_in_the_search_opens_the_only_match_at_its_payment_form(alice):
    one = await make_member("Wanjiku", "Kamau")
    await make_member("Otieno", "Odhiambo")
    await make_member("Otieno", "Onyango")
    r = await alice.get("/members/go?q=wanjiku")
    assert (r.status_code, r.headers["location"]) == (303, f"/members/{one}#pay")
    several = await alice.get("/members/go?q=otieno")
    assert (several.status_code, several.headers["location"]) == (303, "/members?q=otieno")
    none = await alice.get("/members/go?q=" + quote("zzz & co"))
    assert none.headers["location"] == "/members?q=zzz+%26+co"
    assert (await alice.get("/members/go")).headers["location"] == "/members"
    page = await alice.get("/members")
    assert 'action="/members/go"' in page.text
    listed = await alice.get("/members?q=otieno", htmx=True)
    assert listed.text.count('#pay" data-testid="member-link"') == 2  # arrow keys + Enter land there too


async def test_the_form_holds_what_is_owed_and_enter_records_and_prints(alice):
    member = await make_member()
    await invoice_for(member, 3000)
    page = await alice.get(f"/members/{member}")
    assert 'id="f-amount" name="amount" inputmode="decimal" value="3000.00"' in page.text
    # Enter presses the form's first button: record and print.
    first_button = page.text.index('data-testid="record-and-print"')
    assert first_button < page.text.index('data-testid="record-payment"')
    form = {"method": "cash", "amount": "3000.00", "idempotency_key": "queue-1", "then": "slip"}
    r = await alice.post(f"/members/{member}/payments", form)
    payment = await Payment.select().where(Payment.member == member).first()
    assert (r.status_code, r.headers["location"]) == (303, f"/payments/{payment['id']}/slip?print=1")
    # The plain button still goes to the payment's page.
    other = await alice.post(f"/members/{member}/payments", {**form, "idempotency_key": "queue-2", "then": ""})
    assert other.headers["location"].startswith("/payments/") and "slip" not in other.headers["location"]


async def test_the_slip_page_is_the_80mm_receipt_and_prints_itself_when_asked(alice, anon):
    member = await make_member("Wanjiku", "Kamau")
    await invoice_for(member, 3000)
    await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "1000", "idempotency_key": "slip-1"})
    payment = await Payment.select().where(Payment.member == member).first()
    slip = await alice.get(f"/payments/{payment['id']}/slip?print=1")
    assert slip.status_code == 200 and slip.headers["content-type"].startswith("text/html")
    for shown in (payment["receipt_number"], "Wanjiku Kamau", "KES 1,000", "BALANCE STILL OWED", "KES 2,000"):
        assert shown in slip.text, shown
    assert 'data-autoprint="1"' in slip.text and 'href="/static/pdf.css"' in slip.text and "/static/slip.js" in slip.text
    assert 'data-autoprint="0"' in (await alice.get(f"/payments/{payment['id']}/slip")).text
    assert f'href="/payments/{payment["id"]}/slip?print=1"' in (await alice.get(f"/payments/{payment['id']}")).text
    assert (await alice.get("/payments/999999/slip")).status_code == 404
    assert (await anon.get(f"/payments/{payment['id']}/slip")).status_code in (302, 303, 401)
