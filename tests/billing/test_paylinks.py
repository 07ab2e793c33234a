"""Pay links: signed, expiring, revocable; the member pays on the public page."""

import io
import re

import httpx
import pytest
from pypdf import PdfReader

from portal.documents import store as document_store
from portal.settings import get_settings
from tables.billing import Invoice, PayLink, Payment
from tests.billing.helpers import assert_books_agree, invoice_for, pay
from tests.factories import make_member
from tests.support.client import PortalClient, field_error
from tests.support.live import PHONES, wait_for_status


async def _link_for(alice, invoice_id: int) -> str:
    r = await alice.post(f"/invoices/{invoice_id}/paylink")
    assert r.status_code == 303
    page = await alice.get(r.headers["location"])
    assert 'data-testid="paylink-qr"' in page.text and "<svg" in page.text
    return re.search(r'value="(http[^"]+/pay/[^"]+)"', page.text).group(1)


async def test_a_member_opens_the_link_and_sees_what_is_owed_and_nothing_else(app, alice):
    member = await make_member("Wanjiku", "Kamau")
    inv = await invoice_for(member, 3000)
    await pay(member, 1000)
    url = await _link_for(alice, inv["id"])
    token = url.rsplit("/pay/", 1)[1]
    async with PortalClient(app) as phone:
        page = await phone.get(f"/pay/{token}")
        assert page.status_code == 200
        assert "Hi Wanjiku" in page.text and 'data-testid="owed">KES 2,000<' in page.text
        assert "Kamau" not in page.text  # first name only


async def test_expired_revoked_and_tampered_links_reveal_nothing(app, alice):
    member = await make_member("Wanjiku", "Kamau")
    inv = await invoice_for(member, 3000)
    first = (await _link_for(alice, inv["id"])).rsplit("/pay/", 1)[1]
    second = (await _link_for(alice, inv["id"])).rsplit("/pay/", 1)[1]
    async with PortalClient(app) as phone:
        replaced = await phone.get(f"/pay/{first}")
        assert replaced.status_code == 410 and "replaced by a newer link" in replaced.text
        link_id, secret, sig = second.split(".")
        # Its first character changed (always to another one: writing "x" over the last one left
        # the link as it was whenever it already ended in "x", one run in 64, and the page opened).
        other = "B" if secret[0] == "A" else "A"
        tampered = await phone.get(f"/pay/{link_id}.{other}{secret[1:]}.{sig}")
        assert tampered.status_code == 404 and "not a valid payment link" in tampered.text
        assert "Wanjiku" not in tampered.text and "3,000" not in tampered.text
        await PayLink.raw("UPDATE pay_link SET expires_at = now() - interval '1 minute'")
        expired = await phone.get(f"/pay/{second}")
        assert expired.status_code == 410 and "expired" in expired.text and "Wanjiku" not in expired.text
    assert (await alice.post(f"/invoices/{inv['id']}/paylink/revoke")).status_code == 303


async def test_staff_revoke_a_link_and_it_stops_working(app, alice):
    member = await make_member()
    inv = await invoice_for(member, 3000)
    token = (await _link_for(alice, inv["id"])).rsplit("/pay/", 1)[1]
    assert (await alice.post(f"/invoices/{inv['id']}/paylink/revoke")).status_code == 303
    page = await alice.get(f"/invoices/{inv['id']}")
    assert 'data-testid="no-paylink"' in page.text and token not in page.text  # no new link behind staff's back
    async with PortalClient(app) as phone:
        assert (await phone.get(f"/pay/{token}")).status_code == 410


def _pdf_text(pdf: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).replace("\n", "")


async def test_the_invoice_pdf_carries_the_live_link(alice):
    member = await make_member()
    inv = await invoice_for(member, 3000)
    page = await alice.get(f"/invoices/{inv['id']}")  # an open invoice always has a live link
    url = re.search(r'value="(http[^"]+/pay/[^"]+)" data-testid="paylink-url"', page.text).group(1)
    subject = await document_store.invoice_subject(inv["id"])
    await document_store.render_and_store("invoice", subject)
    _, pdf = await document_store.content("invoice", subject)
    text = _pdf_text(pdf)
    assert "Scan to pay" in text and url.rsplit("/", 1)[1] in text.replace(" ", "")
    # A new link is a new version of the PDF, printing the new link.
    newer = await _link_for(alice, inv["id"])
    assert newer != url and await document_store.invoice_subject(inv["id"]) != subject
    await pay(member, 3000)
    assert ":link" not in await document_store.invoice_subject(inv["id"])  # paid: nothing to scan


