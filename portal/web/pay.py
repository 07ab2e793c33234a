"""The member's pay page (public, reached only through a signed, expiring link) and the staff
side of pay links (create, copy, QR, revoke)."""

from __future__ import annotations

import secrets
from typing import Annotated

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from portal.auth import staff_required
from portal.billing import paylinks
from portal.documents import store as document_store
from portal.lib import i18n, ratelimit
from portal.lib.errors import RuleBroken
from portal.lib.i18n import N_
from portal.lib.money import Money
from portal.lib.phones import display_phone
from portal.payments.cards import checkout as cards
from portal.payments.limits import METHOD_LABELS
from portal.payments.mpesa import stk as mpesa
from portal.payments.mpesa.stk import request_stk_push
from portal.payments.state import settlement_facts, settlement_of
from portal.web.cards import receive_card_redirect
from portal.web.client import client_ip
from portal.web.flash import back_with
from portal.web.templating import is_htmx
from tables.billing import Invoice, Payment
from tables.members import Member
from tables.statuses import IN_FLIGHT

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


# --- rate limits ----------------------------------------------------------------------------------
# Mobile networks put many phones behind one address, so the per-address limit is generous; what
# is strict is guessing (unusable links per address) and prompts pushed to one member's phone.

# --- language ------------------------------------------------------------------------------
# The pay pages speak the member's language (member.language). A member may switch with the
# page's "English | Kiswahili" links (?lang=…), kept in a cookie for the rest of the visit.

LANG_COOKIE = "pay_lang"


def _lang(request: Request, member_language: str | None = None) -> str:
    for asked in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if asked in i18n.LANGUAGES:
            return asked
    return i18n.known(member_language)


def _in_language(request: Request, template: Template, lang: str) -> Template:
    """`template` rendered in `lang`; a language chosen with ?lang= is remembered."""
    template.context["lang"] = lang
    if request.query_params.get("lang") in i18n.LANGUAGES:
        template.cookies.append(Cookie(key=LANG_COOKIE, value=lang, path="/pay", max_age=30 * 24 * 3600,
                                       httponly=True, samesite="lax",
                                       secure=request.app.state.settings.public_base_url.startswith("https://")))
    return template


def _too_many(request: Request, message: str) -> Template:
    return _in_language(request, Template("pay/unavailable.html", status_code=429, headers={"retry-after": "60"},
                                          context={"problem": "too_many", "message": message}), _lang(request))


async def limit_pay_requests(request: Request) -> Template | None:
    """Runs before every pay page handler: None lets the request through."""
    settings = request.app.state.settings
    ip = client_ip(request)
    if not await ratelimit.hit(f"pay:{ip}", settings.pay_rate_per_minute, 60):
        return _too_many(request, N_("Too many requests from your network. Please wait a minute and try again."))
    if await ratelimit.used_up(f"pay-bad:{ip}", settings.pay_bad_links_per_hour, 3600):
        return _too_many(request, N_("Too many invalid links were tried from your network. Please try again later."))
    return None


async def _unusable(request: Request, problem: str) -> Template:
    settings = request.app.state.settings
    await ratelimit.hit(f"pay-bad:{client_ip(request)}", settings.pay_bad_links_per_hour, 3600)
    return _in_language(request, Template("pay/unavailable.html", status_code=410 if problem in ("expired", "revoked") else 404,
                                          context={"problem": problem}), _lang(request))


async def _attempt_allowed(request: Request, link_id: int) -> bool:
    return await ratelimit.hit(f"pay-start:{link_id}", request.app.state.settings.pay_attempts_per_hour, 3600)


async def _page(request: Request, token: str, status: int = 200, **extra) -> Template:
    resolved = await paylinks.resolve(token)
    if resolved.problem:
        return await _unusable(request, resolved.problem)
    invoice = await Invoice.select().where(Invoice.id == resolved.link["invoice"]).first()
    member = await Member.select(Member.first_name, Member.phone, Member.language).where(Member.id == invoice["member"]).first()
    owed = Money(invoice["total"] - invoice["paid"], invoice["currency"]) if invoice["status"] != "void" else Money.zero(invoice["currency"])
    # Each showing of the page is one attempt: sending its form twice starts one payment, and
    # coming back to the link after a cancelled prompt or checkout starts a new one.
    return _in_language(request, Template("pay/page.html", status_code=status, context={
        "token": token, "attempt": secrets.token_urlsafe(12), "first_name": member["first_name"], "phone": display_phone(member["phone"]), "owed": owed,
        "number": invoice["number"], "settled": invoice["status"] in ("paid", "void"), **extra}), _lang(request, member["language"]))


