"""Every new invoice reaches the member with its pay link: by SMS (the default), email, or both."""

import io
import re
from urllib.parse import urlsplit

from pypdf import PdfReader

from portal.gateways.africastalking import sms_parts
from portal.messages import delivery
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member, make_plan
from tests.messages.conftest import messages_of, sandbox_sms, wait_for_message

PAY_LINK = re.compile(r"http://127\.0\.0\.1:\d+/pay/\d+\.[A-Za-z0-9_-]+\.[0-9a-f]{20}")


async def test_a_new_invoice_texts_the_amount_and_pay_link(at_live, alice, worker):
    member = await make_member("Otieno", "Barasa", phone="254711222333")
    plan = await make_plan("Monthly", "3000")

    r = await alice.post(f"/members/{member}/memberships", {"plan": str(plan), "start_date": "2026-12-01"})
    assert r.status_code == 303

    (message,) = await messages_of(member=member)
    assert (message["kind"], message["channel"], message["to_address"]) == ("invoice", "sms", "+254711222333")
    assert message["dedupe_key"] == f"invoice:invoice:{message['invoice']}:sms"
    message = await wait_for_message(message["id"], {"sent", "delivered"})

    (sms,) = sandbox_sms(at_live.sandbox, "+254711222333")
    # Exactly the documented request (gateways.md §3.1): form-encoded username, to, message
    # (no `from` without a sender id), the API key and Accept: application/json.
    assert sms["request"]["form"] == {"username": "sandbox", "to": "+254711222333", "message": message["body_text"]}
    headers = sms["request"]["headers"]
    assert headers["apikey"] == "sandbox-at-key" and headers["accept"] == "application/json"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert sms["messageId"] == message["provider_id"] and sms["status"] == "Success"

    text = message["body_text"]
    assert "KES 3,000" in text and PAY_LINK.search(text), text
    assert (sms["encoding"], sms["parts"]) == ("GSM-7", 1) and sms_parts(text) == ("GSM-7", 1)
    assert len(text) <= 160, text
    # The link in the SMS is the invoice's live pay link: it opens the pay page.
    page = await alice.get(urlsplit(PAY_LINK.search(text).group(0)).path)
    assert page.status_code == 200 and "KES 3,000" in page.text


async def test_an_invoice_email_has_the_pay_link_and_the_pdf(alice, worker, smtp_server):
    member = await make_member("Njeri", "Mwangi", email="njeri@example.com", message_channel="email")
    plan = await make_plan("Quarterly", "8000", months=3)

    await alice.post(f"/members/{member}/memberships", {"plan": str(plan), "start_date": "2026-12-01"})

    (_, rcpt, msg), = await smtp_server.wait_for(1)
    assert rcpt == ["njeri@example.com"]
    assert msg["Subject"].startswith("Invoice INV-") and "KES 8,000 due" in msg["Subject"]
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    link = re.search(r"http://\S+/pay/\S+", text).group(0)
    assert f'href="{link}"' in html and "Pay KES 8,000 by M-Pesa or card" in html
    (pdf,) = list(msg.iter_attachments())
    assert pdf.get_filename().startswith("INV-")
    pdf_text = PdfReader(io.BytesIO(pdf.get_content())).pages[0].extract_text()
    assert "Njeri Mwangi" in pdf_text and "8,000" in pdf_text
    assert await messages_of(member=member, channel="sms") == []


async def test_both_means_an_email_and_an_sms(at_live, alice, worker, smtp_server):
    member = await make_member(phone="254722333444", email="both@example.com", message_channel="both")

    await invoice_for(member, 1500)
    from portal.messages import outbox
    await outbox.nudge_invoice((await messages_of(member=member))[0]["invoice"])

    rows = await messages_of(member=member)
    assert sorted(r["channel"] for r in rows) == ["email", "sms"]
    for row in rows:
        await wait_for_message(row["id"], {"sent", "delivered"})
    assert len(smtp_server.messages) == 1 and len(sandbox_sms(at_live.sandbox, "+254722333444")) == 1


async def test_email_chosen_without_an_address_falls_back_to_sms(db):
    member = await make_member(message_channel="email")
    await invoice_for(member, 1500)
    assert [r["channel"] for r in await messages_of(member=member)] == ["sms"]


async def test_an_invoice_paid_before_its_message_goes_is_not_sent(db):
    member = await make_member(email="paid@example.com", message_channel="email")
    invoice = await invoice_for(member, 1500)
    await pay(member, 1500)

    (message,) = await messages_of(invoice=invoice["id"])
    assert await delivery.deliver(message["id"]) == "skipped"

    (message,) = await messages_of(invoice=invoice["id"])
    assert message["status"] == "skipped" and "is paid" in message["last_error"]
    assert message["body_text"] == ""


async def test_an_invoice_rolled_back_leaves_no_message(db):
    from piccolo.engine import engine_finder

    from portal.billing.invoices import Line, issue_invoice, lock_member
    from tests.billing.helpers import kes

    member = await make_member()
    try:
        async with engine_finder().transaction():
            await lock_member(member)
            await issue_invoice(member, [Line("Towel", kes(200))])
            raise RuntimeError("the caller failed after issuing")
    except RuntimeError:
        pass
    assert await messages_of(member=member) == []
