"""Document jobs: render a PDF once and store it; the sweeper catches anything missed."""

from __future__ import annotations

from portal import document_store, queue
from portal.messages import outbox


async def render_document(ctx, *, kind: str, subject: str) -> dict:
    row = await document_store.render_and_store(kind, subject)
    return {"id": row["id"], "size": row["size"]}


def job_key(kind: str, subject: str) -> str:
    return f"doc:{kind}:{subject}"


async def request_document(kind: str, subject: str) -> None:
    """Ask the worker for a document (a repeat while it is queued is a no-op)."""
    await queue.enqueue("render_document", key=job_key(kind, subject), timeout=120, retries=3, kind=kind, subject=subject)


async def request_receipts(payment_id: int) -> None:
    """A completed payment's receipts: the PDFs, and the message to the member (queued first: it
    needs no queue, and the sweeper sends it if this process has none)."""
    await outbox.payment_completed(payment_id)
    for kind in ("receipt", "receipt_80mm"):
        await request_document(kind, f"payment:{payment_id}")


async def sweep_documents(ctx) -> dict:
    """Every minute: receipts and credit notes whose PDF was never made (a lost job, a crash)."""
    payments = await document_store.payments_missing_receipts()
    for payment_id in payments:
        await request_receipts(payment_id)
    notes = await document_store.credit_notes_missing_documents()
    for note_id in notes:
        await request_document("credit_note", f"credit_note:{note_id}")
    return {"receipts": len(payments), "credit_notes": len(notes)}
