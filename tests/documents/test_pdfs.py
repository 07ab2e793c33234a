"""PDF documents render from plain contexts: the numbers people read are on the page, the paper
sizes are right, and rendering never blocks the event loop.

The contexts below are the contract the callers build from the database (see portal/documents/render.py).
"""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest
from pypdf import PdfReader

from portal.documents.render import render_html, render_pdf, render_pdf_sync
from tests.conftest import ROOT

ARTIFACTS = ROOT / "test-artifacts"
PREVIEWS = ARTIFACTS / "pdf-previews"
A4_WIDTH_PT = 595.28
ROLL_WIDTH_PT = 80 / 25.4 * 72  # 226.77


# --- realistic contexts ------------------------------------------------------------------------

def gym() -> dict:
    return {
        "name": "Paul's Tropical Fitness",
        "address": "2nd Floor, Westgate Mall\nMwanzi Road, Westlands\nNairobi",
        "phone": "254712345678",
        "email": "accounts@tropicalfitness.co.ke",
        "kra_pin": "P051234567X",
    }


def member() -> dict:
    return {"name": "Wanjiru Kamau-Otieno", "number": "PTF0042", "phone": "254722111222",
            "email": "wanjiru.kamau@example.com"}


GENERATED_AT = datetime(2026, 12, 1, 6, 30, tzinfo=timezone.utc)  # 09:30 in Nairobi


PAY_LINK = "https://portal.tropicalfitness.co.ke/pay/inv/8f3c2a"


def invoice_context(status: str = "partially_paid", pay_link: str | None = PAY_LINK) -> dict:
    paid = {"open": D("0"), "partially_paid": D("5000"), "paid": D("10560.50"),
            "void": D("0")}[status]
    total = D("10560.50")
    balance = D("0") if status == "void" else total - paid
    return {
        "gym": gym(),
        "generated_at": GENERATED_AT,
        "invoice": {
            "number": "INV-2026-000123",
            "issue_date": date(2026, 12, 1),
            "due_date": date(2026, 12, 8),
            "status": status,
            "currency": "KES",
            "member": member(),
            "lines": [
                {"description": "Quarterly membership (1 Dec 2026 – 28 Feb 2027)",
                 "quantity": D("1"),
                 "unit_price": D("8000"), "vat_rate": D("16"), "vat_inclusive": True,
                 "net": D("6896.55"), "vat": D("1103.45"), "total": D("8000")},
                {"description": "Personal training session", "quantity": D("2"),
                 "unit_price": D("1000.25"), "vat_rate": D("16"), "vat_inclusive": False,
                 "net": D("2000.50"), "vat": D("320.08"), "total": D("2320.58")},
                {"description": "Locker key deposit (refundable)", "quantity": D("1"),
                 "unit_price": D("239.92"), "vat_rate": D("0"), "vat_inclusive": False,
                 "net": D("239.92"), "vat": D("0"), "total": D("239.92")},
            ],
            "subtotal": D("9136.97"),
            "tax_total": D("1423.53"),
            "total": total,
            "paid": paid,
            "balance": balance,
            "pay_link": pay_link,
            "period": "1 Dec 2026 – 28 Feb 2027",
        },
    }


def receipt_context(settled_count: int = 2) -> dict:
    settled = [
        {"invoice_number": "INV-2026-000118", "description": "Monthly membership (November 2026)",
         "amount": D("3000")},
        {"invoice_number": "INV-2026-000123",
         "description": "Quarterly membership (1 Dec 2026 – 28 Feb 2027), part",
         "amount": D("2500.50")},
    ]
    for i in range(settled_count - len(settled)):
        settled.append({"invoice_number": f"INV-2026-{200 + i:06d}",
                        "description": f"Personal training session {i + 1}",
                        "amount": D(1000 + i) + D("0.25")})
    settled = settled[:settled_count]
    amount = sum((s["amount"] for s in settled), D("0")) + D("499.50")
    return {
        "gym": gym(),
        "generated_at": GENERATED_AT,
        "receipt": {
            "number": "RCP-2026-000045",
            "paid_at": datetime(2026, 12, 1, 11, 5, tzinfo=timezone.utc),  # 14:05 EAT
            "method_label": "M-Pesa",
            "reference": "SLK4H7ZQ2P",
            "amount": amount,
            "currency": "KES",
            "member": member(),
            "staff_name": "Grace Njeri",
            "settled": settled,
            "credit_added": D("499.50"),
            "balance_owed": D("5560"),
            "credit_balance": D("499.50"),
        },
    }


