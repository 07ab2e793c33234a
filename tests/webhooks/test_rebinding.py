"""A receiver's name is checked and connected to in one step: a DNS that answers a public
address to the check and a private one to the connection (DNS rebinding) gets nothing sent
inside the gym's network."""

from __future__ import annotations

from urllib.parse import urlsplit

from portal import webhooks
from tables.webhooks import WebhookDelivery
from tests.billing.helpers import invoice_for
from tests.factories import make_member
from tests.support.env import setting

PUBLIC = "93.184.216.34"


async def test_a_name_that_turns_private_after_the_check_is_not_connected_to(db, receiver, monkeypatch):
    port = urlsplit(receiver.url).port
    real = webhooks.resolve
    answers = []

    async def rebinding_dns(host, port):
        # Public for the registration's check and the send's check, then what the name really is
        # (localhost: the portal's own machine) for the connection.
        answers.append(host)
        return [PUBLIC] if len(answers) <= 2 else await real(host, port)

    monkeypatch.setattr(webhooks, "resolve", rebinding_dns)
    with setting("WEBHOOK_PRIVATE_URLS", "0"):
        endpoint_id, _ = await webhooks.create_endpoint(f"http://localhost:{port}/gym-hooks", ["invoice.created"],
                                                        "books", None)
        await invoice_for(await make_member(), 1000)
        await webhooks.deliver_endpoint(endpoint_id)
    assert len(answers) == 3  # the connection asked too, and was refused
    assert receiver.got == []
    (delivery,) = await WebhookDelivery.select()
    assert delivery["status"] == "pending" and "localhost is a private or local address" in delivery["last_error"]


async def test_the_checked_address_is_the_one_connected_to(db, receiver, monkeypatch):
    """The name is never resolved again after the check: a name only our check can resolve
    (here to the receiver's loopback address, as if it were public) is still reached."""
    port = urlsplit(receiver.url).port

    async def checked(host, port):
        assert host == "books.gym-partner.invalid"
        return "127.0.0.1"

    monkeypatch.setattr(webhooks, "public_address", checked)
    with setting("WEBHOOK_PRIVATE_URLS", "0"):
        endpoint_id, secret = await webhooks.create_endpoint(f"http://books.gym-partner.invalid:{port}/gym-hooks",
                                                             ["invoice.created"], "books", None)
        receiver.secret = secret
        await invoice_for(await make_member(), 1000)
        done = await webhooks.deliver_endpoint(endpoint_id)
    assert done == {"delivered": 1, "failed": 0}
    assert [g.event["type"] for g in receiver.got] == ["invoice.created"]
    assert receiver.got[0].headers["host"] == f"books.gym-partner.invalid:{port}"  # the name, not the address, is asked for
