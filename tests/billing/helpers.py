"""Shared steps for the money stories: plain calls into the rules, as the handlers make them."""

from __future__ import annotations

import itertools
from decimal import Decimal

from piccolo.engine import engine_finder

from portal.auth import create_staff
from portal.billing import ledger
from portal.billing.invoices import Line, issue_invoice, lock_member
from portal.lib.money import Money
from portal.payments.service import record_desk_payment
from tables.billing import Invoice

_keys = itertools.count(1)


def kes(amount) -> Money:
    return Money(Decimal(str(amount)))


async def desk_staff() -> int:
    return await create_staff(f"desk{next(_keys)}", "desk-password-1", "manager")


async def invoice_for(member_id: int, amount, description: str = "Monthly membership", staff_id=None) -> dict:
    async with engine_finder().transaction():
        await lock_member(member_id)
        return await issue_invoice(member_id, [Line(description, kes(amount), vat_rate=Decimal("16"))], staff_id=staff_id)


async def pay(member_id: int, amount, method: str = "cash", staff_id: int | None = None, reference: str = "",
              invoice_id: int | None = None, key: str | None = None, confirmed: bool = False,
              location_id: int | None = None):
    return await record_desk_payment(member_id=member_id, method=method, amount=kes(amount), reference=reference,
                                     invoice_id=invoice_id, idempotency_key=key or f"test-{next(_keys)}",
                                     staff_id=staff_id, location_id=location_id, confirmed=confirmed)


async def invoice(invoice_id: int) -> dict:
    return await Invoice.select().where(Invoice.id == invoice_id).first()


async def balances(member_id: int) -> tuple[Decimal, Decimal]:
    owed, held = await ledger.member_balances(member_id)
    return owed.amount, held.amount


async def assert_ledger_balanced() -> None:
    totals = await ledger.trial_balance()
    assert sum(totals.values()) == 0, totals


async def assert_books_agree() -> None:
    """After the dust settles: the books agree (portal.billing.ledger.books_disagreements, the
    invariants the demo data and a restored backup are checked against, for any test)."""
    problems = await ledger.books_disagreements()
    assert problems == [], problems