@pytest.fixture
def tight_limits(monkeypatch):
    """An app whose pay page limits are small enough to reach in a test."""
    from portal.app import create_app

    monkeypatch.setenv("PAY_RATE_PER_MINUTE", "6")
    monkeypatch.setenv("PAY_BAD_LINKS_PER_HOUR", "3")
    monkeypatch.setenv("PAY_ATTEMPTS_PER_HOUR", "2")
    get_settings.cache_clear()
    yield create_app(get_settings(), manage_resources=False)
    monkeypatch.undo()
    get_settings.cache_clear()


async def test_guessing_links_is_cut_off(tight_limits, alice):
    member = await make_member()
    inv = await invoice_for(member, 3000)
    token = (await _link_for(alice, inv["id"])).rsplit("/pay/", 1)[1]
    async with PortalClient(tight_limits) as phone:
        assert (await phone.get(f"/pay/{token}")).status_code == 200
        for guess in range(3):
            assert (await phone.get(f"/pay/{guess + 1}.guess{guess}.abc")).status_code == 404
        refused = await phone.get(f"/pay/{token}")  # even a good link, from an address that has been guessing
        assert refused.status_code == 429 and 'data-testid="too-many"' in refused.text
        assert refused.headers["retry-after"] == "60" and "3,000" not in refused.text


async def test_one_address_gets_a_generous_but_finite_number_of_requests(tight_limits, alice):
    member = await make_member()
    inv = await invoice_for(member, 3000)
    token = (await _link_for(alice, inv["id"])).rsplit("/pay/", 1)[1]
    async with PortalClient(tight_limits) as phone:
        codes = [(await phone.get(f"/pay/{token}")).status_code for _ in range(7)]
    assert codes == [200] * 6 + [429]


async def test_one_link_cannot_spam_the_members_phone_with_prompts(tight_limits, alice):
    member = await make_member(phone=PHONES["success"])
    inv = await invoice_for(member, 3000)
    token = (await _link_for(alice, inv["id"])).rsplit("/pay/", 1)[1]
    async with PortalClient(tight_limits) as phone:
        for attempt in range(2):
            r = await phone.post(f"/pay/{token}/mpesa", {"phone": "0700 000 001", "attempt": str(attempt)})
            assert r.status_code == 303
        third = await phone.post(f"/pay/{token}/mpesa", {"phone": "0700 000 001", "attempt": "3"})
        assert third.status_code == 429 and "wait a while" in third.text and 'value="0700 000 001"' in third.text


async def test_the_pay_page_says_under_the_phone_that_m_pesa_needs_safaricom(app, alice):
    member = await make_member("Brian", "Otieno", phone="254733123456")
    inv = await invoice_for(member, 3000)
    token = (await _link_for(alice, inv["id"])).rsplit("/pay/", 1)[1]
    async with PortalClient(app) as phone:
        assert 'value="0733 123 456" data-testid="pay-phone"' in (await phone.get(f"/pay/{token}")).text
        r = await phone.post(f"/pay/{token}/mpesa", {"phone": "0733 123 456", "attempt": "1"})
    assert r.status_code == 422
    assert field_error(r.text, "phone") == "0733 123 456 is an Airtel number; M-Pesa prompts need a Safaricom number"
    assert 'value="0733 123 456" data-testid="pay-phone"' in r.text and 'role="alert"' not in r.text
    assert await Payment.count() == 0


async def test_the_pay_page_keeps_each_method_to_its_limit(app, alice):
    member = await make_member("Brian", "Otieno")
    inv = await invoice_for(member, 400000)  # a company's year for its staff, say
    token = (await _link_for(alice, inv["id"])).rsplit("/pay/", 1)[1]
    async with PortalClient(app) as phone:
        prompt = await phone.post(f"/pay/{token}/mpesa", {"phone": "0712 345 678", "attempt": "1"})
        assert prompt.status_code == 422
        assert "M-Pesa payments are limited to KES 250,000 each" in prompt.text
        assert 'value="0712 345 678" data-testid="pay-phone"' in prompt.text
        card = await phone.post(f"/pay/{token}/card", {"attempt": "2"})
        assert card.status_code == 422 and "Card payments are limited to KES 300,000 each" in card.text
    desk = await alice.post(f"/members/{member}/card", {"amount": "400000", "idempotency_key": "desk-card"})
    assert desk.status_code == 422 and field_error(desk.text, "card") == "Card payments are limited to KES 300,000 each"
    assert await Payment.count() == 0  # nothing asked of Safaricom or Flutterwave


