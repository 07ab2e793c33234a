"""The outbox: one message per purpose, whoever asks and however often; the right channels; and
the sweeper sends what a lost job left behind."""

import asyncio

import pytest

from portal.messages import outbox
from tasks import notifications
from tests.billing.helpers import invoice_for
from tests.factories import make_member
from tests.messages.conftest import messages_of, wait_for_message


async def test_the_same_purpose_is_queued_once(db):
    member = await make_member(email="w@example.com")
    first = await outbox.send_message(member, "reminder_due", "email", dedupe_key="reminder:invoice:5:due-3:email")
    again = await outbox.send_message(member, "reminder_due", "email", dedupe_key="reminder:invoice:5:due-3:email")

    assert first is not None and again is None
    (row,) = await messages_of(member=member)
    assert (row["to_address"], row["status"], row["kind"]) == ("w@example.com", "queued", "reminder_due")


async def test_racing_callers_make_one_message(db):
    member = await make_member()
    ids = await asyncio.gather(*[
        outbox.send_message(member, "reminder_due", "sms", dedupe_key="reminder:invoice:9:due-1:sms", invoice_id=None)
        for _ in range(10)])

    assert len([i for i in ids if i is not None]) == 1
    assert len(await messages_of(member=member)) == 1


async def test_no_address_no_message(db):
    member = await make_member()  # no email
    assert await outbox.send_message(member, "invoice", "email", dedupe_key="k:email") is None
    assert await messages_of(member=member) == []


@pytest.mark.parametrize("choice, email, kind, expected", [
    ("sms", "a@example.com", "invoice", ["sms"]),
    ("email", "a@example.com", "invoice", ["email"]),
    ("email", None, "invoice", ["sms"]),
    ("both", "a@example.com", "reminder_due", ["email", "sms"]),
    ("both", None, "reminder_due", ["sms"]),
    ("sms", "a@example.com", "receipt", ["email"]),  # receipts: by email whenever there is an address
    ("sms", None, "receipt", []),
])
def test_channels_follow_the_members_choice(choice, email, kind, expected):
    member = {"message_channel": choice, "email": email, "phone": "254712000001"}
    assert outbox.channels_for(member, kind) == expected


async def test_a_bad_channel_or_key_is_refused(db):
    member = await make_member()
    with pytest.raises(ValueError):
        await outbox.send_message(member, "invoice", "fax", dedupe_key="k")
    with pytest.raises(ValueError):
        await outbox.send_message(member, "invoice", "sms", dedupe_key="")


async def test_the_sweeper_sends_a_message_whose_job_was_lost(worker):
    member = await make_member(email="lost@example.com", message_channel="email")
    await invoice_for(member, 900)  # queued with the invoice; nobody nudged the worker
    (message,) = await messages_of(member=member)

    await notifications.sweep_messages(None)

    row = await wait_for_message(message["id"], {"sent"})
    assert row["subject"].startswith("Invoice INV-") and row["provider_id"] == "dev-mailbox"


async def test_a_new_kind_brings_its_own_builder_and_params(db):
    """How a reminder plugs in: a builder for its kind, and params saying which step it is."""
    from portal.messages import delivery
    from portal.messages.content import BUILDERS, Content, builder

    member = await make_member(email="r@example.com")
    message_id = await outbox.queue_message(member, "reminder_test", "email", dedupe_key="reminder:test:1",
                                            params={"step": "due-3"})
    seen = []

    @builder("reminder_test")
    async def reminder(message):
        seen.append(message["params"])
        return Content(f"Due in 3 days ({message['params']['step']})", "Please pay")

    try:
        assert await delivery.deliver(message_id) == "sent"
    finally:
        BUILDERS.pop("reminder_test")
    assert seen == [{"step": "due-3"}]
    (row,) = await messages_of(member=member)
    assert (row["subject"], row["status"]) == ("Due in 3 days (due-3)", "sent")
