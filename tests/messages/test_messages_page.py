"""The messages page: every email and SMS, filtered; failures with a Resend button; a fixed
number of queries however many messages there are."""

import re

import pytest

from portal.messages import delivery
from tables.audit import AuditLog
from tables.members import Member
from tables.messages import Message
from tests.billing.helpers import invoice_for
from tests.factories import make_member
from tests.messages.conftest import messages_of, sandbox_sms, wait_for_message


async def _messages(count: int) -> None:
    member = await make_member(email="many@example.com")
    rows = [Message(member=member, channel="email" if i % 2 else "sms", kind="invoice" if i % 3 else "receipt",
                    to_address="many@example.com" if i % 2 else "+254712000001", dedupe_key=f"many:{i}",
                    status="failed" if i % 5 == 0 else "sent", subject=f"Subject {i}", last_error="boom" if i % 5 == 0 else "")
            for i in range(count)]
    await Message.insert(*rows)


@pytest.mark.parametrize("count", [5, 120])
async def test_the_list_costs_the_same_queries_at_any_size(alice, count):
    await _messages(count)
    for path in ("/messages", "/messages?channel=sms", "/messages?status=problem&kind=invoice&page=2"):
        r = await alice.get(path)
        assert r.status_code == 200, path
        # session, the count, the page of rows (member names joined)
        assert int(r.headers["x-query-count"]) == 3, path


async def test_filters(alice):
    await _messages(30)
    r = await alice.get("/messages?channel=email&status=failed", htmx=True)
    assert r.status_code == 200 and "<html" not in r.text  # htmx gets the table alone
    assert 'data-testid="message-count">3 messages' in r.text  # i = 5, 15, 25
    assert r.text.count('data-testid="message-row"') == 3 and r.text.count('data-testid="resend"') == 3

    r = await alice.get("/messages?kind=receipt")
    assert 'data-testid="message-count">10 messages' in r.text


async def test_bad_filters_get_a_clear_answer(alice):
    r = await alice.get("/messages?channel=fax&kind=DROP%20TABLE")
    assert r.status_code == 422
    assert "Unknown channel &#39;fax&#39;" in r.text and "A kind is a word like receipt or invoice" in r.text


async def test_resend_a_failed_sms_after_fixing_the_number(at_live, alice, worker):
    member = await make_member(phone="254700000403")  # InvalidPhoneNumber at the sandbox
    await invoice_for(member, 1800)
    (message,) = await messages_of(member=member)
    assert await delivery.deliver(message["id"]) == "failed"
    await Member.update({Member.phone: "254711777888"}).where(Member.id == member)

    r = await alice.post(f"/messages/{message['id']}/resend")

    assert r.status_code == 303 and r.headers["location"] == f"/messages/{message['id']}?resent=1"
    row = await wait_for_message(message["id"], {"sent", "delivered"})
    assert (row["to_address"], row["attempts"], row["last_error"]) == ("+254711777888", 1, "")
    assert len(sandbox_sms(at_live.sandbox, "+254711777888")) == 1
    (audit,) = await AuditLog.select().where(AuditLog.action == "message.resent")
    assert audit["entity_id"] == str(message["id"])


async def test_resend_needs_the_form_token(alice, db):
    member = await make_member()
    await invoice_for(member, 1800)
    (message,) = await messages_of(member=member)
    await Message.update({Message.status: "failed"}).where(Message.id == message["id"])

    r = await alice.post(f"/messages/{message['id']}/resend", csrf=False)

    assert r.status_code == 403
    assert (await messages_of(member=member))[0]["status"] == "failed"


async def test_only_failed_messages_can_be_resent(alice, db):
    member = await make_member()
    await invoice_for(member, 1800)
    (message,) = await messages_of(member=member)
    await Message.update({Message.status: "delivered"}).where(Message.id == message["id"])

    r = await alice.post(f"/messages/{message['id']}/resend")

    assert r.status_code == 409
    assert "Only a failed or bounced message can be sent again (this one is delivered)" in r.text
    missing = await alice.post("/messages/999999/resend")
    assert missing.status_code == 404


async def test_the_member_page_lists_their_messages_and_failures(alice, db):
    member = await make_member(email="m@example.com")
    await invoice_for(member, 1800)
    r = await alice.get(f"/members/{member}")
    assert 'data-testid="member-messages"' in r.text and "Invoice by SMS" in r.text
    assert 'data-testid="member-message-failures"' not in r.text

    await Message.update({Message.status: "failed", Message.last_error: "not delivered: Failed (DeliveryFailure)"}).where(
        Message.member == member)
    r = await alice.get(f"/members/{member}")
    assert 'data-testid="member-message-failures">1 failed' in r.text and "DeliveryFailure" in r.text
    assert 'action="/messages/' in r.text and 'data-testid="resend"' in r.text


