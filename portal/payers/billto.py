"""Who an invoice is addressed to. Frozen at issue: `freeze` copies the member's payer (name,
address, KRA PIN, phone, email) onto the invoice in the transaction that issues it, so a member
later linked to another payer (or a payer whose address changes) leaves invoices already issued
as they were printed and sent, which is what a tax invoice and the payer's own books need.
Imports only tables: billing calls it."""

from __future__ import annotations

from tables.payers import InvoiceBillTo

FREEZE_SQL = """
INSERT INTO invoice_bill_to (invoice, payer, kind, name, address, kra_pin, phone, email)
SELECT {}, p.id, p.kind, p.name, p.address, p.kra_pin, p.phone, p.email
FROM payer_member pm JOIN payer p ON p.id = pm.payer WHERE pm.member = {}
"""


async def freeze(invoice_id: int, member_id: int) -> None:
    """One statement: nothing happens for a member with no payer."""
    await InvoiceBillTo.raw(FREEZE_SQL, invoice_id, member_id)


async def bill_to(invoice_id: int) -> dict | None:
    return await InvoiceBillTo.select().where(InvoiceBillTo.invoice == invoice_id).first()
