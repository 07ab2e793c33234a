"""The cards daily pass: Flutterwave's list of the day's charges and refunds (paged, from the sandbox
over HTTP) against the portal's books. A success no webhook or redirect brought is credited once; a
charge for no payment of ours and a refund the portal did not ask for are listed for staff."""

import asyncio
from datetime import datetime, timezone
from decimal import Decimal

import httpx

from portal.gateways.flutterwave import FlutterwaveClient
from portal.lib.money import Money
from tables.billing import Invoice, Payment, PaymentEvent
from tables.gateway import GatewayCallback, StaffAlert
from tables.reconcile import ReconcileFinding
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_member
from tests.support.live import wait_for_status


def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()  # the sandbox's created_at dates are UTC


async def _sandbox(live, method: str, path: str, body: dict | None = None) -> dict:
    async with httpx.AsyncClient() as http:
        r = await http.request(method, f"{live.sandbox}{path}", json=body)
        assert r.status_code < 300, r.text
        return r.json()


async def _checkout(alice, member: int, amount: str = "3000") -> tuple[int, str]:
    r = await alice.post(f"/members/{member}/card", {"amount": amount, "idempotency_key": f"card-{member}"})
    assert r.status_code == 303, r.text
    payment = await Payment.select().where((Payment.method == "card") & (Payment.member == member)).first()
    return payment["id"], payment["gateway_request"]


async def _pay(live, tx_ref: str, scenario: str = "normal") -> dict:
    """The member pays on Flutterwave's page; with scenario "none" no webhook is sent, and the
    browser is closed before the redirect (nothing reaches the portal)."""
    return await _sandbox(live, "POST", "/_sandbox/flutterwave/complete", {"tx_ref": tx_ref, "card": "success", "scenario": scenario})


async def _pass(queue) -> list[dict]:
    return await queue.apply("cards_daily_pass", on=_today(), timeout=60)


async def _completions(pid: int) -> list[dict]:
    return await PaymentEvent.select().where((PaymentEvent.payment == pid) & (PaymentEvent.new_status == "completed")
                                             & (PaymentEvent.kind == "status"))


async def test_a_card_success_nobody_told_us_of_is_credited_once_by_the_pass(card_live, worker, alice, queue):
    """Worked example: four members pay KES 3,000 by card; three webhooks arrive, the fourth member's
    does not and they close the browser. Flutterwave lists 4 charges (2 a page: 2 pages); the pass
    credits the fourth: KES 3,000, once, its invoice paid (3,000 - 3,000 = 0 owed). A second pass
    credits nothing and adds nothing; the webhook arriving after that is a duplicate."""
    await _sandbox(card_live, "POST", "/_sandbox/flutterwave/settings", {"list_page_size": 2})
    told = []
    for _ in range(3):
        member = await make_member()
        pid, tx_ref = await _checkout(alice, member)
        await _pay(card_live, tx_ref)
        told.append(pid)
    quiet_member = await make_member()
    inv = await invoice_for(quiet_member, 3000)
    quiet, tx_ref = await _checkout(alice, quiet_member)
    done = await _pay(card_live, tx_ref, scenario="none")
    for pid in told:
        await wait_for_status(pid, {"completed"})
    assert (await Payment.select(Payment.status).where(Payment.id == quiet).first())["status"] == "processing"

    [today] = await _pass(queue)
    assert today == {"day": _today(), "transactions": 4, "credited": 1, "unknown": 0, "refunds": 0,
                     "refunds_unrecorded": 0}
    paid = await Payment.select().where(Payment.id == quiet).first()
    assert (paid["status"], paid["amount"], paid["reference"]) == ("completed", Decimal("3000.00"),
                                                                   f"FLW {done['transaction_id']}")
    [event] = await _completions(quiet)
    assert event["gateway_event"] == f"card daily pass {_today()}"
    assert (await Invoice.select(Invoice.status).where(Invoice.id == inv["id"]).first())["status"] == "paid"
    assert await ReconcileFinding.count().where(ReconcileFinding.kind == "card_credited") == 1

    # Again: nothing more.
    [again] = await _pass(queue)
    assert (again["transactions"], again["credited"]) == (4, 0)
    assert await ReconcileFinding.count() == 1
    # The webhook after all, late: a duplicate.
    await _sandbox(card_live, "POST", f"/_sandbox/flutterwave/transactions/{done['transaction_id']}/webhook", {})
    for _ in range(200):
        hook = await GatewayCallback.select().where(GatewayCallback.payment == quiet).first()
        if hook and hook["processed_at"]:
            break
        await asyncio.sleep(0.05)
    assert hook["outcome"] == "duplicate"
    assert len(await _completions(quiet)) == 1
    assert await Payment.count().where(Payment.status == "completed") == 4
    await assert_books_agree()