async def _link_invoice(token: str):
    """(resolved link, its invoice, what is still owed on it); invoice and owed are None when the
    link cannot be used."""
    resolved = await paylinks.resolve(token)
    if resolved.problem:
        return resolved, None, None
    invoice = await Invoice.select().where(Invoice.id == resolved.link["invoice"]).first()
    return resolved, invoice, Money(invoice["total"] - invoice["paid"], invoice["currency"])


# What the phone check says most often (portal/lib/phones.py, capitalised by the M-Pesa rules),
# marked so the pay page can say it in the member's language; the rest are shown as they are.
PHONE_MESSAGES = (N_("Enter a phone number"), N_("Not a phone number"), N_("Not a valid Kenyan phone number"),
                  N_("Use a mobile number (M-Pesa needs one)"))

SLOW_DOWN = N_("You have started several payments in a short time. Please wait a while before trying again.")


async def _may_start(request: Request, token: str, **kept):
    """(link, invoice, owed, None) when this link may start a payment now; otherwise the page to
    answer with (an unusable link, or too many payments started from it lately)."""
    resolved, invoice, owed = await _link_invoice(token)
    if resolved.problem:
        return resolved, None, None, await _page(request, token)
    if not await _attempt_allowed(request, resolved.link["id"]):
        return resolved, None, None, await _page(request, token, status=429, error=SLOW_DOWN, **kept)
    return resolved, invoice, owed, None


PAY = {"before_request": limit_pay_requests}


@get("/pay/{token:str}", **PAY)
async def pay_page(request: Request, token: FromPath[str]) -> Template:
    return await _page(request, token)


@post("/pay/{token:str}/card", status_code=200, **PAY)
async def pay_by_card(request: Request, token: FromPath[str], data: FormData) -> Template | Redirect:
    resolved, invoice, owed, refusal = await _may_start(request, token)
    if refusal:
        return refusal
    try:
        recorded, link = await cards.start_card_checkout(
            member_id=invoice["member"], amount=owed, invoice_id=invoice["id"],
            idempotency_key=f"paylink:{resolved.link['id']}:card:{data.get('attempt', '')}"[:80],
            redirect_url=f"{request.app.state.settings.public_base_url}/pay/{token}/card/return")
    except RuleBroken as e:
        return await _page(request, token, status=422, error=str(e))
    return Redirect(link or f"/pay/{token}/payments/{recorded.payment['id']}", status_code=303)


@get("/pay/{token:str}/card/return", **PAY)
async def pay_card_return(request: Request, token: FromPath[str]) -> Template | Redirect:
    """Flutterwave brings the member back here from a pay link's checkout: the redirect is
    stored and verified like any other, then the member sees the payment's status page."""
    payment = await receive_card_redirect(request)
    resolved = await paylinks.resolve(token)
    if payment and not resolved.problem and payment["invoice"] == resolved.link["invoice"]:
        if payment["status"] in IN_FLIGHT and request.query_params.get("status") == "cancelled":
            # The member left the card page. Their word moves no money (the card check settles
            # the payment with Flutterwave), but it is enough to offer the page again.
            return await _page(request, token, error=N_("The card payment was not completed. You can try again."))
        return Redirect(f"/pay/{token}/payments/{payment['id']}", status_code=303)
    return Template("payments/card_return.html", context={"payment": payment})


