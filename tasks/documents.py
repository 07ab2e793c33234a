"""Document jobs: render a PDF once and store it; the sweeper catches anything missed."""

from __future__ import annotations

from portal.documents import store as document_store
from portal.documents.requests import request_document, request_receipts


async def render_document(ctx, *, kind: str, subject: str) -> dict:
    row = await document_store.render_and_store(kind, subject)
    return {"id": row["id"], "size": row["size"]}


async def sweep_documents(ctx) -> dict:
    """Every minute: receipts and credit notes whose PDF was never made (a lost job, a crash)."""
    payments = await document_store.payments_missing_receipts()
    for payment_id in payments:
        await request_receipts(payment_id)
    notes = await document_store.credit_notes_missing_documents()
    for note_id in notes:
        await request_document("credit_note", f"credit_note:{note_id}")
    return {"receipts": len(payments), "credit_notes": len(notes)}
