"""The member's pay page (public, reached only through a signed, expiring link) and the staff
side of pay links (create, copy, QR, revoke)."""

from __future__ import annotations

from typing import Annotated

import segno
from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from portal import paylinks
from portal.auth import staff_required
from portal.errors import RuleBroken
from portal.money import Money
from portal.payments import cards, mpesa
from portal.phones import display_phone
from tables.billing import Invoice, Payment
from tables.members import Member
from tasks.mpesa import request_stk_push

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def qr_svg(url: str) -> str:
    return segno.make(url, error="m").svg_inline(scale=4, dark="#111", light="#fff")


async def _page(request: Request, token: str, status: int = 200, **extra) -> Template:
    resolved = await paylinks.resolve(token)
    if resolved.problem:
        return Template("pay/unavailable.html", status_code=410 if resolved.problem in ("expired", "revoked") else 404,
                        context={"problem": resolved.problem})
    invoice = await Invoice.select().where(Invoice.id == resolved.link["invoice"]).first()
    member = await Member.select(Member.first_name, Member.phone).where(Member.id == invoice["member"]).first()
    owed = Money(invoice["total"] - invoice["paid"], invoice["currency"]) if invoice["status"] != "void" else Money.zero(invoice["currency"])
    return Template("pay/page.html", status_code=status, context={
        "token": token, "first_name": member["first_name"], "phone": display_phone(member["phone"]), "owed": owed,
        "number": invoice["number"], "settled": invoice["status"] in ("paid", "void"), **extra})


async def _link_invoice(token: str):
    """(resolved link, its invoice, what is still owed on it); invoice and owed are None when the
    link cannot be used."""
    resolved = await paylinks.resolve(token)
    if resolved.problem:
        return resolved, None, None
    invoice = await Invoice.select().where(Invoice.id == resolved.link["invoice"]).first()
    return resolved, invoice, Money(invoice["total"] - invoice["paid"], invoice["currency"])


@get("/pay/{token:str}")
async def pay_page(request: Request, token: FromPath[str]) -> Template:
    return await _page(request, token)


@post("/pay/{token:str}/card", status_code=200)
async def pay_by_card(request: Request, token: FromPath[str], data: FormData) -> Template | Redirect:
    resolved, invoice, owed = await _link_invoice(token)
    if resolved.problem:
        return await _page(request, token)
    try:
        recorded, link = await cards.start_card_checkout(
            member_id=invoice["member"], amount=owed, invoice_id=invoice["id"],
            idempotency_key=f"paylink:{resolved.link['id']}:card:{data.get('attempt', '')}"[:80],
            redirect_url=request.app.state.settings.public_base_url + "/pay/card/return")
    except RuleBroken as e:
        return await _page(request, token, status=422, error=str(e))
    return Redirect(link or f"/pay/{token}", status_code=303)


@post("/pay/{token:str}/mpesa", status_code=200)
async def pay_by_mpesa(request: Request, token: FromPath[str], data: FormData) -> Template | Redirect:
    resolved, invoice, owed = await _link_invoice(token)
    if resolved.problem:
        return await _page(request, token)
    whole = Money(owed.amount.to_integral_value(rounding="ROUND_CEILING"), owed.currency)
    try:
        recorded = await mpesa.start_stk_push(
            member_id=invoice["member"], phone=data.get("phone", ""), amount=whole, invoice_id=invoice["id"],
            idempotency_key=f"paylink:{resolved.link['id']}:mpesa:{data.get('attempt', '')}"[:80])
    except RuleBroken as e:
        return await _page(request, token, status=422, error=str(e), typed_phone=data.get("phone", ""))
    if recorded.created:
        await request_stk_push(recorded.payment["id"])
    return Redirect(f"/pay/{token}/payments/{recorded.payment['id']}", status_code=303)


@get("/pay/{token:str}/payments/{payment_id:int}")
async def pay_status(request: Request, token: FromPath[str], payment_id: FromPath[int]) -> Template:
    resolved = await paylinks.resolve(token)
    if resolved.problem:
        return await _page(request, token)
    payment = await Payment.select().where(
        (Payment.id == payment_id) & (Payment.invoice == resolved.link["invoice"])).first()
    if not payment:
        return Template("pay/unavailable.html", status_code=404, context={"problem": "unknown"})
    template = "pay/_status.html" if request.headers.get("hx-request") == "true" else "pay/status.html"
    return Template(template, context={"token": token, "payment": payment, "phone": display_phone(payment["phone"]),
                                       "in_flight": payment["status"] in ("pending", "processing")})


@post("/invoices/{invoice_id:int}/paylink", guards=[staff_required], status_code=200)
async def create_paylink(request: Request, invoice_id: FromPath[int]) -> Redirect:
    token = await paylinks.create_link(invoice_id, request.scope["user"].staff_id)
    return Redirect(f"/invoices/{invoice_id}?link={token}", status_code=303)


@post("/invoices/{invoice_id:int}/paylink/revoke", guards=[staff_required], status_code=200)
async def revoke_paylink(request: Request, invoice_id: FromPath[int]) -> Redirect:
    await paylinks.revoke_links(invoice_id, request.scope["user"].staff_id)
    return Redirect(f"/invoices/{invoice_id}", status_code=303)


routes = [pay_page, pay_by_card, pay_by_mpesa, pay_status, create_paylink, revoke_paylink]
