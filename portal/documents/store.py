"""Rendered PDFs, made by the worker and stored once per (kind, subject).

Subjects name what a document is of, and for documents whose content changes (an invoice gets
paid) the version too: `payment:12`, `credit_note:3`, `invoice:5:paid:3000.00`, `invoice:6:open:0.00:link9`,
`statement:7:2026-01-01:2026-11-30`, `day_close:4:v2`. A new version is a new document; nothing is overwritten.
"""

from __future__ import annotations

import base64
from datetime import date

from portal.billing import paylinks
from portal.documents import context as document_context
from portal.documents.render import render_pdf
from portal.lib.errors import NotFound
from tables.billing import CreditNote, Document, Invoice, PayLink, Payment
from tables.statuses import OPEN_INVOICE

KIND_SOURCES = {"receipt": "payment", "receipt_80mm": "payment", "invoice": "invoice",
                "credit_note": "credit_note", "statement": "statement", "day_close": "day_close"}
KIND_SOURCES["payer_statement"] = "payer_statement"  # payers for others (portal/payers)


async def invoice_subject(invoice_id: int) -> str:
    """An open invoice's PDF carries its pay link as a QR code, so the link is part of the version
    (a new link, a new PDF); one is made if the invoice has none live."""
    inv = await Invoice.select(Invoice.status, Invoice.paid).where(Invoice.id == invoice_id).first()
    if not inv:
        raise NotFound("invoice")
    subject = f"invoice:{invoice_id}:{inv['status']}:{inv['paid']}"
    if inv["status"] in OPEN_INVOICE:
        token = await paylinks.current_token(invoice_id)
        if token:
            subject += f":link{token.split('.', 1)[0]}"
    return subject


def statement_subject(member_id: int, start: date, end: date) -> str:
    return f"statement:{member_id}:{start.isoformat()}:{end.isoformat()}"


PAYER_STATEMENT_VERSION_SQL = """
SELECT count(DISTINCT b.invoice) AS invoices, coalesce(max(a.id), 0) AS allocation
FROM invoice_bill_to b LEFT JOIN allocation a ON a.invoice = b.invoice WHERE b.payer = {}
"""


async def payer_statement_subject(payer_id: int, day: date) -> str:
    """A payer's statement as at `day`; a new invoice or payment since makes a new version."""
    row = (await Invoice.raw(PAYER_STATEMENT_VERSION_SQL, payer_id))[0]
    return f"payer_statement:{payer_id}:{day.isoformat()}:{row['invoices']}.{row['allocation']}"


def filename(kind: str, subject: str, number: str) -> str:
    return f"{number}{'-80mm' if kind == 'receipt_80mm' else ''}.pdf"


async def find(kind: str, subject: str) -> dict | None:
    return await Document.select(Document.id, Document.filename, Document.size, Document.created_at).where(
        (Document.kind == kind) & (Document.subject == subject)).first()


async def content(kind: str, subject: str) -> tuple[str, bytes] | None:
    row = await Document.select(Document.filename, Document.content).where(
        (Document.kind == kind) & (Document.subject == subject)).first()
    return (row["filename"], base64.b64decode(row["content"])) if row else None


async def build(kind: str, subject: str) -> tuple[dict, str]:
    """The render context and the document's number (for its file name)."""
    parts = subject.split(":")
    source = parts[0]
    if KIND_SOURCES.get(kind) != source:
        raise ValueError(f"{kind} is not made from {source}")
    if source == "payment":
        ctx = await document_context.receipt_context(int(parts[1]))
        return ctx, ctx["receipt"]["number"]
    if source == "invoice":
        ctx = await document_context.invoice_context(int(parts[1]), pay_link=await _pay_link_url(parts))
        return ctx, ctx["invoice"]["number"]
    if source == "credit_note":
        ctx = await document_context.credit_note_context(int(parts[1]))
        return ctx, ctx["credit_note"]["number"]
    if source == "day_close":  # day_close:<id>:v<version>
        ctx = await document_context.day_close_context(int(parts[1]))
        return ctx, f"close-{ctx['close']['location']}-{ctx['close']['business_date']}-v{ctx['close']['version']}"
    if source == "payer_statement":  # payer_statement:<payer>:<day>:<version>
        ctx = await document_context.payer_statement_context(int(parts[1]), date.fromisoformat(parts[2]))
        return ctx, f"statement-payer{parts[1]}-{parts[2]}"
    member_id, start, end = int(parts[1]), date.fromisoformat(parts[2]), date.fromisoformat(parts[3])
    ctx = await document_context.statement_context(member_id, start, end)
    return ctx, f"statement-{ctx['statement']['member']['number']}-{start}-{end}"


async def _pay_link_url(parts: list[str]) -> str | None:
    if len(parts) < 5 or not parts[4].startswith("link"):
        return None
    link = await PayLink.select().where(PayLink.id == int(parts[4][4:])).first()
    token = link and paylinks.token_for(link)
    return paylinks.url_for(token) if token else None


async def render_and_store(kind: str, subject: str) -> dict:
    existing = await find(kind, subject)
    if existing:
        return existing
    ctx, number = await build(kind, subject)
    pdf = await render_pdf(kind, ctx)
    await Document.raw(
        "INSERT INTO document (kind, subject, filename, content, size, created_at) VALUES ({}, {}, {}, {}, {}, now()) "
        "ON CONFLICT (kind, subject) DO NOTHING",
        kind, subject, filename(kind, subject, number), base64.b64encode(pdf).decode(), len(pdf))
    return await find(kind, subject)


MISSING_RECEIPTS_SQL = """
SELECT p.id FROM payment p
WHERE p.receipt_number IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM document d WHERE d.kind = 'receipt' AND d.subject = 'payment:' || p.id)
ORDER BY p.id LIMIT 200
"""


async def payments_missing_receipts() -> list[int]:
    return [r["id"] for r in await Payment.raw(MISSING_RECEIPTS_SQL)]


MISSING_NOTES_SQL = """
SELECT c.id FROM credit_note c
WHERE NOT EXISTS (SELECT 1 FROM document d WHERE d.kind = 'credit_note' AND d.subject = 'credit_note:' || c.id)
ORDER BY c.id LIMIT 200
"""


async def credit_notes_missing_documents() -> list[int]:
    return [r["id"] for r in await CreditNote.raw(MISSING_NOTES_SQL)]
