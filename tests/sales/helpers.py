"""Catalogue items for the sales stories."""

from __future__ import annotations

from decimal import Decimal

from tables.sales import CatalogueItem


async def make_item(name: str, price: str, category: str = "other", *, vat: str = "16", inclusive: bool = True,
                    account: str = "revenue", kind: str = "simple", sessions: int = 0, active: bool = True) -> int:
    return (await CatalogueItem.insert(CatalogueItem(
        name=name, category=category, price=Decimal(price), vat_rate=Decimal(vat), vat_inclusive=inclusive,
        revenue_account=account, kind=kind, sessions=sessions, active=active,
    )).returning(CatalogueItem.id))[0]["id"]


async def default_items() -> dict[str, int]:
    """The demo catalogue (portal.sales.catalogue.DEFAULT_ITEMS) at 16 % inclusive, by name."""
    from portal.sales.catalogue import seed_default_items

    await seed_default_items("KES", Decimal("16"), True)
    return {row["name"]: row["id"] for row in await CatalogueItem.select(CatalogueItem.id, CatalogueItem.name)}