def statement_context(entry_count: int = 8) -> dict:
    entries, bal = [], D("1500")
    day = date(2026, 9, 1)
    for i in range(entry_count):
        if i % 2 == 0:
            debit, credit, desc = D("3000"), D("0"), "Monthly membership"
            ref = f"INV-2026-{100 + i:06d}"
        else:
            debit, credit, desc = D("0"), D("4500.50"), "Payment by M-Pesa"
            ref = f"RCP-2026-{40 + i:06d}"
        bal = bal + debit - credit
        entries.append({"date": day + timedelta(days=9 * i), "description": desc, "reference": ref,
                        "debit": debit, "credit": credit, "balance": bal})
    return {
        "gym": gym(),
        "generated_at": GENERATED_AT,
        "statement": {
            "member": member(),
            "period_start": date(2026, 9, 1),
            "period_end": date(2026, 11, 30),
            "currency": "KES",
            "opening_balance": D("1500"),
            "entries": entries,
            "closing_balance": bal,
            "total_debits": sum((e["debit"] for e in entries), D("0")),
            "total_credits": sum((e["credit"] for e in entries), D("0")),
        },
    }


def credit_note_context(kind: str = "refund") -> dict:
    original = ({"label": "Invoice INV-2026-000123", "amount": D("10560.50")} if kind == "void"
                else {"label": "Receipt RCP-2026-000045", "amount": D("6000")})
    return {
        "gym": gym(),
        "generated_at": GENERATED_AT,
        "credit_note": {
            "number": "CRN-2026-000004",
            "date": date(2026, 12, 2),
            "kind": kind,
            "reason": ("Member relocated to Mombasa; unused part of the quarter refunded."
                       if kind == "refund" else "Issued in error: member was on a corporate plan."),
            "currency": "KES",
            "amount": D("2500.50") if kind == "refund" else D("10560.50"),
            "member": member(),
            "original": original,
            "staff_name": "Peter Mwangi",
            "method_label": "M-Pesa" if kind == "refund" else "",
        },
    }


CONTEXTS = {
    "invoice": invoice_context,
    "receipt": receipt_context,
    "receipt_80mm": receipt_context,
    "statement": statement_context,
    "credit_note": credit_note_context,
}


# --- helpers -----------------------------------------------------------------------------------

def read(pdf: bytes) -> tuple[PdfReader, str]:
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return reader, " ".join(text.split())  # one space between words, whatever the layout


def page_width(reader: PdfReader, index: int = 0) -> float:
    return float(reader.pages[index].mediabox.width)


def page_height(reader: PdfReader, index: int = 0) -> float:
    return float(reader.pages[index].mediabox.height)


def save_preview(name: str, pdf: bytes) -> None:
    """Keep the PDF and a first-page PNG in test-artifacts/pdf-previews/ for people to look at."""
    PREVIEWS.mkdir(parents=True, exist_ok=True)
    (PREVIEWS / f"{name}.pdf").write_bytes(pdf)
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", "-f", "1", "-l", "1",
                        str(PREVIEWS / f"{name}.pdf"), str(PREVIEWS / name)], check=False)


# --- invoice -----------------------------------------------------------------------------------

def test_invoice_shows_number_member_lines_totals_and_balance():
    pdf = render_pdf_sync("invoice", invoice_context("partially_paid"))
    save_preview("invoice", pdf)
    reader, text = read(pdf)

    assert page_width(reader) == pytest.approx(A4_WIDTH_PT, abs=1)
    for expected in ["INV-2026-000123", "Wanjiru Kamau-Otieno", "PTF0042", "0722 111 222",
                     "Paul's Tropical Fitness", "KRA PIN P051234567X", "0712 345 678",
                     "1 Dec 2026", "8 Dec 2026", "1 Dec 2026 – 28 Feb 2027",
                     "KES 8,000", "KES 6,896.55", "KES 1,103.45", "KES 1,000.25", "KES 2,320.58",
                     "KES 239.92", "KES 9,136.97", "KES 1,423.53", "KES 10,560.50",
                     "Amount paid KES 5,000", "Balance due KES 5,560.50",
                     "Scan to pay", "Page 1 of 1", "Generated 1 Dec 2026, 09:30 EAT"]:
        assert expected in text, expected
    assert "PAID" not in text and "VOID" not in text  # stamps are for paid and void invoices only


def test_invoice_pay_link_becomes_a_qr_code():
    with_link = render_html("invoice", invoice_context("open"))
    assert 'src="data:image/svg+xml' in with_link and "Scan to pay" in with_link

    without = render_html("invoice", invoice_context("open", pay_link=None))
    assert "Scan to pay" not in without and "data:image/svg+xml" not in without