async def test_a_member_is_not_asked_to_confirm_a_large_invoice(app, alice):
    member = await make_member("Brian", "Otieno")
    inv = await invoice_for(member, 120000)  # above LARGE_AMOUNT_CONFIRM: a question for staff, not members
    token = (await _link_for(alice, inv["id"])).rsplit("/pay/", 1)[1]
    async with PortalClient(app) as phone:
        r = await phone.post(f"/pay/{token}/mpesa", {"phone": "0712 345 678", "attempt": "1"})
    assert r.status_code == 303
    assert (await Payment.select(Payment.amount).first())["amount"] == 120000


async def test_the_member_pays_by_mpesa_from_the_link(live, worker, alice):
    member = await make_member("Achieng", "Odhiambo", phone=PHONES["success"])
    inv = await invoice_for(member, 3000)
    token = (await _link_for(alice, inv["id"])).rsplit("/pay/", 1)[1]
    async with httpx.AsyncClient(base_url=live.portal) as phone:
        await phone.get(f"/pay/{token}")
        csrf = phone.cookies["portal_csrf"]
        r = await phone.post(f"/pay/{token}/mpesa", data={"phone": "0700 000 001", "_csrf_token": csrf})
        assert r.status_code == 303
        pid = int(r.headers["location"].rsplit("/", 1)[1])
        await wait_for_status(pid, {"completed"})
        status = await phone.get(r.headers["location"])
        assert 'data-status="completed"' in status.text and 'data-testid="thank-you"' in status.text
        receipt = re.search(r'data-testid="receipt-number">([^<]+)<', status.text).group(1)
        pdf = await phone.get(f"{r.headers['location']}/receipt.pdf")
        assert pdf.headers["content-type"] == "application/pdf" and receipt in _pdf_text(pdf.content)
        again = await phone.get(f"/pay/{token}")
        assert 'data-testid="settled"' in again.text
        # The link shows only its own invoice's payments.
        other = await make_member()
        await invoice_for(other, 500)
        elsewhere = (await pay(other, 500)).payment["id"]
        assert (await phone.get(f"/pay/{token}/payments/{elsewhere}")).status_code == 404
        assert (await phone.get(f"/pay/{token}/payments/{elsewhere}/receipt.pdf")).status_code == 404


async def _pay_by_card_from_the_link(card_live, alice, owed: int, scenario: str = "normal") -> tuple[str, str]:
    """The member opens the link, pays by card on the sandbox's checkout and comes back: (the
    status page's text, the link's token)."""
    member = await make_member("Achieng", "Odhiambo")
    inv = await invoice_for(member, owed)
    token = (await _link_for(alice, inv["id"])).rsplit("/pay/", 1)[1]
    async with httpx.AsyncClient(base_url=card_live.portal) as phone:
        await phone.get(f"/pay/{token}")
        r = await phone.post(f"/pay/{token}/card", data={"_csrf_token": phone.cookies["portal_csrf"]})
        assert r.status_code == 303 and r.headers["location"].startswith(card_live.sandbox + "/checkout/")
        tx_ref = (await Payment.select(Payment.gateway_request).where(Payment.method == "card").first())["gateway_request"]
        async with httpx.AsyncClient() as sandbox:  # the member taps the sandbox's success card
            done = (await sandbox.post(f"{card_live.sandbox}/_sandbox/flutterwave/complete",
                                       json={"tx_ref": tx_ref, "card": "success", "scenario": scenario})).json()
        assert done["redirect_url"].startswith(f"{card_live.portal}/pay/{token}/card/return?")
        back = await phone.get(done["redirect_url"])  # the sandbox's redirect, followed by the phone
        assert back.status_code == 303 and f"/pay/{token}/payments/" in back.headers["location"]
        return (await phone.get(back.headers["location"])).text, token


async def test_the_member_pays_by_card_from_the_link(card_live, alice):
    status, _ = await _pay_by_card_from_the_link(card_live, alice, 2500)
    assert 'data-testid="thank-you"' in status and "KES 2,500" in status and "ending" in status
    assert 'data-testid="still-due"' not in status


async def test_a_short_card_charge_says_what_is_still_due(card_live, alice):
    """Flutterwave charged a tenth of what was asked (the sandbox's "tampered"): the member is
    thanked for what arrived and told what is still due, with the way to pay it."""
    status, token = await _pay_by_card_from_the_link(card_live, alice, 2500, scenario="tampered")
    assert 'data-testid="thank-you"' in status and "We have received KES 250." in status
    still_due = re.search(r'data-testid="still-due">(.*?)</p>', status, re.S).group(1)
    assert "KES 2,250 is still due" in still_due and f'href="/pay/{token}"' in still_due


