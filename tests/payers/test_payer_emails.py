"""An invoice addressed to a payer with an email address goes to the payer by email (real SMTP
server), greeting the payer and naming the member; without one, the member hears of it as before."""

from portal.messages import outbox
from tests.billing.helpers import invoice_for
from tests.factories import make_member
from tests.messages.conftest import messages_of, smtp_server  # noqa: F401
from tests.payers.helpers import company, link, parent


async def test_an_invoice_to_a_company_goes_to_its_accounts_email(alice, worker, smtp_server):  # noqa: F811
    acme = await company(email="accounts@acme.co.ke")
    member = await make_member("Njeri", "Kariuki", email="njeri@example.com", message_channel="sms")
    await link(acme, member)
    inv = await invoice_for(member, 8000)
    await outbox.nudge_invoice(inv["id"])  # after the commit, as the pages that issue invoices do

    (message,) = await messages_of(member=member)
    assert (message["kind"], message["channel"], message["to_address"]) == ("invoice", "email", "accounts@acme.co.ke")
    (_, rcpt, msg), = await smtp_server.wait_for(1)
    assert rcpt == ["accounts@acme.co.ke"]
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "Hello Acme Logistics Ltd," in text and "This invoice is for the membership of Njeri Kariuki" in text


async def test_a_parent_without_email_leaves_the_member_texted_as_before(db):
    mum = await parent()
    member = await make_member("Kiprono", "Mutua", phone="254711000222")
    await link(mum, member)
    await invoice_for(member, 3000)
    (message,) = await messages_of(member=member)
    assert (message["channel"], message["to_address"]) == ("sms", "+254711000222")
