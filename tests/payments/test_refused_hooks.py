"""Requests that fail a hook's authentication (issue 12.4, "Anyone can fill the disk"): they are
counted on one row per hook, address and day, with only their first bytes kept, and an address
sending too many gets 429; a gateway with its right token is never held up by them."""

import json

import httpx
import pytest

from portal.callbacks.store import REFUSED_SAMPLE
from portal.web.hooks import REFUSED_PER_ADDRESS_PER_MINUTE
from tables.billing import Payment
from tables.gateway import GatewayCallback
from tests.support.windows import clear_of_window_end

BIG = json.dumps({"pad": "x" * 250_000}).encode()


def _refused_url(live, hook: str) -> tuple[str, dict, object]:
    """(URL with a wrong token, headers, the answer a refused request gets within the limit)."""
    if hook == "flutterwave":
        return f"{live.portal}/hooks/flutterwave", {"verif-hash": "guessed"}, {"status": "success"}
    if hook == "sms":
        return f"{live.portal}/hooks/sms/delivery/guessed-token", {}, "OK"
    return (live.hook(hook).replace(live.settings.daraja_callback_token, "guessed-token"), {},
            {"ResultCode": 0, "ResultDesc": "Success"})


@pytest.mark.parametrize("hook,gateway,kind", [("c2b/confirmation", "daraja", "c2b_confirmation"),
                                               ("flutterwave", "flutterwave", "webhook"),
                                               ("sms", "africastalking", "delivery")])
async def test_wrong_token_requests_are_counted_not_kept_and_limited_per_address(live, hook, gateway, kind):
    url, headers, answer = _refused_url(live, hook)
    over = 5
    await clear_of_window_end(60, margin=15)
    async with httpx.AsyncClient(timeout=30) as http:
        statuses = []
        for _ in range(REFUSED_PER_ADDRESS_PER_MINUTE + over):
            r = await http.post(url, content=BIG, headers={"content-type": "application/json", **headers})
            statuses.append(r.status_code)
            if r.status_code == 200:
                assert (r.text if isinstance(answer, str) else r.json()) == answer
        # Another address is counted on a row of its own and is not held up by the first.
        other = await http.post(url, content=b"from elsewhere", headers={"x-forwarded-for": "198.51.100.7", **headers})
    assert statuses == [200] * REFUSED_PER_ADDRESS_PER_MINUTE + [429] * over
    assert other.status_code == 200
    rows = await GatewayCallback.select().order_by(GatewayCallback.id)
    assert [(r["gateway"], r["kind"], r["outcome"], r["source_ip"], r["deliveries"]) for r in rows] == [
        (gateway, kind, "rejected", "127.0.0.1", REFUSED_PER_ADDRESS_PER_MINUTE),
        (gateway, kind, "rejected", "198.51.100.7", 1)]
    assert rows[0]["body"] == BIG[:REFUSED_SAMPLE].decode() and f"of {len(BIG)} bytes kept" in rows[0]["note"]
    assert rows[1]["body"] == "from elsewhere"
    [stored] = await GatewayCallback.raw("SELECT sum(octet_length(body)) AS bytes FROM gateway_callback")
    assert stored["bytes"] <= 2 * REFUSED_SAMPLE
    assert all(r["processed_at"] is None for r in rows) and await Payment.count() == 0


async def test_the_right_token_is_taken_from_an_address_over_its_limit(live):
    await clear_of_window_end(60, margin=15)
    url, _, _ = _refused_url(live, "c2b/confirmation")
    body = json.dumps({"TransactionType": "Pay Bill", "TransID": "TKR0000001", "TransTime": "20261126101500",
                       "TransAmount": "3000", "BusinessShortCode": "174379", "BillRefNumber": "NOBODY",
                       "MSISDN": "2547 ***** 149", "FirstName": "JOHN"}).encode()
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(REFUSED_PER_ADDRESS_PER_MINUTE + 1):
            last = await http.post(url, content=b"{}")
        assert last.status_code == 429
        r = await http.post(live.hook("c2b/confirmation"), content=body)
    assert (r.status_code, r.json()) == (200, {"ResultCode": 0, "ResultDesc": "Success"})
    genuine = await GatewayCallback.select().where(GatewayCallback.external_id == "TKR0000001").first()
    assert genuine["outcome"] == "unmatched"  # taken and processed (no member has that account)