@pytest.mark.parametrize("status, stamp", [("paid", "PAID"), ("void", "VOID")])
def test_invoice_stamps_paid_and_void(status, stamp):
    pdf = render_pdf_sync("invoice", invoice_context(status))
    save_preview(f"invoice-{status}", pdf)
    _, text = read(pdf)
    assert stamp in text
    assert "Balance due KES 0" in text
    assert "Scan to pay" not in text  # nothing to pay on a paid or void invoice
    other = {"PAID": "VOID", "VOID": "PAID"}[stamp]
    assert other not in text


def test_member_text_is_escaped_not_markup():
    ctx = invoice_context("open")
    ctx["invoice"]["member"]["name"] = "<b>Eve</b> & <img src='http://evil.example/x.png'>"
    html = render_html("invoice", ctx)
    assert "<b>Eve</b>" not in html and "&lt;b&gt;Eve&lt;/b&gt; &amp;" in html
    _, text = read(render_pdf_sync("invoice", ctx))
    assert "<b>Eve</b> &" in text


# --- receipts ----------------------------------------------------------------------------------

def test_a4_receipt_shows_payment_what_it_settled_and_what_is_still_owed():
    pdf = render_pdf_sync("receipt", receipt_context())
    save_preview("receipt", pdf)
    reader, text = read(pdf)

    assert page_width(reader) == pytest.approx(A4_WIDTH_PT, abs=1)
    for expected in ["RCP-2026-000045", "Wanjiru Kamau-Otieno", "PTF0042", "M-Pesa", "SLK4H7ZQ2P",
                     "Grace Njeri", "1 Dec 2026, 14:05 EAT", "INV-2026-000118", "INV-2026-000123",
                     "KES 3,000", "KES 2,500.50", "KES 499.50", "Amount received KES 6,000",
                     "Balance still owed KES 5,560", "Credit on account KES 499.50"]:
        assert expected in text, expected


def test_80mm_receipt_is_80mm_wide_cut_to_its_content_and_shows_what_is_still_owed():
    pdf = render_pdf_sync("receipt_80mm", receipt_context())
    save_preview("receipt_80mm", pdf)
    reader, text = read(pdf)

    assert len(reader.pages) == 1
    assert page_width(reader) == pytest.approx(ROLL_WIDTH_PT, abs=1)
    assert 250 < page_height(reader) < 1000  # cut below the content, not the 2 m layout page
    for expected in ["RCP-2026-000045", "Wanjiru Kamau-Otieno", "PTF0042", "M-Pesa", "SLK4H7ZQ2P",
                     "INV-2026-000118", "KES 3,000", "KES 2,500.50", "KES 499.50", "KES 6,000",
                     "BALANCE STILL OWED KES 5,560", "Credit on account KES 499.50",
                     "1 Dec 2026, 14:05 EAT"]:
        assert expected in text, expected


@pytest.mark.parametrize("kind", ["receipt", "receipt_80mm"])
def test_a_receipt_settling_many_invoices_prints_every_line(kind):
    ctx = receipt_context(settled_count=60)
    pdf = render_pdf_sync(kind, ctx)
    save_preview(f"{kind}-long", pdf)
    reader, text = read(pdf)
    for line in ctx["receipt"]["settled"]:
        assert line["invoice_number"] in text, line["invoice_number"]
        assert f"KES {line['amount']:,}".removesuffix(".00") in text
    assert "KES 5,560" in text
    if kind == "receipt_80mm":
        assert page_width(reader, -1) == pytest.approx(ROLL_WIDTH_PT, abs=1)
    else:
        assert len(reader.pages) >= 2 and f"Page 2 of {len(reader.pages)}" in text


# --- statement ---------------------------------------------------------------------------------

def test_statement_shows_opening_entries_and_closing_balance():
    ctx = statement_context()
    pdf = render_pdf_sync("statement", ctx)
    save_preview("statement", pdf)
    reader, text = read(pdf)

    assert page_width(reader) == pytest.approx(A4_WIDTH_PT, abs=1)
    st = ctx["statement"]
    assert st["closing_balance"] == D("-4502")  # 1,500 + 4 × 3,000 − 4 × 4,500.50
    for expected in ["Wanjiru Kamau-Otieno", "PTF0042", "1 Sep 2026 – 30 Nov 2026",
                     "Opening balance KES 1,500", "Charges KES 12,000",
                     "Payments and credits KES 18,002",
                     "Closing balance KES 4,502 in credit", "4,500.50", "INV-2026-000100",
                     "RCP-2026-000047"]:
        assert expected in text, expected
    for entry in st["entries"]:
        assert entry["reference"] in text


