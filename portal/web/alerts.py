"""Alerts for staff: money that arrived late, amounts that differ, callbacks we could not read
or match, refused reversals. Each links to what it is about; a manager marks it dealt with."""

from __future__ import annotations

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from portal import audit
from portal.auth import manager_required, staff_required
from portal.lib.clock import now
from portal.lib.errors import NotFound
from tables.gateway import StaffAlert

ALERTS_SQL = """
SELECT a.id, a.kind, a.message, a.created_at, a.resolved, a.payment, a.callback,
       c.gateway, c.kind AS callback_kind, c.body, c.outcome, c.deliveries, c.source_ip
FROM staff_alert a LEFT JOIN gateway_callback c ON c.id = a.callback
WHERE a.resolved = {}
ORDER BY a.created_at DESC, a.id DESC
LIMIT 200
"""

KIND_LABELS = {"late_success": "Money after expiry", "amount_mismatch": "Amount differs", "unmatched": "Unmatched",
               "malformed": "Unreadable callback", "reversal_failed": "Reversal refused",
               "reversal_unconfirmed": "Reversal not confirmed", "reversal_twice": "Reversed twice?",
               "c2b_assumed_stk": "Paybill copy of a prompt", "callback_stuck": "Callback given up on",
               "card_not_credited": "Card not credited", "refund_failed": "Card refund refused",
               "webhook_disabled": "Webhook switched off"}
# Reconciliation (portal.reconcile): what a gateway's own books showed that ours did not.
KIND_LABELS.update({"card_unknown": "Card payment not ours?", "card_refund_unrecorded": "Refund made outside the portal",
                    "stk_status_failed": "Prompt status not given", "stk_status_unclear": "Prompt status unclear"})


async def open_count() -> int:
    return await StaffAlert.count().where(StaffAlert.resolved == False)  # noqa: E712


@get("/alerts", guards=[staff_required])
async def alert_list(resolved: FromQuery[bool] = False) -> Template:
    rows = await StaffAlert.raw(ALERTS_SQL, resolved)
    return Template("alerts/index.html", context={"alerts": rows, "labels": KIND_LABELS, "resolved": resolved})


@get("/alerts/count", guards=[staff_required])
async def alert_badge() -> Template:
    return Template("mpesa/_badge.html", context={"count": await open_count()})


@post("/alerts/{alert_id:int}/resolve", guards=[manager_required], status_code=200)
async def alert_resolve(request: Request, alert_id: FromPath[int]) -> Redirect:
    staff_id = request.scope["user"].staff_id
    changed = await StaffAlert.update({StaffAlert.resolved: True, StaffAlert.resolved_by: staff_id,
                                       StaffAlert.resolved_at: now()}).where(
        (StaffAlert.id == alert_id) & (StaffAlert.resolved == False)).returning(StaffAlert.id)  # noqa: E712
    if not changed and not await StaffAlert.exists().where(StaffAlert.id == alert_id):
        raise NotFound("alert")
    if changed:
        await audit.record("alert.resolved", "staff_alert", alert_id, staff_id=staff_id)
    return Redirect("/alerts", status_code=303)


routes = [alert_list, alert_badge, alert_resolve]
