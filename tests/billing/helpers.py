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
from tables.billing import Invoice, Payment

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
              invoice_id: int | None = None, key: str | None = None, confirmed: bool = False):
    return await record_desk_payment(member_id=member_id, method=method, amount=kes(amount), reference=reference,
                                     invoice_id=invoice_id, idempotency_key=key or f"test-{next(_keys)}",
                                     staff_id=staff_id, location_id=None, confirmed=confirmed)


async def invoice(invoice_id: int) -> dict:
    return await Invoice.select().where(Invoice.id == invoice_id).first()


async def balances(member_id: int) -> tuple[Decimal, Decimal]:
    owed, held = await ledger.member_balances(member_id)
    return owed.amount, held.amount


async def assert_ledger_balanced() -> None:
    totals = await ledger.trial_balance()
    assert sum(totals.values()) == 0, totals


async def assert_books_agree() -> None:
    """After the dust settles: the ledger balances, every invoice's paid amount is what was
    allocated to it, and every payment was credited exactly once and refunded at most what its
    refund entries took out (the invariants the demo data is checked against, for any test)."""
    await assert_ledger_balanced()
    off = await Invoice.raw(
        "SELECT i.id, i.paid, coalesce(sum(a.amount), 0) AS allocated FROM invoice i "
        "LEFT JOIN allocation a ON a.invoice = i.id WHERE i.status <> 'void' "
        "GROUP BY i.id HAVING i.paid <> coalesce(sum(a.amount), 0)")
    assert off == [], f"invoices whose paid amount is not their allocations: {off}"
    credited = await Payment.raw(
        "SELECT p.id, p.status, count(e.id) AS credits FROM payment p "
        "LEFT JOIN ledger_entry e ON e.payment = p.id AND e.kind = 'payment_received' GROUP BY p.id "
        "HAVING count(e.id) <> CASE WHEN p.status IN ('completed', 'partially_refunded', 'refunded') THEN 1 ELSE 0 END")
    assert credited == [], f"payments not credited exactly once: {credited}"
    refunded = await Payment.raw(
        "SELECT p.id, p.refunded FROM payment p LEFT JOIN ledger_entry e ON e.payment = p.id AND e.kind = 'refund' "
        "LEFT JOIN ledger_leg l ON l.entry = e.id AND l.account = p.method "
        "GROUP BY p.id HAVING p.refunded <> -coalesce(sum(l.amount), 0)")
    assert refunded == [], f"payments whose refunded amount is not their refund entries: {refunded}"
