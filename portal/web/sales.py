"""Catalogue (managers), selling at the desk (members and walk-ins), custom invoices (managers)
and using a session from a pack. Thin: the rules are portal/sales/*."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_CEILING
from typing import Annotated

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from portal import auth
from portal.auth import manager_required, staff_required
from portal.billing.discounts import Ask
from portal.billing.invoices import Line
from portal.billing.ledger import REVENUE_ACCOUNTS
from portal.documents.requests import request_receipts
from portal.lib.clock import today
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.forms import confirmed_amount, parse_date, whole
from portal.lib.i18n import S_
from portal.lib.money import Money, MoneyParseError
from portal.lib.phones import PhoneError, normalise_phone
from portal.members.members import get_member
from portal.payments.limits import NeedsConfirmation
from portal.sales import packs
from portal.sales.catalogue import CATEGORIES, KINDS, item_form, item_values, save_item, vat_rate
from portal.sales.sales import (
    MAX_CUSTOM_LINES,
    SALE_METHODS,
    SaleRequest,
    discount_off,
    issue_custom_invoice,
    sale_lines,
    sale_problems,
    sale_total,
    sell,
)
from portal.sales.walkin import WALKIN_NUMBER
from portal.web.client import client_ip
from portal.web.flash import back_with
from portal.web.pages import ask_to_confirm, new_idempotency_key
from tables.billing import Invoice, Payment
from tables.locations import Location
from tables.sales import CatalogueItem, Sale
from tables.visits import Visit

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _form_context(values: dict, errors: dict, **extra) -> dict:
    return {"values": values, "errors": errors, "categories": CATEGORIES, "kinds": KINDS,
            "accounts": REVENUE_ACCOUNTS, **extra}


# --- the catalogue -------------------------------------------------------------------------------

@get("/catalogue", guards=[manager_required])
async def catalogue_list() -> Template:
    items = await CatalogueItem.select().order_by(CatalogueItem.active, ascending=False).order_by(
        CatalogueItem.category).order_by(CatalogueItem.name)
    return Template("catalogue/index.html", context={"items": items, "categories": CATEGORIES, "accounts": REVENUE_ACCOUNTS})


@get("/catalogue/new", guards=[manager_required])
async def catalogue_new(request: Request) -> Template:
    settings = request.app.state.settings
    values = {"category": "other", "kind": "simple", "vat_rate": f"{settings.vat_rate:.2f}",
              "vat_treatment": "inclusive" if settings.prices_include_vat else "exclusive", "active": True}
    return Template("catalogue/form.html", context=_form_context(values, {}))


async def _save_item(request: Request, data: dict, item_id: int | None) -> Template | Redirect:
    values, errors = item_form(data, request.app.state.settings.currency)
    if not errors:
        _, errors = await save_item(values["clean"], item_id, request.scope["user"].staff_id)
    if errors:
        values.pop("clean", None)
        return Template("catalogue/form.html", status_code=422, context=_form_context(values, errors, item_id=item_id))
    return Redirect("/catalogue", status_code=303)


@post("/catalogue/new", guards=[manager_required], status_code=200)
async def catalogue_create(request: Request, data: FormData) -> Template | Redirect:
    return await _save_item(request, data, None)


@get("/catalogue/{item_id:int}/edit", guards=[manager_required])
async def catalogue_edit(item_id: FromPath[int]) -> Template:
    item = await CatalogueItem.select().where(CatalogueItem.id == item_id).first()
    if not item:
        raise NotFound("item")
    return Template("catalogue/form.html", context=_form_context(item_values(item), {}, item_id=item_id))


@post("/catalogue/{item_id:int}/edit", guards=[manager_required], status_code=200)
async def catalogue_update(request: Request, item_id: FromPath[int], data: FormData) -> Template | Redirect:
    if not await CatalogueItem.exists().where(CatalogueItem.id == item_id):
        raise NotFound("item")
    return await _save_item(request, data, item_id)


# --- selling at the desk -------------------------------------------------------------------------

async def _sale_page(member: dict | None, values: dict, errors: dict, *, status: int = 200) -> Template:
    items = await CatalogueItem.select().where(CatalogueItem.active == True).order_by(  # noqa: E712
        CatalogueItem.category).order_by(CatalogueItem.name)
    desks = await Location.select(Location.id, Location.name).where(Location.active == True).order_by(  # noqa: E712
        Location.name)
    methods = {k: v for k, v in SALE_METHODS.items() if member or k != "account"}
    return Template("sales/form.html", status_code=status, context={
        "member": member, "items": items, "values": values, "errors": errors, "methods": methods,
        "categories": CATEGORIES, "desks": desks})


def _fresh_values() -> dict:
    return {"method": "cash", "idempotency_key": new_idempotency_key()}


@get("/sales/new", guards=[staff_required])
async def sale_new_walkin() -> Template:
    return await _sale_page(None, _fresh_values(), {})


@get("/members/{member_id:int}/sale", guards=[staff_required])
async def sale_new_member(member_id: FromPath[int]) -> Template:
    return await _sale_page(await _buyer(member_id), _fresh_values(), {})


def _read_sale_form(data: dict, currency: str, walk_in: bool) -> tuple[dict, dict, SaleRequest]:
    """What was typed (kept), what could not be read (by field), and the request to the rules."""
    values = {k: (data.get(k) or "").strip() for k in ("method", "tendered", "reference", "buyer_name", "buyer_phone",
                                                         "idempotency_key", "location", "discount_kind", "discount_value",
                                                         "discount_reason", "manager_username")}
    values["discount_kind"] = values["discount_kind"] or "percent"
    errors: dict[str, str] = {}
    quantities: dict[int, int] = {}
    for name, text in data.items():
        if not name.startswith("qty_") or not (text or "").strip():
            continue
        values[name] = text.strip()
        item_id, qty = whole(name[4:]), whole(text.strip(), 999)
        if item_id is None:
            continue
        if qty is None:
            errors["items"] = S_("Quantities are whole numbers")
        else:
            quantities[item_id] = qty
    tendered = None
    if values["tendered"]:
        try:
            tendered = Money.parse(values["tendered"], currency)
        except MoneyParseError as e:
            errors["tendered"] = str(e)[:1].upper() + str(e)[1:]
    phone = ""
    if walk_in and values["buyer_phone"]:
        try:
            phone = normalise_phone(values["buyer_phone"])
        except PhoneError as e:
            errors["buyer_phone"] = str(e)[:1].upper() + str(e)[1:]
    if len(values["buyer_name"]) > 80:
        errors["buyer_name"] = S_("Name is too long (80 characters at most)")
    ask = None
    if values["discount_value"] or values["discount_reason"]:
        # A discount off the whole sale: a percentage or an amount, with a reason (the rules check the rest).
        value = None
        try:
            value = Money.parse(values["discount_value"], currency).amount
        except MoneyParseError as e:
            errors["discount_value"] = (S_("Enter a percentage, e.g. 10") if not values["discount_value"]
                                        else str(e)[:1].upper() + str(e)[1:])
        if values["discount_kind"] not in ("percent", "amount"):
            errors["discount_kind"] = S_("Choose percent or amount")
        if value is not None:
            ask = Ask(values["discount_kind"], value, values["discount_reason"][:200])
        if not values["discount_reason"]:
            errors["discount_reason"] = S_("Give a reason for the discount")
    if values["manager_username"] and not data.get("manager_password"):
        errors["manager_password"] = S_("The manager types their password")
    request = SaleRequest(
        member_id=None, quantities=quantities, method=values["method"], tendered=tendered,
        reference=values["reference"][:60], buyer_name=values["buyer_name"] if walk_in else "", buyer_phone=phone,
        location_id=whole(values["location"]), discount=ask)
    return values, errors, request


async def _sell(request: Request, data: dict, member: dict | None) -> Template | Redirect:
    currency = request.app.state.settings.currency
    values, errors, sale = _read_sale_form(data, currency, member is None)
    values["idempotency_key"] = values["idempotency_key"][:80] or new_idempotency_key()
    user = request.scope["user"]
    sale.member_id = member["id"] if member else None
    sale.location_id = user.location_id or sale.location_id
    sale.role = user.role
    if sale.discount is not None and values["manager_username"] and "manager_password" not in errors:
        settings = request.app.state.settings
        try:
            sale.approver_id = await auth.manager_approval(settings, values["manager_username"],
                                                           data.get("manager_password") or "", client_ip(request))
            if sale.approver_id is None:
                errors["manager_username"] = S_("That is not a manager's user name and password")
        except auth.LoginThrottled as e:
            errors["manager_username"] = f"Too many failed attempts. Wait {e.minutes} minute{'' if e.minutes == 1 else 's'}."
    # The rules are asked even when something could not be read: the desk sees every problem at once.
    problems, priced = await sale_problems(sale, currency)
    for problem in problems:
        errors.setdefault(problem.field or "items", str(problem))
    total = sale_total([line for _, line in priced], currency)
    if not any(p.field and p.field.startswith("discount_") for p in problems):
        total = total - discount_off(sale, total)
    sale.confirmed = confirmed_amount(data, total)
    if not errors:
        try:
            result = await sell(sale, idempotency_key=values["idempotency_key"], staff_id=user.staff_id, currency=currency)
        except NeedsConfirmation as e:
            errors["method"] = str(e)
            values.update(ask_to_confirm(total))
        except RuleBroken as e:
            errors[e.field if e.field in ("items", "method", "tendered", "reference", "location", "discount_value",
                                          "discount_reason", "discount_kind") else "items"] = str(e)
        else:
            if result.created and result.payment:
                await request_receipts(result.payment["id"])
            return Redirect(f"/sales/{result.sale['id']}", status_code=303)
    return await _sale_page(member, values, errors, status=422)


@post("/sales/new", guards=[staff_required], status_code=200)
async def sale_create_walkin(request: Request, data: FormData) -> Template | Redirect:
    return await _sell(request, data, None)


async def _buyer(member_id: int) -> dict | None:
    """The member a sale is for; None for the walk-in account itself (sold as to a walk-in)."""
    member = await get_member(member_id)
    return None if member["member_number"] == WALKIN_NUMBER else member


@post("/members/{member_id:int}/sale", guards=[staff_required], status_code=200)
async def sale_create_member(request: Request, member_id: FromPath[int], data: FormData) -> Template | Redirect:
    return await _sell(request, data, await _buyer(member_id))


@get("/sales/{sale_id:int}", guards=[staff_required])
async def sale_detail(sale_id: FromPath[int]) -> Template:
    """What was sold, the total, the cash tendered and the change to give, and the slip."""
    sale = await Sale.select().where(Sale.id == sale_id).first()
    if not sale:
        raise NotFound("sale")
    invoice = await Invoice.select().where(Invoice.id == sale["invoice"]).first()
    payment = await Payment.select().where(Payment.id == sale["payment"]).first() if sale["payment"] else None
    return Template("sales/done.html", context={
        "sale": sale, "invoice": invoice, "payment": payment, "lines": await sale_lines(sale_id),
        "member": await get_member(sale["member"]) if sale["member"] else None, "methods": SALE_METHODS,
        # Left on the account: the member may pay it by M-Pesa on the spot (the member page's own form).
        "mpesa_key": new_idempotency_key(),
        "mpesa_amount": (invoice["total"] - invoice["paid"]).to_integral_value(rounding=ROUND_CEILING)})


# --- sessions from a pack ------------------------------------------------------------------------

@post("/members/{member_id:int}/sessions/use", guards=[staff_required], status_code=200)
async def session_use(request: Request, member_id: FromPath[int], data: FormData) -> Redirect:
    """One session from the member's oldest pack; from the member page, or from check-in (with the
    visit it is for, and back to the door)."""
    await get_member(member_id)
    visit_id = whole(data.get("visit") or "")
    if visit_id is not None and not await Visit.exists().where((Visit.id == visit_id) & (Visit.member == member_id)):
        visit_id = None
    back = "/checkin" if data.get("back") == "checkin" else f"/members/{member_id}"
    try:
        await packs.use_session(member_id, staff_id=request.scope["user"].staff_id, visit_id=visit_id)
    except RuleBroken:
        return back_with(back, "no_sessions")
    return back_with(back, "session_used")


# --- custom invoices -----------------------------------------------------------------------------

def _custom_values() -> dict:
    return {"due_date": (today() + timedelta(days=7)).isoformat(), "idempotency_key": new_idempotency_key(),
            "lines": [{"quantity": "1", "vat_treatment": "inclusive"} for _ in range(MAX_CUSTOM_LINES)]}


def _read_custom_form(data: dict, currency: str) -> tuple[dict, dict, list[Line]]:
    values = {k: (data.get(k) or "").strip() for k in ("due_date", "reason", "idempotency_key")}
    errors: dict[str, str] = {}
    rows, lines = [], []
    for i in range(MAX_CUSTOM_LINES):
        row = {k: (data.get(f"{k}_{i}") or "").strip() for k in ("description", "quantity", "unit_price", "vat_rate",
                                                                 "vat_treatment")}
        rows.append(row)
        if not row["description"] and not row["unit_price"]:
            continue
        if not row["description"] or len(row["description"]) > 200:
            errors[f"description_{i}"] = S_("Describe the line (200 characters at most)")
        qty = whole(row["quantity"] or "1", 9999)
        if not qty:
            errors[f"quantity_{i}"] = S_("A whole number from 1")
        price = None
        try:
            price = Money.parse(row["unit_price"], currency)
            if price.amount <= 0:
                errors[f"unit_price_{i}"] = S_("Above zero")
        except MoneyParseError as e:
            errors[f"unit_price_{i}"] = str(e)[:1].upper() + str(e)[1:]
        rate = vat_rate(row["vat_rate"])
        if rate is None:
            errors[f"vat_rate_{i}"] = S_("0 to 100")
        if f"description_{i}" not in errors and qty and price is not None and price.amount > 0 and rate is not None:
            lines.append(Line(row["description"], price, qty, rate, row["vat_treatment"] != "exclusive"))
    values["lines"] = rows
    if not lines and not errors:
        errors["lines"] = S_("Add at least one line with a description and a price")
    return values, errors, lines


@get("/members/{member_id:int}/invoices/new", guards=[manager_required])
async def custom_invoice_new(member_id: FromPath[int]) -> Template:
    return Template("sales/custom.html", context={"member": await get_member(member_id), "values": _custom_values(),
                                                  "errors": {}})


@post("/members/{member_id:int}/invoices/new", guards=[manager_required], status_code=200)
async def custom_invoice_create(request: Request, member_id: FromPath[int], data: FormData) -> Template | Redirect:
    member = await get_member(member_id)
    values, errors, lines = _read_custom_form(data, request.app.state.settings.currency)
    values["idempotency_key"] = values["idempotency_key"][:80] or new_idempotency_key()
    due = parse_date(values["due_date"])
    if due is None:
        errors["due_date"] = S_("Enter a date like 2026-12-31")
    if not values["reason"]:
        errors["reason"] = S_("Give a reason for this invoice")
    elif len(values["reason"]) > 500:
        errors["reason"] = S_("500 characters at most")
    if not errors:
        try:
            invoice, _ = await issue_custom_invoice(member_id, lines, due_date=due, reason=values["reason"],
                                                    idempotency_key=values["idempotency_key"],
                                                    staff_id=request.scope["user"].staff_id)
        except RuleBroken as e:
            errors[e.field or "lines"] = str(e)
        else:
            return Redirect(f"/invoices/{invoice['id']}", status_code=303)
    return Template("sales/custom.html", status_code=422, context={"member": member, "values": values, "errors": errors})


routes = [catalogue_list, catalogue_new, catalogue_create, catalogue_edit, catalogue_update, sale_new_walkin,
          sale_new_member, sale_create_walkin, sale_create_member, sale_detail, session_use, custom_invoice_new,
          custom_invoice_create]
