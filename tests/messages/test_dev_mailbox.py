"""With no SMTP server configured, email is kept in the dev mailbox: staff read it in the portal,
as the member would see it, and open its attachments."""

import io

from pypdf import PdfReader

from tests.billing.helpers import invoice_for
from tests.factories import make_member
from tests.messages.conftest import messages_of, wait_for_message


async def test_a_receipt_lands_in_the_dev_mailbox(alice, worker, settings):
    assert not settings.smtp_url
    member = await make_member("Achieng", "Otieno", email="achieng@example.com")
    await invoice_for(member, 2500)
    r = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "2500", "idempotency_key": "d1"})
    payment_id = int(r.headers["location"].rsplit("/", 1)[1])
    (message,) = await messages_of(payment=payment_id)
    message = await wait_for_message(message["id"], {"sent"})
    assert message["provider_id"] == "dev-mailbox"

    page = await alice.get(f"/messages/{message['id']}")
    assert page.status_code == 200
    assert 'data-testid="dev-mailbox-note"' in page.text
    assert "achieng@example.com" in page.text and message["subject"] in page.text
    assert f'src="/messages/{message["id"]}/html"' in page.text and 'sandbox="' in page.text
    assert f'href="/documents/receipt/payment:{payment_id}"' in page.text

    html = await alice.get(f"/messages/{message['id']}/html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    csp = html.headers["content-security-policy"]
    assert csp.startswith("sandbox") and "script-src" not in csp and "default-src 'none'" in csp
    assert "Hello Achieng Otieno" in html.text and "KES 2,500" in html.text

    pdf = await alice.get(f"/documents/receipt/payment:{payment_id}")
    assert pdf.headers["content-type"] == "application/pdf"
    assert "Achieng Otieno" in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()


async def test_the_mailbox_is_for_staff_only(anon, alice, worker):
    member = await make_member(email="x@example.com")
    await invoice_for(member, 100)
    (message,) = await messages_of(member=member)
    for path in (f"/messages/{message['id']}", f"/messages/{message['id']}/html", "/messages"):
        r = await anon.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
