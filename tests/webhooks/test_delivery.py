"""Signed delivery to a real receiver that checks signatures with the `standardwebhooks` library,
as a customer's code would; a receiver that fails for a while then recovers still gets every
event, in order per resource."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from portal import webhooks
from tables.webhooks import WebhookDelivery, WebhookEvent
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member
from tests.support.webhook_receiver import Receiver
from tests.webhooks.helpers import endpoint_for, types, wait_for_delivery


async def test_a_payment_reaches_the_receiver_signed_and_verifiable(db, worker, receiver):
    await endpoint_for(receiver)
    member = await make_member()
    inv = await invoice_for(member, 3000)
    payment = (await pay(member, 3000, invoice_id=inv["id"])).payment
    got = await receiver.until(lambda g: len(g) >= 3)
    assert types(got) == ["invoice.created", "payment.completed", "invoice.paid"]
    assert all(g.verified and g.answered == 200 for g in got)
    completed = got[1]
    assert set(completed.headers) >= {"webhook-id", "webhook-timestamp", "webhook-signature"}
    body = completed.event
    assert body["data"]["id"] == payment["id"] and body["data"]["amount"] == "3000.00"
    assert body["data"]["currency"] == "KES" and body["data"]["receipt_number"] == payment["receipt_number"]
    assert body["data"]["member_id"] == member and body["data"]["invoice_id"] in (inv["id"], None)
    # The signature covers the body, the id and the time: any change is refused, as is another secret.
    tampered = completed.body.replace(b"3000.00", b"30000.00")
    with pytest.raises(WebhookVerificationError):
        Webhook(receiver.secret).verify(tampered, completed.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(completed.body, completed.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(receiver.secret).verify(completed.body, {**completed.headers, "webhook-id": "msg_999999"})
    await wait_for_delivery(lambda r: r["status"] == "delivered", count=3)
    rows = await WebhookDelivery.select().order_by(WebhookDelivery.id)
    assert [r["status"] for r in rows] == ["delivered"] * 3
    assert all(r["last_status"] == 200 and r["last_ms"] is not None and '"status": 200' in r["last_body"] for r in rows)


async def test_an_endpoint_gets_only_the_events_it_asked_for(db, worker, receiver):
    await endpoint_for(receiver, ["payment.completed"])
    member = await make_member()
    await invoice_for(member, 1000)
    await pay(member, 1000)
    got = await receiver.until(lambda g: len(g) >= 1)
    assert types(got) == ["payment.completed"]
    # Nothing is written for events no endpoint wants: the invoice events left no row.
    assert [e["type"] for e in await WebhookEvent.select(WebhookEvent.type)] == ["payment.completed"]


async def test_no_endpoint_no_outbox_rows(db):
    member = await make_member()
    await invoice_for(member, 1000)
    await pay(member, 1000)
    assert await WebhookEvent.count() == 0


async def test_a_rolled_back_change_sends_nothing(db, receiver):
    """The event is written in the change's transaction: when the change is undone, so is it."""
    from portal.lib import db as portal_db

    await endpoint_for(receiver)
    member = await make_member()
    with pytest.raises(RuntimeError):
        async with portal_db.transaction():
            from portal.billing.invoices import Line, issue_invoice, lock_member
            from tests.billing.helpers import kes

            await lock_member(member)
            await issue_invoice(member, [Line("Monthly", kes(1000))])
            assert await WebhookEvent.count() == 1  # there, inside the transaction
            raise RuntimeError("the change fails after the event was written")
    assert await WebhookEvent.count() == 0 and await WebhookDelivery.count() == 0


def _per_resource(got) -> dict[tuple[str, int], list[int]]:
    """Event ids in the order the receiver took them (2xx), per resource, first time each."""
    order: dict[tuple[str, int], list[int]] = defaultdict(list)
    for g in got:
        if not 200 <= g.answered < 300:
            continue
        event_id = int(g.msg_id.removeprefix("msg_"))
        resource = _resource_of(g.event)
        if event_id not in order[resource]:
            order[resource].append(event_id)
    return order


def _resource_of(event: dict) -> tuple[str, int]:
    kind = event["type"].split(".")[0]
    return (kind, event["data"]["member_id"] if kind == "member" else event["data"]["id"])


