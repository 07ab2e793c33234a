"""The money dashboards: payments due (front desk and managers act on it) and renewals due."""

from __future__ import annotations

from litestar import Request, get
from litestar.params import FromQuery
from litestar.response import Template

from portal import dues, paylinks
from portal.auth import manager_required, staff_required
from portal.web.billing import new_idempotency_key


def _decorate(rows: list[dict]) -> None:
    """Each row's live pay link URL (derived, no query) and the whole shillings an M-Pesa prompt asks."""
    for row in rows:
        row["prompt_amount"] = int(row["owed"].to_integral_value(rounding="ROUND_CEILING"))
        token = paylinks.token_for({"id": row["link_id"], "nonce": row["link_nonce"]}) if row.get("link_id") else None
        row["pay_link_url"] = paylinks.url_for(token) if token else ""


@get("/dues", guards=[staff_required])
async def payments_due(request: Request) -> Template:
    f = dues.DueFilters.parse(request.query_params)
    page = await dues.payments_due(f)
    _decorate(page.rows)
    template = "dues/_table.html" if request.headers.get("hx-request") == "true" else "dues/index.html"
    return Template(template, context={"page": page, "f": f, "urgencies": dues.URGENCIES,
                                       "idempotency_key": new_idempotency_key()})


@get("/renewals", guards=[manager_required])
async def renewals_due(request: Request, window: FromQuery[str] = "7", page: FromQuery[int] = 1) -> Template:
    result = await dues.renewals_due(window, page)
    return Template("dues/renewals.html", context={"page": result, "windows": dues.WINDOWS})


routes = [payments_due, renewals_due]
