"""Failures: permanent ones (an invalid number, a 5xx from the mail server) fail the message for
staff at once; passing ones put it back in the queue for the job's retry, up to a limit."""

from datetime import timedelta

import pytest

from portal.lib.clock import now
from portal.messages import delivery, outbox
from tables.messages import Message
from tests.billing.helpers import invoice_for
from tests.factories import make_member
from tests.messages.conftest import messages_of


async def _queued(channel: str, **member) -> dict:
    member_id = await make_member(message_channel=channel, **member)
    await invoice_for(member_id, 1200)
    (message,) = await messages_of(member=member_id)
    return message


async def _row(message_id: int) -> dict:
    return await Message.select().where(Message.id == message_id).first()


async def test_an_invalid_number_fails_at_once_and_is_not_retried(at_live):
    message = await _queued("sms", phone="254700000403")  # the sandbox answers InvalidPhoneNumber

    assert await delivery.deliver(message["id"]) == "failed"  # returned, not raised: SAQ will not retry

    row = await _row(message["id"])
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert row["last_error"] == "Africa's Talking refused it: InvalidPhoneNumber (403)"
    assert await delivery.deliver(message["id"]) == "nothing to do"


async def test_insufficient_balance_is_retried_then_given_up(at_live):
    message = await _queued("sms", phone="254700000405")  # InsufficientBalance: may pass after a top-up

    for attempt in range(1, outbox.MAX_ATTEMPTS):
        with pytest.raises(delivery.RetryLater):
            await delivery.deliver(message["id"])
        row = await _row(message["id"])
        assert (row["status"], row["attempts"]) == ("queued", attempt)
        assert "InsufficientBalance (405)" in row["last_error"]

    assert await delivery.deliver(message["id"]) == "failed"
    row = await _row(message["id"])
    assert row["status"] == "failed" and row["last_error"].startswith(f"gave up after {outbox.MAX_ATTEMPTS} attempts")


async def test_a_refused_address_bounces(smtp_server):
    message = await _queued("email", email="gone@example.com")
    smtp_server.refuse["gone@example.com"] = "550 5.1.1 No such user"

    assert await delivery.deliver(message["id"]) == "bounced"

    row = await _row(message["id"])
    assert row["status"] == "bounced" and "550" in row["last_error"] and "No such user" in row["last_error"]
    assert smtp_server.messages == []


async def test_a_busy_mail_server_means_try_again(smtp_server):
    message = await _queued("email", email="later@example.com")
    smtp_server.refuse["later@example.com"] = "451 4.7.1 Try again later"

    with pytest.raises(delivery.RetryLater):
        await delivery.deliver(message["id"])
    row = await _row(message["id"])
    assert (row["status"], row["attempts"]) == ("queued", 1) and "451" in row["last_error"]

    del smtp_server.refuse["later@example.com"]
    assert await delivery.deliver(message["id"]) == "sent"
    assert len(smtp_server.messages) == 1 and (await _row(message["id"]))["attempts"] == 2


async def test_sms_without_an_account_fails_with_a_clear_reason(db, settings):
    assert not settings.at_api_key  # tests run without SANDBOX: no Africa's Talking account
    message = await _queued("sms")

    assert await delivery.deliver(message["id"]) == "failed"
    assert (await _row(message["id"]))["last_error"] == "SMS is not set up: AT_USERNAME and AT_API_KEY are empty"


async def test_a_message_left_half_sent_is_failed_for_staff(db):
    message = await _queued("sms")
    await Message.update({Message.status: "sending", Message.claimed_at: now() - timedelta(minutes=11)}).where(
        Message.id == message["id"])

    assert await outbox.give_up_stuck() == [message["id"]]
    row = await _row(message["id"])
    assert row["status"] == "failed" and "may or may not have gone out" in row["last_error"]
