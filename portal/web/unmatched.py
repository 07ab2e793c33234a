"""Unmatched M-Pesa: Paybill payments whose account number matched no member or invoice.

Staff find the member (the members live search, or the likely members offered under a payment
whose phone M-Pesa hashed or masked: portal.reconcile.phones) and press "Match and renew": the money is
credited to that member through the same path as a matched confirmation (oldest open invoice
first, which renews the membership it pays for; any excess kept as credit; a numbered receipt).

    GET  /mpesa/unmatched                         the queue
    GET  /mpesa/unmatched/{id}/members?q=         member search for one payment (htmx partial)
    POST /mpesa/unmatched/{id}/match              member_id [, invoice] -> the payment page
    POST /mpesa/unmatched/{id}/not-ours           reason -> (managers) not the gym's money: the reconciliation
                                                  page's "not ours" (one resolution for both pages,
                                                  portal.reconcile.actions.not_ours_waiting)

`unmatched_count()` is the navigation badge's number (one indexed query).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from portal.auth import manager_required, staff_required
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.forms import whole
from portal.lib.i18n import S_
from portal.members.members import search_members
from portal.payments.mpesa import c2b
from portal.payments.mpesa.c2b import unmatched_count  # noqa: F401  (the badge: portal.web.unmatched.unmatched_count)
from portal.reconcile import actions
from portal.reconcile.phones import candidates_for
from portal.web.templating import is_htmx

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

MAX_CHOICES = 8  # members offered per search (the search is ordered by name)


async def _page(*, status: int = 200, search_for: int | None = None, query: str = "", error: str = "",
                error_for: int | None = None, done: str = "", reason: str = "") -> Template:
    rows = await c2b.unmatched_payments()
    result = await search_members(query) if search_for is not None and query.strip() else None
    return Template("mpesa/unmatched.html", status_code=status, context={
        "rows": rows, "candidates": await candidates_for(rows), "search_for": search_for, "query": query, "result": result, "max_choices": MAX_CHOICES,
        "error": error, "error_for": error_for, "done": done, "reason": reason,
    })


@get("/mpesa/unmatched", guards=[staff_required])
async def unmatched_list(done: FromQuery[str] = "") -> Template:
    return await _page(done=done[:200])


@get("/mpesa/unmatched/{callback_id:int}/members", guards=[staff_required])
async def unmatched_member_search(request: Request, callback_id: FromPath[int], q: FromQuery[str] = "") -> Template:
    """Members to match one payment to: the partial for htmx, the whole page without script."""
    if not is_htmx(request):
        return await _page(search_for=callback_id, query=q)
    result = await search_members(q) if q.strip() else None
    return Template("mpesa/_match_results.html", context={
        "callback_id": callback_id, "result": result, "query": q, "max_choices": MAX_CHOICES})


@post("/mpesa/unmatched/{callback_id:int}/match", guards=[staff_required], status_code=200)
async def unmatched_match(request: Request, callback_id: FromPath[int], data: FormData) -> Template | Redirect:
    member, invoice = whole(data.get("member_id")), whole(data.get("invoice"))
    if member is None or ((data.get("invoice") or "").strip() and invoice is None):
        return await _page(status=422, error="Choose the member this payment is from", error_for=callback_id)
    try:
        recorded = await c2b.match_unmatched(callback_id, member, request.scope["user"].staff_id,
                                             invoice_id=invoice)
    except RuleBroken as e:
        return await _page(status=422, error=str(e), error_for=callback_id)
    except NotFound as e:
        if str(e) == "member":
            return await _page(status=422, error="That member no longer exists", error_for=callback_id)
        raise
    return Redirect(f"/payments/{recorded.payment['id']}", status_code=303)


@post("/mpesa/unmatched/{callback_id:int}/not-ours", guards=[manager_required], status_code=200)
async def unmatched_not_ours(request: Request, callback_id: FromPath[int], data: FormData) -> Template | Redirect:
    """Not the gym's money (someone paid the wrong Paybill): settled as the reconciliation page's
    "not ours", so it leaves this list and the day's counted totals together, once."""
    reason = data.get("reason") or ""
    try:
        settled = await actions.not_ours_waiting(callback_id, reason=reason, staff_id=request.scope["user"].staff_id)
    except RuleBroken as e:
        return await _page(status=422, error=str(e), error_for=callback_id, reason=reason)
    key = settled.resolution["key"].removeprefix("mpesa:")
    note = (S_("%(code)s marked not ours") if settled.new else S_("%(code)s was already settled: nothing done again")) % {
        "code": key}
    return Redirect(f"/mpesa/unmatched?{urlencode({'done': note})}", status_code=303)


@get("/mpesa/unmatched/count", guards=[staff_required])
async def unmatched_badge() -> Template:
    """The navigation badge, loaded after the page (so every page keeps its fixed query count)."""
    return Template("mpesa/_badge.html", context={"count": await unmatched_count()})


routes = [unmatched_list, unmatched_member_search, unmatched_match, unmatched_not_ours, unmatched_badge]
