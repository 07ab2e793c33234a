"""Discount pages: ask for a discount on an invoice (its page), the managers' approval queue, and
promo codes. The rules are portal/billing/discounts.py."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from portal import auth
from portal.auth import manager_required, staff_required
from portal.billing import discounts
from portal.lib.errors import RuleBroken
from portal.lib.forms import discount_form, promo_form
from portal.web.billing import invoice_page
from portal.web.client import client_ip
from tables.discounts import Discount
from tables.members import Plan
from tables.sales import CatalogueItem

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
DISCOUNT_FIELDS = ("kind", "value", "reason", "line", "promo_code", "manager_username", "manager_password")


@post("/invoices/{invoice_id:int}/discounts", guards=[staff_required], status_code=200)
async def discount_ask(request: Request, invoice_id: FromPath[int], data: FormData) -> Template | Redirect:
    settings = request.app.state.settings
    values, errors = discount_form(data, settings.currency)
    clean = values.pop("clean")
    user = request.scope["user"]
    if not errors:
        try:
            approver = None
            if clean["manager_username"]:
                approver = await auth.manager_approval(settings, clean["manager_username"], clean["manager_password"],
                                                       client_ip(request))
                if approver is None:
                    raise RuleBroken("That is not a manager's user name and password", field="manager_username")
            ask = discounts.Ask(clean["kind"], clean["value"], clean["reason"], clean["line_id"]) \
                if clean["value"] is not None else None
            row = await discounts.give(invoice_id, ask, staff_id=user.staff_id, role=user.role, approver_id=approver,
                                       promo_code=clean["promo_code"], queue=clean["queue"])
            notice = "discount_given" if row["status"] == "approved" else "discount_waiting"
            return Redirect(f"/invoices/{invoice_id}?notice={notice}", status_code=303)
        except auth.LoginThrottled as e:
            errors["manager_username"] = f"Too many failed attempts. Wait {e.minutes} minute{'' if e.minutes == 1 else 's'}."
        except discounts.NeedsApproval as e:
            errors["value"] = str(e)
            values["needs_manager"] = True
        except RuleBroken as e:
            errors[e.field if e.field in DISCOUNT_FIELDS else "value"] = str(e)
    return await invoice_page(invoice_id, 422, discount_values=values, discount_errors=errors)


# --- the approval queue ------------------------------------------------------------------------

APPROVALS_SQL = """
SELECT d.*, i.number AS invoice_number, i.total AS invoice_total, m.first_name || ' ' || m.last_name AS member_name,
       m.member_number, coalesce(nullif(trim(u.first_name || ' ' || u.last_name), ''), u.username) AS asked_by
FROM discount d
JOIN invoice i ON i.id = d.invoice
JOIN member m ON m.id = d.member
LEFT JOIN staff s ON s.id = d.requested_by
LEFT JOIN piccolo_user u ON u.id = s."user"
WHERE d.status = 'pending'
ORDER BY d.created_at, d.id
LIMIT 200
"""


@get("/discounts/approvals", guards=[manager_required])
async def approval_queue(request: Request) -> Template:
    return await _queue_page()


async def _queue_page(status: int = 200, errors: dict | None = None) -> Template:
    rows = await Discount.raw(APPROVALS_SQL)
    return Template("discounts/approvals.html", status_code=status, context={"pending": rows, "errors": errors or {}})


@post("/discounts/{discount_id:int}/approve", guards=[manager_required], status_code=200)
async def approve(request: Request, discount_id: FromPath[int]) -> Template | Redirect:
    try:
        await discounts.approve(discount_id, request.scope["user"].staff_id)
    except RuleBroken as e:
        return await _queue_page(422, {"page": str(e)})
    return Redirect("/discounts/approvals?notice=discount_approved", status_code=303)


@post("/discounts/{discount_id:int}/reject", guards=[manager_required], status_code=200)
async def reject(request: Request, discount_id: FromPath[int], data: FormData) -> Template | Redirect:
    try:
        await discounts.reject(discount_id, request.scope["user"].staff_id, data.get("note") or "")
    except RuleBroken as e:
        return await _queue_page(422, {"page": str(e)})
    return Redirect("/discounts/approvals?notice=discount_rejected", status_code=303)


# --- promo codes -------------------------------------------------------------------------------

PROMOS_SQL = """
SELECT p.*, count(d.id) FILTER (WHERE d.status <> 'rejected') AS uses,
       coalesce(sum(d.amount) FILTER (WHERE d.status = 'approved'), 0) AS given
FROM promo_code p LEFT JOIN discount d ON d.promo = p.id
GROUP BY p.id ORDER BY p.valid_to DESC, p.code
LIMIT 200
"""


async def _choices() -> tuple[list[dict], list[dict]]:
    plans = await Plan.select(Plan.id, Plan.name).order_by(Plan.name)
    items = await CatalogueItem.select(CatalogueItem.id, CatalogueItem.name).order_by(CatalogueItem.name)
    return plans, items


async def _promos_page(status: int = 200, values: dict | None = None, errors: dict | None = None) -> Template:
    promos = await Discount.raw(PROMOS_SQL)
    plans, items = await _choices()
    names = {**{("p", p["id"]): p["name"] for p in plans}, **{("i", i["id"]): i["name"] for i in items}}
    for p in promos:
        p["applies"] = ", ".join([names.get(("p", x), "?") for x in p["plans"]] + [names.get(("i", x), "?") for x in p["items"]]) \
            or "Everything"
    return Template("discounts/promo_codes.html", status_code=status, context={
        "promos": promos, "plans": plans, "items": items,
        "values": values or {"kind": "percent", "plans": [], "items": []}, "errors": errors or {}})


@get("/discounts/promo-codes", guards=[manager_required])
async def promo_codes() -> Template:
    return await _promos_page()


@post("/discounts/promo-codes", guards=[manager_required], status_code=200)
async def promo_create(request: Request, data: FormData) -> Template | Redirect:
    plans, items = await _choices()
    values, errors = promo_form(data, request.app.state.settings.currency, {p["id"] for p in plans},
                                {i["id"] for i in items})
    if not errors:
        clean = values["clean"]
        try:
            await discounts.create_promo(discounts.PromoForm(**{k: clean[k] for k in discounts.PromoForm.__dataclass_fields__}),
                                         request.scope["user"].staff_id)
            return Redirect("/discounts/promo-codes?notice=promo_created", status_code=303)
        except RuleBroken as e:
            errors[e.field or "code"] = str(e)
    values.pop("clean", None)
    return await _promos_page(422, values, errors)


routes = [discount_ask, approval_queue, approve, reject, promo_codes, promo_create]
