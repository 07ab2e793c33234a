"""Demo data: a realistic small gym in Nairobi. Only ever loaded in demo mode.

Deterministic for a seed. Every demo gym, the small one `make run` loads on its first start
included, has a past: years of memberships, invoices, part payments, M-Pesa prompts and Paybill,
cards, desk payments, refunds and voids, check-ins, a few freezes and desk sales (demo.sales), simulated by demo.history with the app's own rules and
written in bulk by demo.bulk, so the charts, the aging buckets, dues, renewals and member pages
look like a real gym's from the first page. (It used to put every payment on today: analytics
showed one bar and invoices read "issued today, due last year".)
"""

from __future__ import annotations

import sys

from demo.bulk import load_bulk
from demo.freezes import add_freezes
from demo.sales import add_sales
from portal.settings import get_settings
from tables.staff import Staff

# About what a member pays in two and a half years of monthly plans, prompts that fail included.
DEMO_PAYMENTS_PER_MEMBER = 15
# Up to this many members, freezes and sales are made by the app's rules after the bulk load.
SMALL_GYM = 1000


async def ensure_demo_data() -> None:
    """First start in demo mode: load the demo gym once."""
    if not await Staff.exists():
        await load_demo_data()


async def load_demo_data(members: int = 200, seed: int = 7, payments: int | None = None,
                         force_append: bool = False) -> None:
    settings = get_settings()
    if not settings.demo:
        sys.exit("demo data is only loaded in demo mode (DEMO=1): it creates logins with known passwords")
    if payments is None:
        payments = members * DEMO_PAYMENTS_PER_MEMBER
    # The small gym's freezes and sales are made one at a time by the app's own rules (demo.freezes,
    # demo.sales, about 100 queries a sale); a bigger one has them, with discounts and payers, from
    # the bulk history (demo.extras), written with COPY like the rest.
    small = members <= SMALL_GYM
    report = await load_bulk(members, payments, seed=seed, force_append=force_append, extras=not small)
    # The desk's catalogue (day pass, PT, lockers, joining fee, drinks, supplements): issue 14.
    from portal.sales.catalogue import seed_default_items
    await seed_default_items(settings.currency, settings.vat_rate, settings.prices_include_vat)
    if not small:
        print(f"demo data: {report.summary()}", flush=True)
        return
    frozen = await add_freezes(seed)
    sold = await add_sales(members, seed)
    print(f"demo data: {report.summary()}; {frozen} memberships frozen; {sold} desk sales", flush=True)
