"""Reading invoices: the API's list (newest first by id, a cursor) and what an invoice is made of
(its lines, and the money allocated to it), which the invoice page shows too."""

from __future__ import annotations

from tables.billing import Allocation, Invoice, InvoiceLine


async def invoices_after(member_id: int | None, status: str | None, before_id: int | None, limit: int) -> list[dict]:
    """`limit` + 1 invoices older than `before_id` (the extra row says whether there is a next
    page), for one member and/or one status. One query."""
    query = Invoice.select().order_by(Invoice.id, ascending=False).limit(int(limit) + 1)
    if member_id is not None:
        query = query.where(Invoice.member == member_id)
    if status is not None:
        query = query.where(Invoice.status == status)
    if before_id is not None:
        query = query.where(Invoice.id < before_id)
    return await query


async def invoice_lines_and_allocations(invoice_id: int) -> tuple[list[dict], list[dict]]:
    lines = await InvoiceLine.select().where(InvoiceLine.invoice == invoice_id).order_by(InvoiceLine.id)
    allocations = await Allocation.raw(
        "SELECT a.amount, a.at, p.id AS payment_id, p.receipt_number, p.method FROM allocation a "
        "LEFT JOIN payment p ON p.id = a.payment WHERE a.invoice = {} ORDER BY a.id", invoice_id)
    return lines, allocations
