"""The money dashboards: payments due (front desk and managers act on it), renewals due, and the
manager's analytics with charts, each with its table and CSV."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from litestar import Request, Response, get
from litestar.params import FromQuery
from litestar.response import Template

from portal.auth import manager_required, staff_required
from portal.billing import paylinks
from portal.lib.clock import today
from portal.lib.csvfile import CsvText
from portal.lib.errors import NotFound
from portal.lib.forms import parse_date
from portal.reports import analytics, dues, money_edits
from portal.web.pages import new_idempotency_key
from portal.web.templating import is_htmx


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
    template = "dues/_table.html" if is_htmx(request) else "dues/index.html"
    return Template(template, context={"page": page, "f": f, "urgencies": dues.URGENCIES,
                                       "idempotency_key": new_idempotency_key()})


@get("/renewals", guards=[manager_required])
async def renewals_due(request: Request, window: FromQuery[str] = "7", page: FromQuery[int] = 1) -> Template:
    result = await dues.renewals_due(window, page)
    return Template("dues/renewals.html", context={"page": result, "windows": dues.WINDOWS})


routes = [payments_due, renewals_due]


# --- analytics ------------------------------------------------------------------------------------

def _chart_data(data: dict) -> dict:
    """What the charts draw (the same numbers as the tables beside them), as JSON-safe values."""
    series = data["series"]
    return {
        "colours": analytics.METHOD_COLOURS,
        "revenue": {"labels": [r["bucket"].isoformat() for r in series],
                    "methods": {m: [str(r[m]) for r in series] for m in data["methods"]},
                    "refunds": [str(-r["refunds"]) for r in series], "net": [str(r["net"]) for r in series]},
        "methods": {"labels": [m["method"] for m in data["by_method"]],
                    "values": [str(m["amount_done"]) for m in data["by_method"]]},
        "success": {"labels": [m["method"] for m in data["by_method"] if m["success_rate"] is not None],
                    "values": [str(m["success_rate"]) for m in data["by_method"] if m["success_rate"] is not None]},
        "collection": {"labels": [c["name"] for c in data["collection"]["channels"]],
                       "values": [str(c["rate"] or 0) for c in data["collection"]["channels"]]},
        "collection_staff": {"labels": [c["name"] for c in data["collection"]["staff"]],
                             "values": [str(c["rate"] or 0) for c in data["collection"]["staff"]]},
        "aging": {"labels": [a["label"] for a in data["aging"]], "values": [str(a["owed"]) for a in data["aging"]]},
    }


@get("/analytics", guards=[manager_required])
async def analytics_page(request: Request) -> Template:
    period = analytics.Period.parse(request.query_params)
    # Revenue by category (about 50 ms a month at 20,000 members / 500,000 payments) runs beside
    # the report's own aggregates, on its own connection: the page waits for the slowest.
    data, by_category = await asyncio.gather(analytics.report(period), analytics.revenue_by_category(period))
    return Template("analytics/index.html", context={**data, "presets": analytics.PRESETS, "grains": analytics.GRAINS,
                                                     "charts": _chart_data(data), "by_category": by_category})


CSV_FIGURES = {
    "revenue": (["period_start", "received", "refunds", "net"], lambda d: [
        [r["bucket"], r["received"], r["refunds"], r["net"]] for r in d["series"]]),
    "methods": (["method", "started", "completed", "failed_or_cancelled", "pending", "success_rate_percent", "received"],
                lambda d: [[m["method"], m["started"], m["done"], m["bad"], m["pending"], m["success_rate"], m["amount_done"]]
                           for m in d["by_method"]]),
    "statuses": (["status", "payments", "amount"], lambda d: [[s["status"], s["n"], s["amount"]] for s in d["by_status"]]),
    "collection": (["dimension", "name", "collected", "due", "rate_percent"], lambda d: [
        *[["channel", c["name"], c["collected"], d["collection"]["due"], c["rate"]] for c in d["collection"]["channels"]],
        *[["staff", c["name"], c["collected"], d["collection"]["due"], c["rate"]] for c in d["collection"]["staff"]]]),
    "aging": (["bucket", "invoices", "owed"], lambda d: [[a["label"], a["n"], a["owed"]] for a in d["aging"]]),
    "top": (["member_number", "name", "payments", "paid"], lambda d: [
        [t["member_number"], t["name"], t["n"], t["amount"]] for t in d["top"]]),
}


@get("/analytics.csv", guards=[manager_required])
async def analytics_csv(request: Request, figure: FromQuery[str] = "revenue") -> Response:
    if figure not in CSV_FIGURES:
        raise NotFound("figure")
    period = analytics.Period.parse(request.query_params)
    data = await analytics.report(period)
    header, rows = CSV_FIGURES[figure]
    out = CsvText(request.app.state.settings.tz)
    out.row(header)
    out.rows(rows(data))
    name = f"{figure}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    return Response(out.take(), media_type="text/csv",
                    headers={"content-disposition": f'attachment; filename="{name}"'})


routes += [analytics_page, analytics_csv]


@get("/money-edits", guards=[manager_required])
async def money_edits_page(week: FromQuery[str] = "") -> Template:
    """Every refund, void, discount, write-off and reopened close of a week (Monday to Sunday)."""
    day = parse_date(week) if week else today()
    error = "" if day is not None else f"“{week[:40]}” is not a day: showing this week"
    monday = money_edits.monday_of(day or today())
    figures = await money_edits.week(monday)
    this_week = money_edits.monday_of(today())
    return Template("reports/money_edits.html", status_code=422 if error else 200, context={
        **figures, "error": error, "previous": monday - timedelta(days=7),
        "next": monday + timedelta(days=7) if monday < this_week else None})


routes += [money_edits_page]