async def test_a_big_gyms_invoice_pdf_is_stored_under_its_full_subject(alice):
    # Found on the demo gym: invoice 14663's subject (with its link) overflowed the column.
    await Invoice.raw("ALTER SEQUENCE invoice_id_seq RESTART WITH 9999990")
    await PayLink.raw("ALTER SEQUENCE pay_link_id_seq RESTART WITH 9999990")
    member = await make_member()
    inv = await invoice_for(member, 1234567)
    await pay(member, 1000, invoice_id=inv["id"])
    subject = await document_store.invoice_subject(inv["id"])
    assert len(subject) > 40, subject  # the old column's width
    stored = await document_store.render_and_store("invoice", subject)
    assert stored["size"] > 1000 and (await document_store.content("invoice", subject))[1].startswith(b"%PDF")


def _attempt(page: str) -> str:
    return re.search(r'name="attempt" value="([^"]+)"', page).group(1)


async def test_a_cancelled_prompt_leaves_the_link_usable(live, worker, alice):
    member = await make_member("Achieng", "Odhiambo", phone=PHONES["success"])
    inv = await invoice_for(member, 3000)
    token = (await _link_for(alice, inv["id"])).rsplit("/pay/", 1)[1]
    async with httpx.AsyncClient(base_url=live.portal) as phone:
        page = (await phone.get(f"/pay/{token}")).text
        form = {"phone": "0700 000 002", "attempt": _attempt(page), "_csrf_token": phone.cookies["portal_csrf"]}
        first, double = [await phone.post(f"/pay/{token}/mpesa", data=form) for _ in range(2)]
        assert first.headers["location"] == double.headers["location"]  # one page, one payment
        cancelled = int(first.headers["location"].rsplit("/", 1)[1])
        await wait_for_status(cancelled, {"cancelled"})
        assert 'href="/pay/' in (await phone.get(first.headers["location"])).text  # "Try again"

        page = (await phone.get(f"/pay/{token}")).text  # the member opens the link again
        again = await phone.post(f"/pay/{token}/mpesa", data={**form, "phone": "0700 000 001",
                                                               "attempt": _attempt(page)})
        paid = int(again.headers["location"].rsplit("/", 1)[1])
        assert paid != cancelled
        await wait_for_status(paid, {"completed"})
    statuses = await Payment.select(Payment.status).where(Payment.invoice == inv["id"]).order_by(Payment.id)
    assert [s["status"] for s in statuses] == ["cancelled", "completed"]


async def test_a_card_checkout_left_without_paying_leaves_the_link_usable(card_live, alice):
    """The member leaves Flutterwave's page (Cancel), reopens the link and pays by card: a new
    checkout starts; the abandoned one moves nothing until Flutterwave says so (the card check)."""
    member = await make_member("Achieng", "Odhiambo")
    inv = await invoice_for(member, 2500)
    token = (await _link_for(alice, inv["id"])).rsplit("/pay/", 1)[1]
    async with httpx.AsyncClient(base_url=card_live.portal) as phone, httpx.AsyncClient() as sandbox:
        async def pay_by_card(card: str) -> httpx.Response:
            page = (await phone.get(f"/pay/{token}")).text
            r = await phone.post(f"/pay/{token}/card", data={"attempt": _attempt(page),
                                                             "_csrf_token": phone.cookies["portal_csrf"]})
            assert r.status_code == 303 and r.headers["location"].startswith(card_live.sandbox + "/checkout/")
            tx_ref = (await Payment.select(Payment.gateway_request).where(Payment.method == "card")
                      .order_by(Payment.id, ascending=False).first())["gateway_request"]
            done = (await sandbox.post(f"{card_live.sandbox}/_sandbox/flutterwave/complete",
                                       json={"tx_ref": tx_ref, "card": card})).json()
            return await phone.get(done["redirect_url"])

        left = await pay_by_card("cancel")
        assert left.status_code == 200 and "You can try again" in left.text and 'name="attempt"' in left.text
        back = await pay_by_card("success")
        assert back.status_code == 303
        status = await phone.get(back.headers["location"])
        assert 'data-testid="thank-you"' in status.text and "KES 2,500" in status.text
    rows = await Payment.select(Payment.status, Payment.gateway_request).where(Payment.invoice == inv["id"]).order_by(Payment.id)
    assert [r["status"] for r in rows] == ["processing", "completed"] and rows[0]["gateway_request"] != rows[1]["gateway_request"]
    assert (await Invoice.select(Invoice.status).where(Invoice.id == inv["id"]).first())["status"] == "paid"
    await assert_books_agree()