async def test_a_receiver_down_for_a_while_gets_every_event_in_order_per_resource(db, worker, receiver, moved_clock):
    await endpoint_for(receiver)
    receiver.fail_next = 7  # down: the first seven requests get a 500
    # And flaky after: each invoice.created is refused the first time, so while it waits out its
    # back-off the same invoice's invoice.paid is due, and must wait for it.
    receiver.refuse_first = frozenset({"invoice.created"})
    members = [await make_member(f"M{i}", "Test") for i in range(3)]
    for member in members:
        inv = await invoice_for(member, 3000)
        await pay(member, 1000, invoice_id=inv["id"])
        await pay(member, 2000, invoice_id=inv["id"])
    second = await invoice_for(members[0], 500)
    await pay(members[0], 500, invoice_id=second["id"])
    expected = {r["id"]: r for r in await WebhookEvent.select().order_by(WebhookEvent.id).output(load_json=True)}
    assert len(expected) == 3 * 4 + 3  # per member: created, two payments, paid; then member 0's second invoice

    async def time_passes():
        # Half a minute per poll, shorter than the back-offs (1, 2, 4 ... minutes): later events
        # come due while an earlier one of the same resource waits out its back-off. The
        # sweeper, as its cron would, gives each endpoint with due deliveries a job.
        moved_clock.move(seconds=30)
        await webhooks.sweep()

    got = await receiver.until(lambda g: {int(x.msg_id[4:]) for x in g if x.answered == 200} >= set(expected),
                               timeout=60, between=time_passes)
    assert all(g.verified for g in got)
    assert sum(1 for g in got if g.answered == 500) > 7
    # Every event at least once, and per resource in order of creation.
    order = _per_resource(got)
    for resource, ids in order.items():
        assert ids == sorted(ids), (resource, ids)
    assert sorted(i for ids in order.values() for i in ids) == sorted(expected)
    # What each delivery said is the event as written in the change's transaction.
    for g in got:
        event = expected[int(g.msg_id[4:])]
        assert g.event == {"type": event["type"], "timestamp": event["created_at"].isoformat(), "data": event["data"]}
    rows = await wait_for_delivery(lambda r: r["status"] == "delivered", count=len(expected), every=True)
    assert {r["status"] for r in rows} == {"delivered"}
    assert sum(r["attempts"] for r in rows) >= len(rows) + 1
    print(f"\nwebhook outage: {len(expected)} events on {len(order)} resources; {len(got)} requests, "
          f"{sum(1 for g in got if g.answered == 500)} answered 500, {sum(1 for g in got if g.answered == 200)} "
          f"answered 200; {sum(r['attempts'] for r in rows)} attempts; every id delivered, in order per resource")


async def test_the_back_off_doubles_and_an_endpoint_failing_3_days_is_switched_off(db, receiver, moved_clock):
    from tables.gateway import StaffAlert
    from tables.webhooks import WebhookEndpoint

    endpoint = await endpoint_for(receiver)
    receiver.fail_next = 10_000  # down for good
    member = await make_member()
    await invoice_for(member, 1000)
    delays = []
    for _ in range(6):
        before = webhooks.clock.now()
        assert await webhooks.deliver_endpoint(endpoint) == {"delivered": 0, "failed": 1}
        row = await WebhookDelivery.select().first()
        delays.append(round((row["next_attempt_at"] - before).total_seconds() / 60))
        # Not due before its time: a run a second early sends nothing.
        moved_clock.offset += row["next_attempt_at"] - before - __import__("datetime").timedelta(seconds=1)
        assert await webhooks.deliver_endpoint(endpoint) == {"delivered": 0, "failed": 0}
        moved_clock.move(seconds=1)
    assert delays == [1, 2, 4, 8, 16, 32]
    print(f"\nwebhook back-off: {delays} minutes, then at most {webhooks.MAX_RETRY // 3600} h apart")
    assert webhooks.retry_delay(20).total_seconds() == webhooks.MAX_RETRY == 6 * 3600
    assert (await WebhookEndpoint.select().first())["enabled"]
    # Three days after the first failure, the next failure switches it off and tells the admins.
    moved_clock.move(days=3)
    await webhooks.deliver_endpoint(endpoint)
    ep = await WebhookEndpoint.select().first()
    assert not ep["enabled"] and "3 days" in ep["disabled_reason"]
    row = await WebhookDelivery.select().first()
    assert row["status"] == "failed"  # its own 3 days are over too
    alerts = await StaffAlert.select().where(StaffAlert.kind == "webhook_disabled")
    assert len(alerts) == 1 and receiver.url in alerts[0]["message"]
    # Switched off: new events wait for it, nothing is sent.
    requests = len(receiver.got)
    await invoice_for(member, 500)
    assert await WebhookDelivery.count() == 1  # not even queued: it is off
    assert await webhooks.deliver_endpoint(endpoint) == {"delivered": 0, "failed": 0}
    assert len(receiver.got) == requests
    await webhooks.set_enabled(endpoint, True, None)
    assert (await WebhookEndpoint.select().first())["failing_since"] is None


async def test_a_receiver_that_does_not_verify_is_told_by_its_own_library(db, worker):
    """The receiver refuses (401) a request signed with another secret: the library is checking."""
    from tests.support.servers import serve_in_thread

    other = Receiver()
    with serve_in_thread(other) as base:
        other.url = f"{base}/x"
        await endpoint_for(other)
        other.secret = webhooks.new_secret()  # the customer pasted the wrong secret
        member = await make_member()
        await pay(member, 100)
        got = await other.until(lambda g: len(g) >= 1)
    assert got[0].answered == 401 and not got[0].verified
    row = await wait_for_delivery(lambda r: r["last_status"] is not None)
    assert row["status"] == "pending" and row["last_status"] == 401 and row["attempts"] == 1
    assert json.loads(got[0].body)["type"] == "payment.completed"


async def test_a_signing_secret_never_reaches_a_log_line(db, worker, receiver, caplog):
    import logging

    from portal.lib import logsafe

    logsafe.install()
    caplog.set_level(logging.DEBUG)
    await endpoint_for(receiver)
    member = await make_member()
    await pay(member, 100)
    await receiver.until(lambda g: len(g) >= 1)
    logging.getLogger("portal.test").warning("pasted by mistake: %s", receiver.secret)
    logging.getLogger("portal.test").warning(f"in the format: {receiver.secret}")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "pasted by mistake: [redacted]" in text and "in the format: [redacted]" in text
    assert receiver.secret not in text and receiver.secret.removeprefix("whsec_") not in text