async def test_the_nav_links_to_messages(alice, db):
    r = await alice.get("/messages")
    assert '<a href="/messages" aria-current="page">Messages</a>' in r.text


async def test_staff_send_a_pay_link_once_per_link(alice, worker):
    member = await make_member(email="link@example.com", message_channel="email")
    invoice = await invoice_for(member, 2200)
    r = await alice.post(f"/invoices/{invoice['id']}/paylink")  # staff make a (new) link
    assert r.status_code == 303
    page = await alice.get(f"/invoices/{invoice['id']}")
    assert 'data-testid="send-paylink"' in page.text

    first = await alice.post(f"/invoices/{invoice['id']}/paylink/send")
    again = await alice.post(f"/invoices/{invoice['id']}/paylink/send")

    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]  # the second click shows the first
    (sent,) = await messages_of(member=member, kind="pay_link")
    sent = await wait_for_message(sent["id"], {"sent"})
    shown = re.search(r'value="([^"]+)" data-testid="paylink-url"', (await alice.get(f"/invoices/{invoice['id']}")).text)
    assert shown.group(1) in sent["body_text"]  # the link staff see is the link the member got
    assert sent["subject"].startswith("Invoice INV-")


async def test_a_paid_invoice_has_no_link_to_send(alice, db):
    from tests.billing.helpers import pay

    member = await make_member()
    invoice = await invoice_for(member, 500)
    await pay(member, 500)
    r = await alice.post(f"/invoices/{invoice['id']}/paylink/send")
    assert r.status_code == 409 and "Only an open invoice has a pay link to send" in r.text


async def test_one_invoices_pay_link_is_sent_a_few_times_an_hour_whatever_the_process(alice, app, settings):
    """41 SMS in 3 minutes were possible by making a new link before each send. Now PAY_LINK_SENDS_PER_HOUR
    sends per invoice, counted in the database so two web processes share the count."""
    from datetime import timedelta

    from piccolo.engine import engine_finder
    from piccolo.querystring import QueryString

    from portal.app import create_app
    from portal.auth import create_staff
    from portal.lib.clock import local
    from tests.support.client import PortalClient

    member = await make_member(email="often@example.com", message_channel="both")
    invoice = await invoice_for(member, 1500)
    await create_staff("dan", "dan-password-1", "front_desk")
    other_process = PortalClient(create_app(settings, manage_resources=False))
    await other_process.login("dan", "dan-password-1")
    allowed = settings.pay_link_sends_per_hour
    try:
        for i in range(allowed):
            desk = (alice, other_process)[i % 2]
            assert (await desk.post(f"/invoices/{invoice['id']}/paylink")).status_code == 303
            for _ in range(2):  # a second click on the same link shows what went and costs nothing
                assert (await desk.post(f"/invoices/{invoice['id']}/paylink/send")).status_code == 303
        sent = await messages_of(member=member, kind="pay_link")
        assert len(sent) == 2 * allowed  # email and SMS each time

        for desk in (alice, other_process):
            assert (await desk.post(f"/invoices/{invoice['id']}/paylink")).status_code == 303
            refused = await desk.post(f"/invoices/{invoice['id']}/paylink/send")
            assert refused.status_code == 429
            message = re.search(r'data-testid="error-message">([^<]+)<', refused.text).group(1).replace("&#39;", "'")
            last, again = re.fullmatch(r"This invoice's pay link was already sent to the member at (\d\d:\d\d); "
                                       r"you can send it again after (\d\d:\d\d)", message).groups()
            assert last == f"{local(sent[-1]['created_at']):%H:%M}"
            # A burst of `allowed`, then one every hour/allowed: the next from the first send on.
            first = local(sent[0]["created_at"]) + timedelta(minutes=60 / allowed)
            assert again in {f"{first + timedelta(minutes=m):%H:%M}" for m in (-1, 0, 1)}  # give or take a clock tick
            assert f'href="/invoices/{invoice["id"]}"' in refused.text
        assert len(await messages_of(member=member, kind="pay_link")) == 2 * allowed

        # Once that time has come, one more may go.
        await engine_finder().run_querystring(QueryString(
            "UPDATE rate_limit SET window_start = window_start - make_interval(secs => {})"
            " WHERE bucket = {}", 3600 / allowed, f"paylink-send:{invoice['id']}"))
        assert (await alice.post(f"/invoices/{invoice['id']}/paylink/send")).status_code == 303
        assert len(await messages_of(member=member, kind="pay_link")) == 2 * allowed + 2
        assert (await other_process.post(f"/invoices/{invoice['id']}/paylink")).status_code == 303
        assert (await other_process.post(f"/invoices/{invoice['id']}/paylink/send")).status_code == 429
    finally:
        await other_process.__aexit__()
