"""Every completed payment sends the member their receipt by email, with the A4 PDF attached."""

import io
import json

from pypdf import PdfReader

from portal.documents.requests import request_receipts
from tests.billing.helpers import invoice_for
from tests.factories import make_member
from tests.messages.conftest import SMTP_PASSWORD, SMTP_USER, messages_of, wait_for_message


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


async def test_a_desk_payment_emails_the_receipt_with_its_pdf(alice, worker, smtp_server, settings):
    member = await make_member("Wanjiku", "Kamau", number="PTF0042", email="wanjiku@example.com")
    invoice = await invoice_for(member, 3000)

    r = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "1000", "idempotency_key": "k1"})
    payment_id = int(r.headers["location"].rsplit("/", 1)[1])

    (mail_from, rcpt_tos, msg), = await smtp_server.wait_for(1)
    assert smtp_server.logins == [(SMTP_USER, SMTP_PASSWORD)]  # credentials decoded from SMTP_URL
    assert rcpt_tos == ["wanjiku@example.com"] and msg["To"] == "wanjiku@example.com"
    assert "receipts@example.com" in msg["From"] and mail_from == "receipts@example.com"
    assert msg["Subject"].startswith("Receipt RCP-") and "KES 1,000 received" in msg["Subject"]

    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "Hello Wanjiku Kamau" in text and "KES 1,000" in text and invoice["number"] in text
    assert "Still owed after this payment: KES 2,000" in text
    assert "<table" in html and "max-width:600px" in html and "KES 1,000" in html

    (pdf,) = list(msg.iter_attachments())
    assert pdf.get_content_type() == "application/pdf" and pdf.get_filename().startswith("RCP-")
    pdf_text = _pdf_text(pdf.get_content())
    assert "Wanjiku Kamau" in pdf_text and "PTF0042" in pdf_text and "KES 1,000" in pdf_text
    assert invoice["number"] in pdf_text and "KES 2,000" in pdf_text

    (message,) = await messages_of(payment=payment_id)
    message = await wait_for_message(message["id"], {"sent"})
    assert (message["kind"], message["channel"], message["dedupe_key"]) == ("receipt", "email", f"receipt:payment:{payment_id}:email")
    assert message["provider_id"] == msg["Message-ID"].strip("<>")
    assert json.loads(message["attachments"]) == [{"kind": "receipt", "subject": f"payment:{payment_id}"}]


async def test_a_receipt_is_emailed_once_however_often_it_is_requested(alice, worker, smtp_server):
    member = await make_member(email="once@example.com")
    await invoice_for(member, 3000)
    r = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "3000", "idempotency_key": "k2"})
    payment_id = int(r.headers["location"].rsplit("/", 1)[1])
    await smtp_server.wait_for(1)

    for _ in range(3):  # the sweeper, a retried callback, a second worker...
        await request_receipts(payment_id)

    assert len(await messages_of(payment=payment_id)) == 1
    await wait_for_message((await messages_of(payment=payment_id))[0]["id"], {"sent"})
    assert len(smtp_server.messages) == 1


async def test_a_member_without_email_gets_no_receipt_message(alice, worker):
    member = await make_member()
    await invoice_for(member, 3000)
    r = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "3000", "idempotency_key": "k3"})
    payment_id = int(r.headers["location"].rsplit("/", 1)[1])

    assert await messages_of(payment=payment_id) == []