async def test_the_pass_and_the_webhook_at_the_same_moment_credit_once(card_live, worker, alice, queue):
    member = await make_member()
    await invoice_for(member, 3000)
    pid, tx_ref = await _checkout(alice, member)
    done = await _pay(card_live, tx_ref, scenario="none")
    await asyncio.gather(_pass(queue), _sandbox(card_live, "POST",
                                                f"/_sandbox/flutterwave/transactions/{done['transaction_id']}/webhook",
                                                {"times": 2}))
    await wait_for_status(pid, {"completed"})
    await asyncio.sleep(0.5)
    assert len(await _completions(pid)) == 1
    assert (await Payment.select(Payment.amount).where(Payment.id == pid).first())["amount"] == Decimal("3000.00")
    await assert_books_agree()


async def test_a_charge_for_no_payment_and_a_refund_we_did_not_ask_for_are_listed_once(card_live, worker, alice, bob, queue):
    """A KES 1,500 charge made with a reference the portal never issued: listed, not credited. A
    member's KES 3,000 card payment refunded KES 1,000 on Flutterwave's dashboard: listed, the
    books untouched (nothing refunded in the portal); a KES 500 refund staff made in the portal is
    the portal's own and not listed."""
    async with FlutterwaveClient(card_live.settings) as client:
        await client.create_payment("ELSEWHERE-1", Money(Decimal("1500"), "KES"), f"{card_live.portal}/nowhere",
                                    {"email": "x@example.test", "phonenumber": "254700000000", "name": "X"}, "Gym", "Other")
    stranger = await _pay(card_live, "ELSEWHERE-1", scenario="none")

    member = await make_member()
    await invoice_for(member, 3000)
    pid, tx_ref = await _checkout(alice, member)
    paid = await _pay(card_live, tx_ref)
    await wait_for_status(pid, {"completed"})
    # Staff refund KES 500 in the portal (Flutterwave is asked by the portal)...
    r = await bob.post(f"/payments/{pid}/refund", {"amount": "500", "reason": "Discount given late"})
    assert r.status_code == 303, r.text
    for _ in range(300):
        if (await Payment.select(Payment.refunded).where(Payment.id == pid).first())["refunded"] == Decimal("500.00"):
            break
        await asyncio.sleep(0.05)
    # ...and someone refunds KES 1,000 on Flutterwave's dashboard, outside the portal.
    async with FlutterwaveClient(card_live.settings) as client:
        dashboard = await client.refund(paid["transaction_id"], Money(Decimal("1000"), "KES"))

    [today] = await _pass(queue)
    assert today == {"day": _today(), "transactions": 2, "credited": 0, "unknown": 1, "refunds": 2,
                     "refunds_unrecorded": 1}
    unknown = await StaffAlert.select().where(StaffAlert.kind == "card_unknown")
    assert len(unknown) == 1 and str(stranger["transaction_id"]) in unknown[0]["message"]
    [refund_alert] = await StaffAlert.select().where(StaffAlert.kind == "card_refund_unrecorded")
    assert refund_alert["payment"] == pid and "1,000.00" in refund_alert["message"]
    finding = await ReconcileFinding.select().where(ReconcileFinding.kind == "refund_unrecorded").first()
    assert (finding["external_id"], finding["payment"], finding["amount"]) == (str(dashboard.id), pid, "1000")
    # Nothing moved: the portal's refund only.
    assert (await Payment.select(Payment.refunded).where(Payment.id == pid).first())["refunded"] == Decimal("500.00")
    assert await Payment.count().where(Payment.amount == Decimal("1500")) == 0

    page = await bob.get("/alerts")
    assert page.status_code == 200
    for shown in ("Refund made outside the portal", "Card payment not ours?", str(dashboard.id)):
        assert shown in page.text, shown

    [again] = await _pass(queue)
    assert (again["unknown"], again["refunds_unrecorded"]) == (0, 0)
    assert await StaffAlert.count().where(StaffAlert.kind.is_in(["card_unknown", "card_refund_unrecorded"])) == 2
    await assert_books_agree()
