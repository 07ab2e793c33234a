"""The events come from the real flows: a desk payment through the page, an M-Pesa prompt through
the sandbox, a plan paid for, a refund, a void, a hold that time starts and a payment clears, the
nightly membership refresh."""

from __future__ import annotations

from datetime import timedelta

from portal import webhooks
from portal.billing.invoices import void_invoice
from portal.lib import db as portal_db
from portal.lib.clock import today
from portal.members.enrol import put_on_plan
from portal.members.holds import announce_holds
from portal.members.memberships import refresh_membership_statuses
from portal.payments.service import refund_payment
from tables.billing import Invoice
from tables.webhooks import WebhookEvent
from tests.billing.helpers import desk_staff, invoice_for, kes, pay
from tests.factories import make_member, make_plan
from tests.support.live import PHONES, wait_for_status
from tests.webhooks.helpers import endpoint_for, types


async def _events() -> list[tuple[str, str, int]]:
    rows = await WebhookEvent.select(WebhookEvent.type, WebhookEvent.resource, WebhookEvent.resource_id).order_by(
        WebhookEvent.id)
    return [(r["type"], r["resource"], r["resource_id"]) for r in rows]


async def test_a_cash_payment_at_the_desk_page_is_delivered(alice, worker, receiver):
    await endpoint_for(receiver, ["payment.completed", "invoice.paid"])
    member = await make_member()
    inv = await invoice_for(member, 2000)
    r = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "2,000", "idempotency_key": "k1"})
    assert r.status_code == 303, r.text
    got = await receiver.until(lambda g: len(g) >= 2)
    assert types(got) == ["payment.completed", "invoice.paid"] and all(g.verified for g in got)
    assert got[0].event["data"]["method"] == "cash" and got[0].event["data"]["amount"] == "2000.00"
    assert got[1].event["data"] == {**got[1].event["data"], "id": inv["id"], "status": "paid", "paid": "2000.00"}
    # The same form sent again records nothing new, and so announces nothing new.
    again = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "2,000", "idempotency_key": "k1"})
    assert again.status_code in (200, 303)
    assert [t for t, _, _ in await _events()] == ["payment.completed", "invoice.paid"]


async def test_an_m_pesa_prompt_through_the_sandbox_is_delivered(live, worker, alice, receiver):
    await endpoint_for(receiver, ["payment.completed", "payment.failed"])
    member = await make_member()
    await invoice_for(member, 3000)
    ok = await alice.post(f"/members/{member}/mpesa", {"phone": "0700 000 001", "amount": "3000", "idempotency_key": "s1"})
    paid = await wait_for_status(int(ok.headers["location"].rsplit("/", 1)[1]), {"completed"})
    bad = await alice.post(f"/members/{member}/mpesa", {"phone": PHONES["wrong_pin"], "amount": "10", "idempotency_key": "s2"})
    failed = await wait_for_status(int(bad.headers["location"].rsplit("/", 1)[1]), {"failed"})
    got = await receiver.until(lambda g: len(g) >= 2, timeout=30)
    by_type = {g.event["type"]: g.event["data"] for g in got}
    assert by_type["payment.completed"]["id"] == paid["id"] and by_type["payment.completed"]["method"] == "mpesa"
    assert by_type["payment.completed"]["reference"] == paid["reference"]  # the M-Pesa code
    assert by_type["payment.failed"]["id"] == failed["id"] and by_type["payment.failed"]["status"] == "failed"
    assert all(g.verified for g in got)


async def test_membership_refund_void_and_hold_events_come_from_their_one_place(db, receiver):
    await endpoint_for(receiver)
    staff = await desk_staff()
    member = await make_member()
    plan = await make_plan("Monthly", "3000")
    membership_id = (await put_on_plan(member, plan, today(), staff)).id
    invoice = await Invoice.select().where(Invoice.membership == membership_id).first()
    payment = (await pay(member, 3000, invoice_id=invoice["id"])).payment
    assert await _events() == [("invoice.created", "invoice", invoice["id"]),
                               ("payment.completed", "payment", payment["id"]),
                               ("invoice.paid", "invoice", invoice["id"]),
                               ("membership.activated", "membership", membership_id)]
    await refund_payment(payment["id"], kes(1000), "Left early", staff)
    assert (await _events())[-1][:2] == ("payment.refunded", "payment")

    # A hold: an invoice more than the grace period overdue, begun by time alone (the nightly run).
    other = await make_member("Otieno", "Odhiambo")
    late = await invoice_for(other, 500)
    await Invoice.update({Invoice.due_date: today() - timedelta(days=60)}).where(Invoice.id == late["id"])
    async with portal_db.transaction():
        assert await announce_holds(None) == [("member.on_hold", other)]
        assert await announce_holds(None) == []  # said once
    paid_late = (await pay(other, 500, invoice_id=late["id"])).payment
    assert (await _events())[-3:] == [("payment.completed", "payment", paid_late["id"]),
                                      ("invoice.paid", "invoice", late["id"]),
                                      ("member.hold_cleared", "member", other)]
    void_me = await invoice_for(other, 700)
    await void_invoice(void_me["id"], "Raised by mistake", staff)
    assert (await _events())[-1] == ("invoice.voided", "invoice", void_me["id"])

    # The nightly refresh: the paid membership ends, and says so.
    await refresh_membership_statuses(today() + timedelta(days=400))
    assert (await _events())[-1] == ("membership.expired", "membership", membership_id)
    event = await WebhookEvent.select().order_by(WebhookEvent.id, ascending=False).output(load_json=True).first()
    assert event["data"]["status"] == "expired" and event["data"]["member_id"] == member
    assert {t for t, _, _ in await _events()} == set(webhooks.EVENTS) - {"payment.failed"}  # failed: the M-Pesa test
