"""Reconciliation of M-Pesa (managers): Daraja's own book and the org portal's statement against
the ledger.

    GET  /reconcile/mpesa                      statements imported, Pull Transactions buttons, upload form
    POST /reconcile/mpesa/pull                 hours -> ask Daraja now (portal.reconcile.pull)
    POST /reconcile/mpesa/register             register the Paybill for Pull Transactions
    POST /reconcile/mpesa/statements           the statement CSV (multipart) -> its page, or 422 with the
                                               line and column that are wrong (nothing stored)
    GET  /reconcile/mpesa/statements/{id}      lines by outcome, lines needing attention, ledger payments
                                               the statement has no line for
"""

from __future__ import annotations

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from portal.auth import manager_required
from portal.gateways.daraja import DarajaFieldError
from portal.gateways.http import GatewayError
from portal.lib.errors import NotFound
from portal.lib.forms import whole
from portal.reconcile import pull, statements
from portal.reconcile.statement import MAX_BYTES, StatementError
from portal.settings import get_settings


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
    try:
        imported = await statements.import_statement(data, filename=upload.filename,
                                                     staff_id=request.scope["user"].staff_id)
    except StatementError as e:
        return await _page(status=422, error=f"{upload.filename} was not imported, nothing was changed. {e}")
    suffix = "" if imported.new else "?again=1"
    return Redirect(f"/reconcile/mpesa/statements/{imported.statement_id}{suffix}", status_code=303)


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


routes = [reconcile_mpesa, reconcile_pull, reconcile_register, reconcile_upload, reconcile_statement]
