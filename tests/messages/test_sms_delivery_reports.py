"""Africa's Talking delivery reports: stored raw first, then applied to the SMS exactly once."""

import httpx

from portal.callbacks import dispatch
from portal.messages import delivery
from tables.gateway import GatewayCallback, StaffAlert
from tables.messages import Message
from tests.billing.helpers import invoice_for
from tests.factories import make_member
from tests.messages.conftest import messages_of, wait_for_message


async def _invoice_sms(phone: str) -> dict:
    member = await make_member(phone=phone)
    invoice = await invoice_for(member, 2000)
    from portal.messages import outbox

    await outbox.nudge_invoice(invoice["id"])
    (message,) = await messages_of(member=member)
    return message


async def _reports(message_id: str) -> list[dict]:
    return await GatewayCallback.select().where(
        (GatewayCallback.gateway == "africastalking") & (GatewayCallback.external_id == message_id)
    ).order_by(GatewayCallback.id)


async def test_a_delivered_report_marks_the_sms_delivered(at_live, worker):
    message = await _invoice_sms("254711000111")

    message = await wait_for_message(message["id"], {"delivered"})

    assert message["delivered_at"] is not None and message["provider_status"] == "Success"
    (report,) = await _reports(message["provider_id"])
    assert report["outcome"] == "applied" and report["kind"] == "delivery"
    assert f"id={message['provider_id']}" in report["body"] and "status=Success" in report["body"]


async def test_a_failed_report_fails_the_sms_with_the_reason(at_live, worker):
    message = await _invoice_sms("254700000909")  # the sandbox's DeliveryFailure number

    message = await wait_for_message(message["id"], {"failed"})

    assert message["provider_status"] == "DeliveryFailure"
    assert message["last_error"] == "not delivered: Failed (DeliveryFailure)"


async def test_buffered_then_delivered(at_live, worker):
    message = await _invoice_sms("254700000990")

    message = await wait_for_message(message["id"], {"delivered"})

    assert [r["outcome"] for r in await _reports(message["provider_id"])] == ["applied", "applied"]
    assert message["provider_status"] == "Success"


async def test_a_duplicate_report_changes_nothing(at_live, worker):
    message = await _invoice_sms("254711000222")
    message = await wait_for_message(message["id"], {"delivered"})

    async with httpx.AsyncClient() as http:
        # Africa's Talking sends the same report again...
        r = await http.post(f"{at_live.sandbox}/_sandbox/at/messages/{message['provider_id']}/dlr")
        assert r.json()["delivery"]["status_code"] == 200
        # ...and then a contradicting one, late.
        r = await http.post(f"{at_live.sandbox}/_sandbox/at/messages/{message['provider_id']}/dlr",
                            json={"status": "Failed", "failureReason": "DeliveryFailure", "retryCount": 1})
        assert r.json()["delivery"]["status_code"] == 200

    reports = await _reports(message["provider_id"])
    assert [(r["outcome"], r["deliveries"]) for r in reports] == [("applied", 2), ("duplicate", 1)]
    after = await Message.select().where(Message.id == message["id"]).first()
    assert (after["status"], after["delivered_at"], after["last_error"]) == ("delivered", message["delivered_at"], "")


async def test_a_malformed_report_is_stored_and_answered_200(at_live):
    url = f"{at_live.portal}/hooks/sms/delivery/{at_live.settings.at_callback_token}"
    async with httpx.AsyncClient() as http:
        r = await http.post(url, content=b"status=Success&phoneNumber=%2B254711000333",  # no id
                            headers={"content-type": "application/x-www-form-urlencoded"})
        junk = await http.post(url, content=b"\xff\xfe{not a form", headers={"content-type": "text/plain"})
    assert (r.status_code, r.text) == (200, "OK") and junk.status_code == 200

    rows = await GatewayCallback.select().where(GatewayCallback.gateway == "africastalking").order_by(GatewayCallback.id)
    assert [(row["outcome"], row["kind"]) for row in rows] == [("malformed", "delivery")] * 2
    assert "no id" in rows[0]["note"] and rows[0]["body"].startswith("status=Success")
    alerts = await StaffAlert.select().where(StaffAlert.kind == "malformed")
    assert len(alerts) == 2 and "SMS delivery report" in alerts[0]["message"]


async def test_a_report_with_the_wrong_token_is_kept_but_not_acted_on(at_live, worker):
    message = await _invoice_sms("254711000444")
    message = await wait_for_message(message["id"], {"delivered"})
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{at_live.portal}/hooks/sms/delivery/guessed-token",
                            data={"id": message["provider_id"], "status": "Failed", "phoneNumber": "+254711000444",
                                  "networkCode": "63902", "failureReason": "UserInBlackList", "retryCount": "0"})
    assert r.status_code == 200
    forged = await GatewayCallback.select().where(GatewayCallback.gateway == "africastalking").order_by(
        GatewayCallback.id, ascending=False).first()
    assert (forged["outcome"], forged["note"]) == ("rejected", "wrong callback token")
    assert "UserInBlackList" in forged["body"] and forged["processed_at"] is None
    assert (await Message.select(Message.status).where(Message.id == message["id"]).first())["status"] == "delivered"


async def test_a_report_that_beats_the_send_is_applied_once_the_id_is_known(at_live):
    """The report can arrive before the worker has written the messageId: it waits, stored."""
    url = f"{at_live.portal}/hooks/sms/delivery/{at_live.settings.at_callback_token}"
    async with httpx.AsyncClient() as http:
        await http.post(url, data={"id": "ATXid_early0000000000000000000000001", "status": "Success",
                                   "phoneNumber": "+254711000555", "networkCode": "63902", "retryCount": "0"})
    (early,) = await _reports("ATXid_early0000000000000000000000001")
    assert early["outcome"] == "stored" and early["processed_at"] is None

    member = await make_member(phone="254711000555")
    message_id = (await Message.insert(Message(
        member=member, channel="sms", kind="invoice", to_address="+254711000555", dedupe_key="early:1", status="sent",
        provider_id="ATXid_early0000000000000000000000001")).returning(Message.id))[0]["id"]
    await dispatch.process_all(await delivery.reports_waiting(message_id))

    assert (await Message.select(Message.status).where(Message.id == message_id).first())["status"] == "delivered"
    (early,) = await _reports("ATXid_early0000000000000000000000001")
    assert early["outcome"] == "applied"
