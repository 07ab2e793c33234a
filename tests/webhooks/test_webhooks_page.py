"""Admins register endpoints at /settings/webhooks (the secret shown once), read the delivery
log, resend, send a test event, and switch an endpoint off and on."""

from __future__ import annotations

import re

from tables.webhooks import WebhookDelivery, WebhookEndpoint
from tests.billing.helpers import pay
from tests.factories import make_member
from tests.support.env import setting
from tests.webhooks.helpers import wait_for_delivery


async def test_only_admins_see_the_page(alice, bob, carol):
    assert (await alice.get("/settings/webhooks")).status_code == 403
    assert (await bob.get("/settings/webhooks")).status_code == 403
    page = await carol.get("/settings/webhooks")
    assert page.status_code == 200 and 'href="/settings/webhooks"' in page.text  # in the admin's menu
    assert (await bob.post("/settings/webhooks", {"url": "http://127.0.0.1:9/x", "event_payment.completed": "on"})).status_code == 403
    assert await WebhookEndpoint.count() == 0


async def test_admin_registers_an_endpoint_and_follows_its_deliveries(carol, worker, receiver):
    r = await carol.post("/settings/webhooks", {"url": receiver.url, "description": "Accountant's books",
                                                "event_payment.completed": "on", "event_invoice.paid": "on"})
    assert r.status_code == 200, r.text
    secret = re.search(r'data-testid="secret">(whsec_[A-Za-z0-9+/=]+)<', r.text).group(1)
    receiver.secret = secret
    endpoint = await WebhookEndpoint.select().first()
    assert endpoint["events"] == "payment.completed,invoice.paid" and endpoint["enabled"]
    listed = await carol.get("/settings/webhooks")
    assert secret not in listed.text and receiver.url in listed.text  # shown once only
    log_page = await carol.get(f"/settings/webhooks/{endpoint['id']}")
    assert secret not in log_page.text and "Nothing sent yet" in log_page.text

    member = await make_member()
    await pay(member, 1200)
    got = await receiver.until(lambda g: len(g) >= 1)
    assert got[0].verified and got[0].event["type"] == "payment.completed"
    delivery = await wait_for_delivery(lambda d: d["status"] == "delivered")
    log_page = await carol.get(f"/settings/webhooks/{endpoint['id']}")
    row = re.search(rf'data-testid="delivery-{delivery["id"]}">(.*?)</tr>', log_page.text, re.S).group(1)
    assert "payment.completed" in row and "delivered" in row and "200" in row and " ms" in row
    assert "status" in row  # the receiver's answer, in excerpt

    # Resend: the same event again, with the same webhook-id (receivers drop repeats by it).
    assert (await carol.post(f"/settings/webhooks/deliveries/{delivery['id']}/resend")).status_code == 303
    got = await receiver.until(lambda g: len(g) >= 2)
    assert got[1].msg_id == got[0].msg_id and got[1].body == got[0].body and got[1].verified

    # A test event, to this endpoint only.
    assert (await carol.post(f"/settings/webhooks/{endpoint['id']}/test")).status_code == 303
    got = await receiver.until(lambda g: len(g) >= 3)
    assert got[2].event["type"] == "webhook.test" and got[2].verified

    # Switched off: nothing new goes; switched on: what waited goes.
    assert (await carol.post(f"/settings/webhooks/{endpoint['id']}/disable")).status_code == 303
    await pay(member, 300)
    assert await WebhookDelivery.count() == 2  # an endpoint that is off is not written for
    assert (await carol.post(f"/settings/webhooks/{endpoint['id']}/enable")).status_code == 303
    assert "On" in (await carol.get(f"/settings/webhooks/{endpoint['id']}")).text


async def test_a_bad_form_is_shown_again_and_private_addresses_are_refused(carol):
    r = await carol.post("/settings/webhooks", {"url": "", "description": "x"})
    assert r.status_code == 422 and 'data-testid="error-events"' in r.text and "whsec_" not in r.text
    with setting("WEBHOOK_PRIVATE_URLS", "0"):
        # The portal must not be made to call into its own network (the database, the router).
        for url in ("http://127.0.0.1:5432/", "http://10.0.0.1/hook", "http://169.254.169.254/latest", "ftp://example.com/"):
            r = await carol.post("/settings/webhooks", {"url": url, "event_payment.completed": "on"})
            assert r.status_code == 422, url
            assert "cannot be used" in r.text, url
    assert await WebhookEndpoint.count() == 0


async def test_forms_need_the_csrf_token(carol):
    r = await carol.post("/settings/webhooks", {"url": "http://127.0.0.1:9/x", "event_payment.completed": "on"}, csrf=False)
    assert r.status_code == 403
    assert await WebhookEndpoint.count() == 0
