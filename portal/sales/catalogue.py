"""The catalogue managers keep: what the desk sells, at what price, VAT and revenue account."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Mapping

from portal import audit
from portal.billing.ledger import REVENUE_ACCOUNTS
from portal.lib.forms import name_and_price, whole
from portal.lib.i18n import S_
from tables.sales import CatalogueItem

CATEGORIES = {"day_pass": "Day pass", "personal_training": "Personal training", "locker": "Locker",
              "joining_fee": "Joining fee", "drinks": "Drinks", "supplements": "Supplements", "other": "Other"}
KINDS = {"simple": "Single item", "pack": "Pack of sessions"}
# What a new item's revenue account is, by category, when the manager does not choose.
DEFAULT_ACCOUNT = {"day_pass": "revenue_fees", "personal_training": "revenue_training", "locker": "revenue_fees",
                   "joining_fee": "revenue_fees", "drinks": "revenue_retail", "supplements": "revenue_retail",
                   "other": "revenue"}
MAX_SESSIONS = 200


def vat_rate(text: str) -> Decimal | None:
    """A VAT percentage typed as 16 or 16.00 (0 to 100, two places at most), else None."""
    raw = (text or "").strip().removesuffix("%").strip() or "0"
    try:
        rate = Decimal(raw)
    except InvalidOperation:
        return None
    if not rate.is_finite() or rate < 0 or rate > 100 or rate != rate.quantize(Decimal("0.01")):
        return None
    return rate.quantize(Decimal("0.01"))


def item_form(form: Mapping[str, str], currency: str) -> tuple[dict, dict]:
    """(values, errors) for the item form; values["clean"] is the row when there are no errors."""
    values = {k: (form.get(k) or "").strip() for k in ("name", "category", "price", "vat_rate", "vat_treatment",
                                                         "revenue_account", "kind", "sessions")}
    values["active"] = form.get("active") in ("on", "1", "true")
    errors: dict[str, str] = {}
    clean: dict = {"active": values["active"]}
    name_and_price(values, errors, clean, currency, "An item")
    if "price" in clean:
        price = clean.pop("price")
        clean["price"], clean["currency"] = price.amount, price.currency
    if values["category"] not in CATEGORIES:
        errors["category"] = S_("Choose a category")
    else:
        clean["category"] = values["category"]
    rate = vat_rate(values["vat_rate"])
    if rate is None:
        errors["vat_rate"] = S_("Enter a VAT rate between 0 and 100 (e.g. 16)")
    else:
        clean["vat_rate"] = rate
    if values["vat_treatment"] not in ("inclusive", "exclusive"):
        errors["vat_treatment"] = S_("Choose whether the price includes VAT")
    else:
        clean["vat_inclusive"] = values["vat_treatment"] == "inclusive"
    account = values["revenue_account"] or DEFAULT_ACCOUNT.get(values["category"], "revenue")
    if account not in REVENUE_ACCOUNTS:
        errors["revenue_account"] = S_("Choose a revenue account from the list")
    else:
        clean["revenue_account"] = account
    if values["kind"] not in KINDS:
        errors["kind"] = S_("Choose a single item or a pack of sessions")
    else:
        clean["kind"] = values["kind"]
        if values["kind"] == "pack":
            sessions = whole(values["sessions"], MAX_SESSIONS)
            if not sessions:
                errors["sessions"] = f"A pack gives between 1 and {MAX_SESSIONS} sessions"
            else:
                clean["sessions"] = sessions
        else:
            clean["sessions"] = 0
    return ({**values, "clean": clean} if not errors else values), errors


def item_values(item: dict) -> dict:
    """What the edit form shows for a stored item."""
    return {"name": item["name"], "category": item["category"], "price": f"{item['price']:.2f}",
            "vat_rate": f"{item['vat_rate']:.2f}", "vat_treatment": "inclusive" if item["vat_inclusive"] else "exclusive",
            "revenue_account": item["revenue_account"], "kind": item["kind"],
            "sessions": str(item["sessions"] or ""), "active": item["active"]}


async def save_item(clean: dict, item_id: int | None, staff_id: int | None) -> tuple[int | None, dict]:
    """Insert or update; (id, errors) where errors name a field (a name another item has)."""
    taken = await CatalogueItem.exists().where(CatalogueItem.name.ilike(clean["name"]) & (CatalogueItem.id != (item_id or 0)))
    if taken:
        return None, {"name": "Another item already has this name"}
    if item_id is None:
        item_id = (await CatalogueItem.insert(CatalogueItem(**clean)).returning(CatalogueItem.id))[0]["id"]
    else:
        await CatalogueItem.update(clean).where(CatalogueItem.id == item_id)
    await audit.record("catalogue.saved", "catalogue_item", item_id, staff_id=staff_id,
                       details={**clean, "price": str(clean["price"]), "vat_rate": str(clean["vat_rate"])})
    return item_id, {}


DEFAULT_ITEMS = [
    # name, category, price, kind, sessions
    ("Day pass", "day_pass", "500", "simple", 0),
    ("PT session", "personal_training", "1500", "simple", 0),
    ("PT pack of 10", "personal_training", "12000", "pack", 10),
    ("Locker (per month)", "locker", "1000", "simple", 0),
    ("Joining fee", "joining_fee", "2000", "simple", 0),
    ("Water", "drinks", "100", "simple", 0),
    ("Protein shake", "supplements", "350", "simple", 0),
]


async def seed_default_items(currency: str, vat: Decimal, inclusive: bool) -> int:
    """The demo gym's catalogue (and a fresh gym's starting point): added once, by name."""
    added = 0
    for name, category, price, kind, sessions in DEFAULT_ITEMS:
        rows = await CatalogueItem.insert(CatalogueItem(
            name=name, category=category, price=Decimal(price), currency=currency, vat_rate=vat, vat_inclusive=inclusive,
            revenue_account=DEFAULT_ACCOUNT[category], kind=kind, sessions=sessions, active=True,
        )).on_conflict(target=CatalogueItem.name, action="DO NOTHING").returning(CatalogueItem.id)
        added += len(rows)
    return added
