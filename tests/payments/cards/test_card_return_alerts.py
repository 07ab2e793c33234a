"""Anyone can open /pay/card/return with whatever they like in it (issue 12.3, "Anyone can fill
the Alerts page"): a return naming no card payment of ours raises no alert and stores nothing, and
alerts about real payments that come from such returns are rate-limited; a gateway's are not."""

import httpx

from portal.callbacks.store import UNAUTHENTICATED_ALERTS_PER_HOUR
from tables.gateway import GatewayCallback, StaffAlert
from tests.billing.helpers import invoice_for
from tests.factories import make_member
from tests.payments.cards.test_cards import _checkout, _pay
from tests.support.live import wait_for_status
from tests.support.windows import clear_of_window_end


async def test_anonymous_returns_naming_no_payment_raise_no_alert(card_live):
    async with httpx.AsyncClient(base_url=card_live.portal) as anyone:
        for i in range(20):
            r = await anyone.get("/pay/card/return", params={"tx_ref": f"SPAM-{i}", "status": "successful"})
            assert r.status_code == 200
        for query in ("", "?status=successful", "?tx_ref=PTF-0000000000000000&transaction_id=abc"):
            assert (await anyone.get(f"/pay/card/return{query}")).status_code == 200
        r = await anyone.get("/pay/not-a-link/card/return", params={"tx_ref": "SPAM-x", "status": "successful"})
        assert r.status_code < 500
    assert await StaffAlert.count() == 0
    assert await GatewayCallback.count() == 0


async def test_alerts_from_returns_naming_a_real_payment_are_rate_limited(card_live, alice):
    member = await make_member()
    await invoice_for(member, 3000)
    pid, tx_ref, _ = await _checkout(alice, member)
    # Flutterwave charged another currency: verify says so, nothing is credited, staff are told.
    done = await _pay(card_live, tx_ref, card="success", scenario="none+wrong_currency")
    await clear_of_window_end(3600, margin=60)
    async with httpx.AsyncClient(base_url=card_live.portal) as anyone:
        for i in range(UNAUTHENTICATED_ALERTS_PER_HOUR + 5):  # each a return of its own (another status)
            r = await anyone.get("/pay/card/return", params={
                "tx_ref": tx_ref, "transaction_id": done["transaction_id"], "status": f"successful-{i}"})
            assert r.status_code == 200
    await wait_for_status(pid, {"failed"})
    assert await GatewayCallback.count().where(GatewayCallback.kind == "redirect") == UNAUTHENTICATED_ALERTS_PER_HOUR + 5
    assert await StaffAlert.count().where(StaffAlert.kind == "card_not_credited") == UNAUTHENTICATED_ALERTS_PER_HOUR

    # What a gateway sends with its right token is not held up by that limit.
    async with httpx.AsyncClient() as daraja:
        r = await daraja.post(card_live.hook("stk"), content=b"not json")
    assert r.status_code == 200
    assert await StaffAlert.count().where(StaffAlert.kind == "malformed") == 1
