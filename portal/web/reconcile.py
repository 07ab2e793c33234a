"""Reconciliation of M-Pesa (managers): Daraja's own book and the org portal's statement against
the ledger.

    GET  /reconcile/mpesa                      statements imported, Pull Transactions buttons, upload form
    POST /reconcile/mpesa/pull                 hours -> ask Daraja now (portal.reconcile.pull)
    POST /reconcile/mpesa/register             register the Paybill for Pull Transactions
    POST /reconcile/mpesa/statements           the statement CSV (multipart) -> its page, or 422 with the
                                               line and column that are wrong (nothing stored); a file
                                               of more than uploads.IN_REQUEST lines -> its upload's page
    GET  /reconcile/mpesa/uploads/{id}         a large file's import by the worker: its progress, polled
                                               (htmx) until done, then the statement's page
    GET  /reconcile/mpesa/statements/{id}      lines by outcome, lines needing attention, ledger payments
                                               the statement has no line for

The reconciliation page (every channel, per day):
    GET  /reconcile?month=YYYY-MM              days x channels: the gateway's total and count against the
                                               ledger's, green when equal, and who reconciled each day
    GET  /reconcile/days/{YYYY-MM-DD}          the day's cells and every difference, one action each
    POST /reconcile/days/{day}/settle          key, action, reason[, member] -> once (portal.reconcile.actions)
    POST /reconcile/days/{day}/reconciled      note -> who and when (refused while a difference is open)

Bank statements (portal.reconcile.bank):
    GET  /reconcile/bank                       the banks' column mappings, the upload form, statements imported
    POST /reconcile/bank/formats               save a bank's mapping (422 with each field's message)
    POST /reconcile/bank/statements            bank + CSV -> imported, or 422 with the line and column
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Response, Template

from portal.auth import manager_required
from portal.gateways.daraja import DarajaFieldError
from portal.gateways.http import GatewayError
from portal.lib.clock import today
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.forms import whole
from portal.reconcile import actions, bank, days, pull, statements, uploads
from portal.reconcile.bank_csv import DATE_FORMATS, Mapping
from portal.reconcile.statement import MAX_BYTES, StatementError
from portal.settings import get_settings
from portal.web.pages import ask_to_confirm
from portal.web.templating import is_htmx

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


async def _page(*, status: int = 200, pulled: str = "", error: str = "", pull_error: str = "",
                registered: str = "", hours: int = pull.PULL_HOURS) -> Template:
    return Template("reconcile/mpesa.html", status_code=status, context={
        "statements": await statements.statements(), "pulled": pulled, "error": error, "pull_error": pull_error,
        "registered": registered, "hours": hours, "kept_hours": pull.KEPT_HOURS, "labels": statements.LABELS,
        "max_mb": MAX_BYTES // (1024 * 1024)})


@get("/reconcile/mpesa", guards=[manager_required])
async def reconcile_mpesa() -> Template:
    return await _page()


@post("/reconcile/mpesa/pull", guards=[manager_required], status_code=200)
async def reconcile_pull(request: Request) -> Template:
    form = await request.form()
    hours = whole(form.get("hours"), pull.KEPT_HOURS)
    if hours is None or hours < 1:
        return await _page(status=422, pull_error=f"Give the hours to look back: 1 to {pull.KEPT_HOURS}",
                           hours=pull.PULL_HOURS)
    try:
        result = await pull.pull_recent(get_settings(), hours, staff_id=request.scope["user"].staff_id)
    except (GatewayError, DarajaFieldError) as e:
        return await _page(status=422, pull_error=f"Daraja did not answer the pull: {e}", hours=hours)
    return await _page(pulled=result.summary(), hours=hours)


@post("/reconcile/mpesa/register", guards=[manager_required], status_code=200)
async def reconcile_register(request: Request) -> Template:
    try:
        answer = await pull.register_pull(get_settings(), staff_id=request.scope["user"].staff_id)
    except DarajaFieldError as e:
        return await _page(status=422, pull_error=f"Set DARAJA_PULL_NOMINATED_NUMBER first ({e})")
    except GatewayError as e:
        return await _page(status=422, pull_error=f"Daraja refused the registration: {e}")
    return await _page(registered=f"Registered for Pull Transactions: Daraja said {answer!r}.")


@post("/reconcile/mpesa/statements", guards=[manager_required], status_code=200,
      request_max_body_size=MAX_BYTES + 64 * 1024)
async def reconcile_upload(request: Request) -> Template | Redirect:
    form = await request.form()
    upload = form.get("statement")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _page(status=422, error="Choose the statement file (CSV) to import")
    data = await upload.read()
    if not data:
        return await _page(status=422, error=f"{upload.filename} is empty")
    if not uploads.in_request(data):  # the worker imports it; its page shows how far it has got
        upload_id = await uploads.start(data, filename=upload.filename, staff_id=request.scope["user"].staff_id)
        return Redirect(f"/reconcile/mpesa/uploads/{upload_id}", status_code=303)
    try:
        imported = await statements.import_statement(data, filename=upload.filename,
                                                     staff_id=request.scope["user"].staff_id)
    except StatementError as e:
        return await _page(status=422, error=f"{upload.filename} was not imported, nothing was changed. {e}")
    suffix = "" if imported.new else "?again=1"
    return Redirect(f"/reconcile/mpesa/statements/{imported.statement_id}{suffix}", status_code=303)


@get("/reconcile/mpesa/uploads/{upload_id:int}", guards=[manager_required])
async def reconcile_upload_page(request: Request, upload_id: FromPath[int]) -> Template | Response:
    """A large statement's import: its bar, polled (htmx) until it ends, then its statement's page."""
    row = await uploads.upload(upload_id)
    if row is None:
        raise NotFound("upload")
    await uploads.nudge(row)
    if is_htmx(request) and row.finished and row.state == "done":
        suffix = "" if row.new else "?again=1"
        return Response("", status_code=200, headers={"HX-Redirect": f"/reconcile/mpesa/statements/{row.statement}{suffix}"})
    name = "reconcile/_upload.html" if is_htmx(request) else "reconcile/upload.html"
    return Template(name, context={"u": row})


@get("/reconcile/mpesa/statements/{statement_id:int}", guards=[manager_required])
async def reconcile_statement(statement_id: FromPath[int], again: FromQuery[str] = "") -> Template:
    row = await statements.statement(statement_id)
    if row is None:
        raise NotFound("statement")
    missing = await statements.missing_payments(row)
    return Template("reconcile/statement.html", context={
        "s": row, "lines": await statements.attention_lines(statement_id), "missing": missing,
        "missing_total": missing[0]["total"] if missing else 0, "labels": statements.LABELS, "again": bool(again),
        "shown": statements.SHOWN})


routes = [reconcile_mpesa, reconcile_pull, reconcile_register, reconcile_upload, reconcile_upload_page,
          reconcile_statement]


# --- the reconciliation page: days and channels (portal.reconcile.days, .actions) -------------------

def _month_of(text: str) -> date:
    try:
        month = datetime.strptime((text or "").strip(), "%Y-%m").date()
    except ValueError:
        return today().replace(day=1)
    return month if 2000 <= month.year <= 2100 else today().replace(day=1)


@get("/reconcile", guards=[manager_required])
async def reconcile_month(month: FromQuery[str] = "") -> Template:
    first = _month_of(month)
    days_ = days.month_days(first)
    after = days_[-1] + timedelta(days=1)
    by_cell, done = await days.cells(first, after), await days.reconciled(first, after)
    shown = [d for d in days_ if d <= today()] or days_[:1]
    return Template("reconcile/month.html", context={
        "month": first, "days": list(reversed(shown)), "cells": by_cell, "done": done, "channels": days.CHANNELS,
        "empty": days.Cell, "summaries": {d: days.summary(d, by_cell, done) for d in shown},
        "previous": (first - timedelta(days=1)).replace(day=1), "next": after if after <= today() else None})


def _day(text: str) -> date:
    """The day in the path (YYYY-MM-DD); anything else is no page."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise NotFound("day") from None
    if not 2000 <= day.year <= 2100:  # the page's neighbours (the day before, the week either side) exist
        raise NotFound("day")
    return day