@post("/pay/{token:str}/mpesa", status_code=200, **PAY)
async def pay_by_mpesa(request: Request, token: FromPath[str], data: FormData) -> Template | Redirect:
    resolved, invoice, owed, refusal = await _may_start(request, token, typed_phone=data.get("phone", ""))
    if refusal:
        return refusal
    whole = Money(owed.amount.to_integral_value(rounding="ROUND_CEILING"), owed.currency)
    try:
        recorded = await mpesa.start_stk_push(
            member_id=invoice["member"], phone=data.get("phone", ""), amount=whole, invoice_id=invoice["id"],
            idempotency_key=f"paylink:{resolved.link['id']}:mpesa:{data.get('attempt', '')}"[:80],
            confirmed=True)  # the member asks for what the page shows is owed: nothing typed to check
    except RuleBroken as e:
        # A phone M-Pesa cannot reach is said under the phone, as on the desk's form.
        problem = {"phone_error" if e.field == "phone" else "error": str(e)}
        return await _page(request, token, status=422, typed_phone=data.get("phone", ""), **problem)
    if recorded.created:
        await request_stk_push(recorded.payment["id"])
    return Redirect(f"/pay/{token}/payments/{recorded.payment['id']}", status_code=303)


async def _link_payment(request: Request, token: str, payment_id: int) -> tuple[dict | None, Template | None]:
    """A payment made through this link (never another invoice's), or the page to answer with."""
    resolved = await paylinks.resolve(token)
    if resolved.problem:
        return None, await _unusable(request, resolved.problem)
    payment = await Payment.select(Payment.all_columns(), Payment.member.language.as_alias("member_language")).where(
        (Payment.id == payment_id) & (Payment.invoice == resolved.link["invoice"])).first()
    if not payment:
        return None, await _unusable(request, "unknown")
    return payment, None


@get("/pay/{token:str}/payments/{payment_id:int}", **PAY)
async def pay_status(request: Request, token: FromPath[str], payment_id: FromPath[int]) -> Template:
    payment, refusal = await _link_payment(request, token, payment_id)
    if refusal:
        return refusal
    template = "pay/_status.html" if is_htmx(request) else "pay/status.html"
    return _in_language(request, Template(template, context={"token": token, "payment": payment, "phone": display_phone(payment["phone"]),
                                       "in_flight": payment["status"] in IN_FLIGHT,
                                       "method_label": METHOD_LABELS.get(payment["method"]),
                                       # A member who paid less than asked (a short card charge) is told
                                       # what is still due.
                                       "settled": settlement_facts(await settlement_of(payment["id"]))}),
                        _lang(request, payment["member_language"]))


@get("/pay/{token:str}/payments/{payment_id:int}/receipt.pdf", **PAY)
async def pay_receipt(request: Request, token: FromPath[str], payment_id: FromPath[int]) -> Response | Template:
    """The member's receipt PDF: the stored one, or rendered now if the worker has not yet."""
    payment, refusal = await _link_payment(request, token, payment_id)
    if refusal:
        return refusal
    if not payment["receipt_number"]:
        return await _unusable(request, "unknown")
    subject = f"payment:{payment_id}"
    found = await document_store.content("receipt", subject)
    if not found:
        await document_store.render_and_store("receipt", subject)
        found = await document_store.content("receipt", subject)
    name, pdf = found
    return Response(pdf, media_type="application/pdf", headers={
        "content-disposition": f'inline; filename="{name}"', "cache-control": "private, max-age=3600"})


@post("/invoices/{invoice_id:int}/paylink", guards=[staff_required], status_code=200)
async def create_paylink(request: Request, invoice_id: FromPath[int]) -> Redirect:
    try:
        await paylinks.create_link(invoice_id, request.scope["user"].staff_id)
    except RuleBroken:  # paid or voided meanwhile (another tab, a payment that just came in)
        return back_with(f"/invoices/{invoice_id}", "paylink_refused")
    return Redirect(f"/invoices/{invoice_id}", status_code=303)


@post("/invoices/{invoice_id:int}/paylink/revoke", guards=[staff_required], status_code=200)
async def revoke_paylink(request: Request, invoice_id: FromPath[int]) -> Redirect:
    await paylinks.revoke_links(invoice_id, request.scope["user"].staff_id)
    return Redirect(f"/invoices/{invoice_id}", status_code=303)


routes = [pay_page, pay_by_card, pay_card_return, pay_by_mpesa, pay_status, pay_receipt, create_paylink, revoke_paylink]