def test_statement_with_a_balance_owed_says_due_not_credit():
    ctx = statement_context(entry_count=1)  # 1,500 + 3,000
    _, text = read(render_pdf_sync("statement", ctx))
    assert "Balance due KES 4,500" in text
    assert "in credit" not in text.replace("“in credit”", "")


# --- credit note -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["refund", "void"])
def test_credit_note_names_the_original_and_the_amount(kind):
    ctx = credit_note_context(kind)
    pdf = render_pdf_sync("credit_note", ctx)
    save_preview("credit_note" if kind == "refund" else f"credit_note-{kind}", pdf)
    reader, text = read(pdf)

    assert page_width(reader) == pytest.approx(A4_WIDTH_PT, abs=1)
    cn = ctx["credit_note"]
    for expected in ["CRN-2026-000004", "Wanjiru Kamau-Otieno", "PTF0042", cn["original"]["label"],
                     cn["reason"], "Peter Mwangi", "2 Dec 2026"]:
        assert expected in text, expected
    if kind == "refund":
        assert "Total credited KES 2,500.50" in text and "Original amount KES 6,000" in text
        assert "Refunded by M-Pesa" in text
    else:
        assert "Total credited KES 10,560.50" in text and "Invoice voided" in text
        assert "Cancellation of Invoice INV-2026-000123" in text


# --- the contract's edges ----------------------------------------------------------------------

def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown document kind"):
        render_pdf_sync("../base", invoice_context())


def test_a_missing_key_fails_loudly():
    ctx = invoice_context()
    del ctx["invoice"]["balance"]
    with pytest.raises(Exception, match="balance"):
        render_pdf_sync("invoice", ctx)


def test_documents_cannot_fetch_from_the_network_or_outside_static():
    from portal.documents.render import _url_fetcher

    fetcher = _url_fetcher()
    with pytest.raises(ValueError):
        fetcher.fetch("http://example.com/logo.png")
    with pytest.raises(ValueError):
        fetcher.fetch((Path("/etc/passwd")).as_uri())
    fetcher.fetch((ROOT / "static" / "pdf.css").as_uri()).close()


# --- the event loop and timings ----------------------------------------------------------------

async def test_rendering_does_not_block_the_event_loop():
    ctx = statement_context(entry_count=150)  # a few pages: long enough to notice a blocked loop
    render_pdf_sync("statement", ctx)  # warm up fonts and templates first
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker():
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    pdf = await render_pdf("statement", ctx)
    took = time.perf_counter() - started
    stop.set()
    await tick

    assert pdf.startswith(b"%PDF-")
    assert took > 0.3, f"render too quick ({took:.3f}s) for this test to mean anything"
    assert len(gaps) >= 10, gaps
    # The loop kept turning: no pause anywhere near the length of the render (rendering on the
    # loop itself gives one gap as long as the render). Threads share the GIL, so gaps of tens of
    # milliseconds are normal.
    assert max(gaps) < took / 2, (max(gaps), took)


async def test_concurrent_renders_all_complete():
    renders = (render_pdf(kind, factory()) for kind, factory in CONTEXTS.items())
    pdfs = await asyncio.gather(*renders)
    assert all(pdf.startswith(b"%PDF-") for pdf in pdfs)


def test_warm_render_timings(capsys):
    lines = []
    for kind, factory in CONTEXTS.items():
        ctx = factory()
        render_pdf_sync(kind, ctx)  # warm
        times = []
        for _ in range(5):
            started = time.perf_counter()
            render_pdf_sync(kind, ctx)
            times.append(time.perf_counter() - started)
        times.sort()
        lines.append(f"{kind:<14} median {times[2] * 1000:6.0f} ms   min {times[0] * 1000:6.0f} ms"
                     f"   max {times[-1] * 1000:6.0f} ms")
    report = ("Warm PDF render times (5 renders each, after one warm-up):\n"
              + "\n".join(lines) + "\n")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "pdf-timings.txt").write_text(report)
    with capsys.disabled():
        print("\n" + report)


def test_a_missing_stylesheet_is_an_ordinary_error(monkeypatch, tmp_path):
    import portal.documents.render as documents

    monkeypatch.setattr(documents, "STATIC", tmp_path)  # no pdf.css here
    with pytest.raises(RuntimeError, match="pdf.css"):
        documents.render_pdf_sync("credit_note", credit_note_context())
