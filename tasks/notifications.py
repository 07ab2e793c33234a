"""Message jobs: send one message; every minute, send what a lost job left queued."""

from __future__ import annotations

from portal.callbacks import dispatch
from portal.messages import delivery, outbox


async def send_message(ctx, *, message_id: int) -> str:
    """Retried by SAQ with backoff when delivery raises RetryLater (the row is queued again)."""
    result = await delivery.deliver(message_id)
    if result == "sent":
        await dispatch.process_all(await delivery.reports_waiting(message_id))
    return result


async def sweep_messages(ctx) -> dict:
    """Queued messages get a job (a no-op for those that have one, e.g. waiting for a retry);
    messages a dead worker left half-sent are failed for staff to resend."""
    stuck = await outbox.give_up_stuck()
    queued = await outbox.unsent()
    await outbox.nudge(queued)
    return {"queued": len(queued), "stuck": len(stuck)}
