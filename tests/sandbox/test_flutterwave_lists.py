"""GET /v3/transactions and GET /v3/refunds of the Flutterwave sandbox: a period's charges and
refunds, page by page (Flutterwave/Node-v3 documentation/transactions.md: meta.page_info)."""

from datetime import datetime, timezone

import httpx

from tests.support.flutterwave_helpers import AUTH, paid, settings


def _list(sandbox, path: str, **params) -> httpx.Response:
    return httpx.get(f"{sandbox}/v3/{path}", params=params, headers=AUTH)


def test_charges_of_the_day_page_by_page_newest_first(sandbox):
    settings(sandbox, list_page_size=2)
    ids = [paid(sandbox, tx_ref=f"list-{i}")["transaction_id"] for i in range(3)]
    ids += [paid(sandbox, card="declined", tx_ref="list-failed")["transaction_id"]]
    today = datetime.now(timezone.utc).date().isoformat()
    first = _list(sandbox, "transactions", **{"from": today, "to": today, "page": 1})
    assert first.status_code == 200
    body = first.json()
    assert (body["status"], body["message"]) == ("success", "Transactions fetched")
    assert body["meta"]["page_info"] == {"total": 4, "current_page": 1, "total_pages": 2}
    second = _list(sandbox, "transactions", **{"from": today, "to": today, "page": 2}).json()
    listed = [str(t["id"]) for t in body["data"] + second["data"]]
    assert listed == [str(i) for i in reversed(ids)]
    item = body["data"][0]
    assert (item["status"], item["payment_type"], item["tx_ref"]) == ("failed", "card", "list-failed")
    assert "token" not in item["card"] and item["customer_email"]
    assert _list(sandbox, "transactions", **{"from": today, "to": today, "page": 3}).json()["data"] == []
    assert _list(sandbox, "transactions", **{"from": "2020-01-01", "to": "2020-01-02"}).json()["meta"]["page_info"][
        "total"] == 0
    assert _list(sandbox, "transactions", **{"from": "yesterday"}).status_code == 400
    assert httpx.get(f"{sandbox}/v3/transactions").status_code == 401


def test_refunds_of_the_day_are_listed(sandbox):
    tx = paid(sandbox, tx_ref="list-refund")["transaction_id"]
    r = httpx.post(f"{sandbox}/v3/transactions/{tx}/refund", json={"amount": 500}, headers=AUTH)
    assert r.status_code == 200, r.text
    today = datetime.now(timezone.utc).date().isoformat()
    body = _list(sandbox, "refunds", **{"from": today, "to": today}).json()
    assert body["meta"]["page_info"]["total"] == 1
    [refund] = body["data"]
    assert (str(refund["tx_id"]), refund["amount_refunded"], refund["id"]) == (str(tx), 500, r.json()["data"]["id"])
