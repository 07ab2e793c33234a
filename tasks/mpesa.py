"""M-Pesa jobs: send a prompt, follow it up, and sweep up anything a lost job left behind."""

from __future__ import annotations

import time

from portal import queue
from portal.callbacks import store as callbacks
from portal.payments import mpesa, reversal


async def send_stk_push(ctx, *, payment_id: int) -> str:
    result = await mpesa.send_stk_push(payment_id)
    if result == "sent":
        await schedule_check(payment_id, mpesa.CHECK_DELAYS[0], 0)
    return result


async def check_stk(ctx, *, payment_id: int, attempt: int = 0) -> str:
    result = await mpesa.check_stk(payment_id)
    if result == "pending":
        delay = mpesa.CHECK_DELAYS[min(attempt + 1, len(mpesa.CHECK_DELAYS) - 1)]
        await schedule_check(payment_id, delay, attempt + 1)
    return result


async def send_reversal(ctx, *, request_id: int) -> str:
    return await reversal.send_reversal(request_id)


async def request_reversal_job(request_id: int) -> None:
    await queue.enqueue("send_reversal", key=f"reversal:{request_id}", timeout=60, retries=4, request_id=request_id)


async def request_stk_push(payment_id: int) -> None:
    await queue.enqueue("send_stk_push", key=f"stk:{payment_id}", timeout=60, retries=4, payment_id=payment_id)


async def schedule_check(payment_id: int, delay: float, attempt: int) -> None:
    await queue.get_queue().enqueue("check_stk", key=f"stk-check:{payment_id}:{attempt}", timeout=60, retries=1,
                                    scheduled=time.time() + delay, payment_id=payment_id, attempt=attempt)


async def sweep_mpesa(ctx) -> dict:
    """Every minute: prompts due a check or past their time, and callbacks stored but never
    processed (a crash between storing and acting, or a callback that beat its push)."""
    checked = 0
    for payment_id in await mpesa.due_checks():
        await mpesa.check_stk(payment_id)
        checked += 1
    processed = 0
    for callback_id in await callbacks.unprocessed(older_than_seconds=5):
        await callbacks.process(callback_id)
        processed += 1
    for payment_id in await mpesa.unsent_pushes():
        await request_stk_push(payment_id)
    return {"checked": checked, "callbacks": processed}
