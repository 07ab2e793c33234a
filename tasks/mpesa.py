"""M-Pesa jobs: send a prompt, follow it up, and sweep up anything a lost job left behind."""

from __future__ import annotations

from portal.callbacks import dispatch
from portal.callbacks import store as callbacks
from portal.payments.mpesa import reversal
from portal.payments.mpesa import stk as mpesa
from portal.payments.mpesa.stk import request_stk_push, schedule_check
from portal.reconcile import stk_status


async def send_stk_push(ctx, *, payment_id: int) -> str:
    result = await mpesa.send_stk_push(payment_id)
    if result == "sent":
        # A callback may have beaten the push's answer: act on it now, not a sweep later.
        await dispatch.process_all(await mpesa.callbacks_waiting(payment_id))
        await schedule_check(payment_id, mpesa.CHECK_DELAYS[0], 0)
    elif result == "failed":
        # No answer in time, but the prompt may have reached the phone: a result that came
        # meanwhile, without our record of its id, can now be tied to this attempt.
        await dispatch.process_all(await mpesa.results_without_a_push())
    return result


async def check_stk(ctx, *, payment_id: int, attempt: int = 0) -> str:
    result = await mpesa.check_stk(payment_id, on_unsettled=stk_status.ask_status)
    if result == "status":  # a quiet prompt: Transaction Status asked; a Result may have beaten its ids
        await dispatch.process_all(await stk_status.callbacks_waiting(payment_id))
    if result == "pending":
        delay = mpesa.CHECK_DELAYS[min(attempt + 1, len(mpesa.CHECK_DELAYS) - 1)]
        await schedule_check(payment_id, delay, attempt + 1)
    return result


async def send_reversal(ctx, *, request_id: int) -> str:
    result = await reversal.send_reversal(request_id)
    if result == "sent":
        await dispatch.process_all(await reversal.callbacks_waiting(request_id))
    return result


async def sweep_mpesa(ctx) -> dict:
    """Every minute: prompts due a check or past their time, and callbacks stored but never
    processed (a crash between storing and acting, or a callback that beat its push)."""
    checked = 0
    for payment_id in await mpesa.due_checks():
        if await mpesa.check_stk(payment_id, on_unsettled=stk_status.ask_status) == "status":
            await dispatch.process_all(await stk_status.callbacks_waiting(payment_id))
        checked += 1
    processed = 0
    for callback_id in await callbacks.unprocessed(older_than_seconds=5):
        await dispatch.process(callback_id)
        processed += 1
    for payment_id in await mpesa.unsent_pushes():
        await request_stk_push(payment_id)
    return {"checked": checked, "callbacks": processed}
