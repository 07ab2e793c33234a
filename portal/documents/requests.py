"""Asking the worker for documents: each request is a queued job with a dedupe key, so asking
twice while one is queued is a no-op; the sweeper in tasks.documents asks again for anything missed."""

from __future__ import annotations

from portal.lib import queue
from portal.messages import outbox
from tables.billing import Document

RECEIPT_KINDS = ("receipt", "receipt_80mm")


def job_key(kind: str, subject: str) -> str:
    return f"doc:{kind}:{subject}"


async def request_document(kind: str, subject: str) -> None:
    """Ask the worker for a document (a repeat while it is queued is a no-op)."""
    await queue.enqueue("render_document", key=job_key(kind, subject), timeout=120, retries=3, kind=kind, subject=subject)


async def request_receipts(payment_id: int, member_id: int | None = None) -> None:
    """A completed payment's receipts: the PDFs, and the message to the member (queued first: it
    needs no queue, and the sweeper sends it if this process has none). `member_id`: the
    payment's member, from a caller that read it with the payment numbered (not read again)."""
    await outbox.payment_completed(payment_id, member_id)
    for kind in RECEIPT_KINDS:
        await request_document(kind, f"payment:{payment_id}")


async def forget_receipts(payment_id: int) -> None:
    """Something printed on a payment's receipts changed (its M-Pesa code arrived): the PDFs made
    before are dropped, in the caller's transaction, and made again by request_receipts after
    commit (or by the documents sweeper, which makes any receipt that is missing)."""
    await Document.delete().where(Document.kind.is_in(list(RECEIPT_KINDS))
                                  & (Document.subject == f"payment:{payment_id}"))
