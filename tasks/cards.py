"""Card jobs: send a refund to Flutterwave, and post refunds it accepted whose job was lost."""

from __future__ import annotations

from portal.payments.cards import checkout
from portal.payments.cards import refunds as card_refunds
from portal.payments.cards.refunds import request_card_refund_job
from tables.gateway import GatewayRequest


async def send_card_refund(ctx, *, request_id: int) -> str:
    return await card_refunds.send_card_refund(request_id)


async def sweep_card_refunds(ctx) -> dict:
    """Every minute, for refunds older than five minutes: one Flutterwave accepted but not yet
    posted (the job died in between) is posted; one whose sender died mid-call is failed with an
    alert; one whose job was lost before sending is sent."""
    rows = await GatewayRequest.raw(
        "SELECT id, status FROM gateway_request WHERE gateway = 'flutterwave' AND kind = 'refund' "
        "AND status IN ('requested', 'sending', 'sent') AND created_at < now() - interval '5 minutes' "
        "ORDER BY id LIMIT 100")
    for row in rows:
        if row["status"] == "sent":
            await card_refunds.post_sent_refund(row["id"])
        elif row["status"] == "sending":  # the sender died mid-call: we cannot know if it went
            await card_refunds.give_up(row["id"], card_refunds.NO_ANSWER)
        else:
            await request_card_refund_job(row["id"])
    return {"refunds": len(rows)}


async def sweep_card_checkouts(ctx) -> dict:
    """Every minute: card payments left in flight (the member closed the checkout, the redirect
    and webhook never came) are asked of Flutterwave, and settled or expired."""
    results = [await checkout.check_card_payment(pid) for pid in await checkout.card_payments_to_check()]
    return {"checked": len(results)}
