"""Receipts and other PDFs are made by a real worker, stored once, and served from storage."""

import asyncio
import io

from pypdf import PdfReader

from portal.documents import store as document_store
from tables.billing import Document
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member


async def _wait_for(kind: str, subject: str, timeout: float = 30) -> dict:
    for _ in range(int(timeout / 0.1)):
        found = await document_store.find(kind, subject)
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{kind} {subject} was not rendered")


def _text(pdf: bytes) -> tuple[str, float]:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages), float(reader.pages[0].mediabox.width)


async def test_a_desk_payment_gets_its_receipts_from_the_worker(alice, worker):
    member = await make_member("Wanjiku", "Kamau", number="PTF0042")
    inv = await invoice_for(member, 3000)
    r = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "1000", "idempotency_key": "r1"})
    payment_id = int(r.headers["location"].rsplit("/", 1)[1])
    subject = f"payment:{payment_id}"
    await _wait_for("receipt", subject)
    await _wait_for("receipt_80mm", subject)

    a4 = await alice.get(f"/documents/receipt/{subject}")
    assert a4.headers["content-type"] == "application/pdf"
    text, width = _text(a4.content)
    assert "RCP-" in text and "Wanjiku Kamau" in text and "PTF0042" in text
    assert "KES 1,000" in text and inv["number"] in text
    assert "KES 2,000" in text  # the balance still owed, as it was at payment time
    assert abs(width - 595.28) < 1

    thermal = await alice.get(f"/documents/receipt_80mm/{subject}")
    text, width = _text(thermal.content)
    assert abs(width - 226.77) < 1
    assert "KES 1,000" in text and "KES 2,000" in text

    # Stored once: asking again changes nothing.
    await document_store.render_and_store("receipt", subject)
    assert await Document.count().where(Document.subject == subject) == 2


async def test_the_page_polls_until_the_pdf_is_ready(alice, worker):
    member = await make_member()
    await invoice_for(member, 3000)
    payment = (await pay(member, 3000)).payment
    subject = f"payment:{payment['id']}"
    pending = await alice.get(f"/documents/receipt/{subject}/status?label=Receipt", htmx=True)
    assert 'hx-trigger="load delay:700ms"' in pending.text or 'data-testid="doc-receipt"' in pending.text
    await _wait_for("receipt", subject)
    ready = await alice.get(f"/documents/receipt/{subject}/status?label=Receipt", htmx=True)
    assert f'href="/documents/receipt/{subject}"' in ready.text


async def test_the_sweeper_makes_receipts_whose_job_was_lost(alice, worker, queue):
    member = await make_member()
    await invoice_for(member, 3000)
    payment = (await pay(member, 3000)).payment  # recorded without enqueueing, as if the job were lost
    result = await queue.apply("sweep_documents", timeout=30)
    assert result["receipts"] == 1
    await _wait_for("receipt", f"payment:{payment['id']}")


async def test_invoice_and_statement_pdfs(alice, worker):
    member = await make_member("Brian", "Otieno", number="PTF0077")
    inv = await invoice_for(member, 3000)
    await pay(member, 1000)
    subject = await document_store.invoice_subject(inv["id"])
    page = await alice.get(f"/invoices/{inv['id']}")
    assert subject in page.text
    await alice.get(f"/documents/invoice/{subject}/status", htmx=True)
    await _wait_for("invoice", subject)
    text, _ = _text((await alice.get(f"/documents/invoice/{subject}")).content)
    assert inv["number"] in text and "KES 3,000" in text and "KES 2,000" in text

    statement = await alice.get(f"/members/{member}/statement")
    assert statement.status_code == 200
    from portal.lib.clock import today

    day = today()
    st_subject = document_store.statement_subject(member, day.replace(month=1, day=1), day)
    await _wait_for("statement", st_subject)
    text, _ = _text((await alice.get(f"/documents/statement/{st_subject}")).content)
    assert "PTF0077" in text and "KES 2,000" in text


async def test_documents_need_a_login_and_a_known_kind(anon, alice):
    assert (await anon.get("/documents/receipt/payment:1")).status_code == 303
    assert (await alice.get("/documents/receipt/invoice:1")).status_code == 404
    assert (await alice.get("/documents/secret/payment:1")).status_code == 404