async def _day_page(day: date, *, status: int = 200, errors: dict | None = None, values: dict | None = None,
                    failed_key: str = "", message: str = "", day_error: str = "") -> Template:
    after = day + timedelta(days=1)
    by_cell, done = await days.cells(day, after), await days.reconciled(day, after)
    rows = await days.differences(day)
    return Template("reconcile/day.html", status_code=status, context={
        "day": day, "cells": by_cell, "done": done.get(day), "channels": days.CHANNELS, "empty": days.Cell,
        "summary": days.summary(day, by_cell, done), "rows": rows, "total": rows[0]["total"] if rows else 0,
        "shown": days.SHOWN, "labels": actions.LABELS, "errors": errors or {}, "values": values or {},
        "failed_key": failed_key, "message": message, "day_error": day_error, "previous_day": day - timedelta(days=1)})


@get("/reconcile/days/{day:str}", guards=[manager_required])
async def reconcile_day(day: FromPath[str], done: FromQuery[str] = "") -> Template:
    day = _day(day)
    return await _day_page(day, message=done[:200])


@post("/reconcile/days/{day:str}/settle", guards=[manager_required], status_code=200)
async def reconcile_settle(request: Request, day: FromPath[str], data: FormData) -> Template | Redirect:
    day = _day(day)
    key, action = (data.get("key") or "")[:130], data.get("action") or ""
    values = {"key": key, "action": action, "reason": data.get("reason") or "", "member": data.get("member") or ""}
    try:
        settled = await actions.settle(day, key, action, reason=values["reason"], member=values["member"],
                                       staff_id=request.scope["user"].staff_id, confirmed=data.get("confirmed") or "")
    except actions.ConfirmRefund as e:  # a large refund: the form again, everything kept, with its box
        return await _day_page(day, status=422, errors={"action": str(e)}, values={**values, **ask_to_confirm(e.amount)},
                               failed_key=key)
    except RuleBroken as e:
        return await _day_page(day, status=422, errors={e.field or "action": str(e)}, values=values, failed_key=key)
    except NotFound:
        return await _day_page(day, status=422, errors={"action": "That difference is no longer on this day"},
                               values=values, failed_key=key)
    what = actions.LABELS[settled.resolution["action"]]
    note = f"{what}: {key}" if settled.new else f"{key} was already settled ({what}): nothing done again"
    return Redirect(f"/reconcile/days/{day.isoformat()}?{urlencode({'done': note})}", status_code=303)


