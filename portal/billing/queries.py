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


async def invoice_discounts(invoice_id: int) -> list[dict]:
    """An invoice's discounts, asked, approved or rejected, with who asked and who decided. One query."""
    return await Invoice.raw(
        "SELECT d.*, p.code AS promo_code, "
        "coalesce(nullif(trim(ua.first_name || ' ' || ua.last_name), ''), ua.username) AS asked_by, "
        "coalesce(nullif(trim(ub.first_name || ' ' || ub.last_name), ''), ub.username) AS decided_by "
        "FROM discount d LEFT JOIN promo_code p ON p.id = d.promo "
        "LEFT JOIN staff sa ON sa.id = d.requested_by LEFT JOIN piccolo_user ua ON ua.id = sa.\"user\" "
        "LEFT JOIN staff sb ON sb.id = d.approved_by LEFT JOIN piccolo_user ub ON ub.id = sb.\"user\" "
        "WHERE d.invoice = {} ORDER BY d.id", invoice_id)
