"""Payers for others: the list (with what each owes), create and edit, the payer's page (members,
open invoices, payments, the desk payment form, linking members), the statement, and the member
page's payer box (loaded by htmx, so the member page's query count is unchanged)."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from portal.auth import staff_required
from portal.documents import store as document_store
from portal.documents.requests import request_document, request_receipts
from portal.lib.clock import today
from portal.lib.errors import RuleBroken
from portal.lib.forms import desk_payment_form
from portal.lib.paging import page_number
from portal.payers import payers
from portal.payers.payments import record_payer_payment
from portal.payments.limits import NeedsConfirmation
from portal.payments.service import desk_payment_problems
from portal.payments.state import KeyReused
from portal.web.pages import ask_to_confirm, new_idempotency_key
from tables.locations import Location
from tables.payers import Payer

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


@get("/payers", guards=[staff_required])
async def payer_list(request: Request, q: FromQuery[str] = "") -> Template:
    page = page_number(request.query_params)
    rows, count = await payers.payer_list(q, page)
    return Template("payers/index.html", context={
        "payers": rows, "count": count, "q": q, "page": page, "pages": max(1, -(-count // payers.PAGE_SIZE)),
        "kinds": payers.KINDS})


def _form(values: dict, errors: dict, payer_id: int | None = None, status: int = 200) -> Template:
    return Template("payers/form.html", status_code=status,
                    context={"values": values, "errors": errors, "payer_id": payer_id, "kinds": payers.KINDS})


@get("/payers/new", guards=[staff_required])
async def payer_new(kind: FromQuery[str] = "company") -> Template:
    return _form({"kind": kind if kind in payers.KINDS else "company"}, {})


@post("/payers/new", guards=[staff_required], status_code=200)
async def payer_create(request: Request, data: FormData) -> Template | Redirect:
    values, errors = payers.payer_form(data)
    if errors:
        return _form(values, errors, status=422)
    payer_id = await payers.create_payer(values["clean"], request.scope["user"].staff_id)
    return Redirect(f"/payers/{payer_id}", status_code=303)


@get("/payers/{payer_id:int}/edit", guards=[staff_required])
async def payer_edit(payer_id: FromPath[int]) -> Template:
    return _form(payers.form_values(await payers.get_payer(payer_id)), {}, payer_id)


@post("/payers/{payer_id:int}/edit", guards=[staff_required], status_code=200)
async def payer_update(request: Request, payer_id: FromPath[int], data: FormData) -> Template | Redirect:
    await payers.get_payer(payer_id)
    values, errors = payers.payer_form(data)
    if errors:
        return _form(values, errors, payer_id, status=422)
    await payers.update_payer(payer_id, values["clean"], request.scope["user"].staff_id)
    return Redirect(f"/payers/{payer_id}", status_code=303)


async def _payer_page(payer_id: int, *, status: int = 200, pay_values: dict | None = None,
                      pay_errors: dict | None = None, link_values: dict | None = None,
                      link_errors: dict | None = None) -> Template:
    """The payer, its members (each with what they owe), the open invoices addressed to it in the
    order a payment settles them, its recent payments, the desks: a fixed number of queries."""
    payer = await payers.get_payer(payer_id)
    invoices = await payers.payer_open_invoices(payer_id)
    owed = sum((inv["balance"] for inv in invoices), 0)
    if pay_values is None:
        pay_values = {"method": "cash", "amount": f"{owed:.2f}" if owed > 0 else "",
                      "idempotency_key": new_idempotency_key()}
    return Template("payers/detail.html", status_code=status, context={
        "payer": payer, "members": await payers.payer_members(payer_id), "invoices": invoices, "owed": owed,
        "payments": await payers.payer_payments(payer_id), "kinds": payers.KINDS,
        "desks": await Location.select(Location.id, Location.name).where(Location.active == True).order_by(  # noqa: E712
            Location.name),
        "pay_values": pay_values, "pay_errors": pay_errors or {},
        "link_values": link_values or {}, "link_errors": link_errors or {},
    })


@get("/payers/{payer_id:int}", guards=[staff_required])
async def payer_detail(payer_id: FromPath[int]) -> Template:
    return await _payer_page(payer_id)


@post("/payers/{payer_id:int}/members", guards=[staff_required], status_code=200)
async def payer_link(request: Request, payer_id: FromPath[int], data: FormData) -> Template | Redirect:
    values = {"member": (data.get("member") or "").strip()}
    try:
        await payers.link_member(payer_id, values["member"][:40], request.scope["user"].staff_id)
    except RuleBroken as e:
        return await _payer_page(payer_id, status=422, link_values=values, link_errors={"member": str(e)})
    return Redirect(f"/payers/{payer_id}", status_code=303)


@post("/payers/{payer_id:int}/members/{member_id:int}/unlink", guards=[staff_required], status_code=200)
async def payer_unlink(request: Request, payer_id: FromPath[int], member_id: FromPath[int],
                       data: FormData) -> Redirect:
    await payers.unlink_member(payer_id, member_id, request.scope["user"].staff_id)
    back = data.get("back") == "member"
    return Redirect(f"/members/{member_id}" if back else f"/payers/{payer_id}", status_code=303)


def _desk_field(error: RuleBroken) -> str:
    return error.field if error.field in ("method", "amount", "reference", "location") else "amount"


@post("/payers/{payer_id:int}/payments", guards=[staff_required], status_code=200)
async def payer_payment(request: Request, payer_id: FromPath[int], data: FormData) -> Template | Redirect:
    """Cash, bank or cheque from the payer: settles the oldest invoices addressed to it first."""
    await payers.get_payer(payer_id)
    values, errors = desk_payment_form(data, request.app.state.settings.currency)
    values["idempotency_key"] = values["idempotency_key"] or new_idempotency_key()
    clean = values.pop("clean")
    for problem in desk_payment_problems(method=clean["method"], amount=clean["amount"], reference=clean["reference"]):
        errors.setdefault(_desk_field(problem), str(problem))
    if not errors:
        user = request.scope["user"]
        try:
            recorded = await record_payer_payment(
                payer_id=payer_id, method=clean["method"], amount=clean["amount"], reference=clean["reference"],
                idempotency_key=values["idempotency_key"], staff_id=user.staff_id,
                location_id=user.location_id or clean["location_id"], note=clean["note"], confirmed=clean["confirmed"])
        except NeedsConfirmation as e:
            errors["amount"] = str(e)
            values.update(ask_to_confirm(clean["amount"]))
        except KeyReused as e:
            values["idempotency_key"] = new_idempotency_key()
            errors["amount"] = str(e)
        except RuleBroken as e:
            errors[_desk_field(e)] = str(e)
        else:
            if recorded.created:
                await request_receipts(recorded.payment["id"])
            return Redirect(f"/payments/{recorded.payment['id']}", status_code=303)
    return await _payer_page(payer_id, status=422, pay_values=values, pay_errors=errors)


@get("/payers/{payer_id:int}/statement", guards=[staff_required])
async def payer_statement(payer_id: FromPath[int]) -> Template:
    payer = await payers.get_payer(payer_id)
    day = today()
    st = await payers.statement(payer_id, day)
    subject = await document_store.payer_statement_subject(payer_id, day)
    ready = await document_store.find("payer_statement", subject)
    if not ready:
        await request_document("payer_statement", subject)
    return Template("payers/statement.html", context={
        "payer": payer, "st": st, "kinds": payers.KINDS,
        "doc": {"kind": "payer_statement", "subject": subject, "label": "Statement PDF", "ready": ready}})


# --- the member page's payer box ----------------------------------------------------------------

@get("/members/{member_id:int}/payer", guards=[staff_required])
async def member_payer(member_id: FromPath[int]) -> Template:
    """Who pays this member's invoices, with unlink; or a choice of payer to link to."""
    current = await payers.payer_of_member(member_id)
    choices = [] if current else await Payer.select(Payer.id, Payer.name).order_by(Payer.name).limit(500)
    return Template("payers/_member_payer.html", context={"member_id": member_id, "current": current,
                                                          "choices": choices})


@post("/members/{member_id:int}/payer", guards=[staff_required], status_code=200)
async def member_payer_link(request: Request, member_id: FromPath[int], data: FormData) -> Redirect:
    payer_id = (data.get("payer") or "").strip()
    if not (payer_id.isascii() and payer_id.isdigit() and len(payer_id) < 10):
        return Redirect(f"/members/{member_id}", status_code=303)
    await payers.link_member(int(payer_id), "", request.scope["user"].staff_id, member_id=member_id)
    return Redirect(f"/members/{member_id}", status_code=303)


routes = [payer_list, payer_new, payer_create, payer_edit, payer_update, payer_detail, payer_link, payer_unlink,
          payer_payment, payer_statement, member_payer, member_payer_link]