@post("/reconcile/days/{day:str}/reconciled", guards=[manager_required], status_code=200)
async def reconcile_mark_day(request: Request, day: FromPath[str], data: FormData) -> Template | Redirect:
    day = _day(day)
    after = day + timedelta(days=1)
    summary = days.summary(day, await days.cells(day, after), await days.reconciled(day, after))
    try:
        new = await actions.mark_reconciled(day, staff_id=request.scope["user"].staff_id, note=data.get("note") or "",
                                            open_count=summary.open_count, uncovered=summary.uncovered)
    except RuleBroken as e:
        return await _day_page(day, status=422, day_error=str(e), values={"note": data.get("note") or ""})
    note = "Day marked reconciled" if new else "The day was already reconciled: nothing done again"
    return Redirect(f"/reconcile/days/{day.isoformat()}?{urlencode({'done': note})}", status_code=303)


routes += [reconcile_month, reconcile_day, reconcile_settle, reconcile_mark_day]


# --- bank statements ----------------------------------------------------------------------------

MAPPING_FIELDS = ("name", "date_column", "date_format", "description_column", "reference_column", "credit_column",
                  "debit_column", "amount_column")


async def _bank_page(*, status: int = 200, errors: dict | None = None, values: dict | None = None,
                     import_error: str = "", imported: str = "") -> Template:
    return Template("reconcile/bank.html", status_code=status, context={
        "formats": await bank.formats(), "statements": await bank.statements(), "errors": errors or {},
        "values": values or {}, "date_formats": [(k, k) for k in DATE_FORMATS], "import_error": import_error,
        "imported": imported, "max_mb": MAX_BYTES // (1024 * 1024)})


@get("/reconcile/bank", guards=[manager_required])
async def reconcile_bank(done: FromQuery[str] = "") -> Template:
    return await _bank_page(imported=done[:300])


@post("/reconcile/bank/formats", guards=[manager_required], status_code=200)
async def reconcile_bank_format(request: Request, data: FormData) -> Template | Redirect:
    values = {k: (data.get(k) or "").strip()[:80] for k in MAPPING_FIELDS}
    mapping = Mapping(*(values[k] for k in MAPPING_FIELDS[1:]))
    errors = mapping.problems()
    if not values["name"]:
        errors["name"] = "Name the bank (e.g. Equity Bank)"
    if errors:
        return await _bank_page(status=422, errors=errors, values=values)
    await bank.save_format(values["name"], mapping, request.scope["user"].staff_id)
    return Redirect(f"/reconcile/bank?{urlencode({'done': 'Saved the mapping of ' + values['name']})}", status_code=303)


@post("/reconcile/bank/statements", guards=[manager_required], status_code=200,
      request_max_body_size=MAX_BYTES + 64 * 1024)
async def reconcile_bank_upload(request: Request) -> Template | Redirect:
    form = await request.form()
    upload, chosen = form.get("statement"), form.get("format")
    format_id = whole(chosen, 2**31 - 1) if isinstance(chosen, str) else None
    if format_id is None:
        return await _bank_page(status=422, import_error="Choose the bank whose file this is")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _bank_page(status=422, import_error="Choose the statement file (CSV) to import")
    data = await upload.read()
    if not data:
        return await _bank_page(status=422, import_error=f"{upload.filename} is empty")
    try:
        imported = await bank.import_bank_statement(data, format_id, filename=upload.filename,
                                                    staff_id=request.scope["user"].staff_id, tz=get_settings().tz)
    except StatementError as e:
        return await _bank_page(status=422, import_error=f"{upload.filename} was not imported, nothing was changed. {e}")
    except LookupError:
        return await _bank_page(status=422, import_error="Choose the bank whose file this is")
    found = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in imported.summary.items())
    note = (f"Imported {upload.filename}: {found}" if imported.new
            else f"{upload.filename} was imported before: nothing changed")
    return Redirect(f"/reconcile/bank?{urlencode({'done': note})}", status_code=303)


routes += [reconcile_bank, reconcile_bank_format, reconcile_bank_upload]
