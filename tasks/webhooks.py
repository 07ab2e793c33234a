"""Webhook jobs: deliver one endpoint's due events; every minute, what lost jobs and dead workers left."""

from __future__ import annotations

from portal import webhooks


async def deliver_webhooks(ctx, *, endpoint_id: int) -> dict:
    return await webhooks.deliver_endpoint(endpoint_id)


async def sweep_webhooks(ctx) -> dict:
    return await webhooks.sweep()
