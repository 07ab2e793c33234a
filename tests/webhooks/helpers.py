from __future__ import annotations

import asyncio

from portal import webhooks
from tables.webhooks import WebhookDelivery


async def endpoint_for(receiver, events=None) -> int:
    endpoint_id, secret = await webhooks.create_endpoint(receiver.url, list(events or webhooks.EVENTS), "books", None)
    receiver.secret = secret
    return endpoint_id


def types(got) -> list[str]:
    return [g.event["type"] for g in got]


async def wait_for_delivery(predicate, count: int = 1, every: bool = False, timeout: float = 20):
    """The delivery rows once `count` of them satisfy `predicate` (the worker records a result
    just after the receiver answered). With `every`, returns all rows; else the first match."""
    for _ in range(int(timeout / 0.05)):
        rows = await WebhookDelivery.select().order_by(WebhookDelivery.id)
        matching = [r for r in rows if predicate(r)]
        if len(matching) >= count:
            return rows if every else matching[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"deliveries never got there: {[(r['id'], r['status'], r['last_status']) for r in rows]}")
