"""PDF documents: invoices, receipts (A4 and 80 mm thermal), member statements and credit notes.

Pure rendering: a plain context dict in, PDF bytes out. No database access here; the caller (a
worker job, DESIGN.md §7) builds the context and stores the bytes. `templates/pdf/<kind>.html` is
rendered with Jinja, then laid out by WeasyPrint with `static/pdf.css`.

WeasyPrint is CPU-bound Python that holds the GIL for most of a render: `render_pdf` runs it on a
thread (`asyncio.to_thread`) so the event loop keeps serving while a document is made.

The context (amounts `Decimal` with at most 2 places, dates `date`, times aware `datetime`):

- every kind: `gym` {name, address (lines split on newlines), phone, email, kra_pin ('' to hide)},
  `generated_at`; optional `timezone` (default Africa/Nairobi) for every date and time shown.
- `invoice`: {number, issue_date, due_date, status: open|partially_paid|paid|void, currency,
  member {name, number, phone, email}, lines [{description, quantity, unit_price,
  vat_rate (percent), vat_inclusive, net, vat, total}], subtotal, tax_total, total, paid, balance,
  pay_link (str|None: a QR code while something is owed), period ('' to hide)}
- `receipt` (kinds receipt and receipt_80mm): {number, paid_at, method_label, reference, amount,
  currency, member, staff_name, settled [{invoice_number, description, amount}], credit_added,
  balance_owed, credit_balance}
- `statement`: {member, period_start, period_end, currency, opening_balance, entries [{date,
  description, reference, debit, credit, balance}], closing_balance, total_debits, total_credits};
  balances are positive when the member owes, negative when in credit.
- `credit_note`: {number, date, kind: void|refund, reason, currency, amount, member,
  original {label, amount}, staff_name, method_label}

A missing key fails the render (StrictUndefined) rather than printing a blank. Realistic examples of
each are in tests/documents/test_pdfs.py.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import jinja2
import segno

from portal.lib import formatting, i18n

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"
DEFAULT_TIMEZONE = "Africa/Nairobi"
DEFAULT_CURRENCY = "KES"

KINDS = frozenset({"invoice", "receipt", "receipt_80mm", "statement", "credit_note", "day_close", "payer_statement"})
# Thermal-roll documents: laid out on one very long page, which is then cut to the content.
ROLL_KINDS = frozenset({"receipt_80mm"})
ROLL_END_ANCHOR = "roll-end"
ROLL_BOTTOM_MARGIN_PX = 3 * 96 / 25.4  # the 3 mm @page margin, in CSS px


# --- filters: formatting happens at the edge, in portal/lib/formatting.py --------------------------

def qr_data_uri(link: str) -> str:
    """An SVG QR code for `link`, as a data: URI WeasyPrint draws as vector (sharp when printed)."""
    return segno.make(link, error="m").svg_data_uri(scale=4, border=0, dark="#000")


def _context_tz(ctx) -> ZoneInfo:
    return ZoneInfo(ctx.get("timezone") or DEFAULT_TIMEZONE)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    # Documents say their currency on every amount; a document's times are shown in its own time zone.
    formatting.register(env, currency=lambda: DEFAULT_CURRENCY, tz=_context_tz)
    env.filters["qr_data_uri"] = qr_data_uri
    i18n.install(env)  # a member's document in their language (`lang`, or the member's `language`)
    return env


def render_html(kind: str, context: dict) -> str:
    """The document as HTML (what WeasyPrint lays out); useful to debug a template."""
    if kind not in KINDS:
        raise ValueError(f"unknown document kind {kind!r}: one of {sorted(KINDS)}")
    template = _environment().get_template(f"pdf/{kind}.html")
    return template.render(**{"lang": i18n.of_context(context), **context}, roll_end_anchor=ROLL_END_ANCHOR)



# --- WeasyPrint --------------------------------------------------------------------------------

def _url_fetcher():
    """Documents may load data: URIs and files under static/ only: never the network."""
    from weasyprint.urls import URLFetcher

    static = STATIC.resolve()

    class StaticOnlyFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            parts = urlsplit(url)
            if parts.scheme == "file":
                path = Path(unquote(parts.path)).resolve()
                if not path.is_relative_to(static):
                    raise ValueError(f"documents may only load files from static/: {url}")
            return super().fetch(url, headers)

    return StaticOnlyFetcher(allowed_protocols={"file", "data"}, fail_on_errors=True)


def render_pdf_sync(kind: str, context: dict) -> bytes:
    """Render one document to PDF bytes. Blocking and CPU-heavy: on an event loop use render_pdf."""
    import weasyprint
    from weasyprint.urls import FatalURLFetchingError

    html = weasyprint.HTML(string=render_html(kind, context), base_url=str(STATIC) + "/",
                           url_fetcher=_url_fetcher())
    try:
        document = html.render()
    except FatalURLFetchingError as error:
        # A BaseException in WeasyPrint: re-raise as an ordinary error so job runners catch it.
        raise RuntimeError(f"{kind} PDF: {error}") from error
    if kind in ROLL_KINDS:
        _cut_roll(document)
    return document.write_pdf()


def _cut_roll(document) -> None:
    """Cut the thermal roll's last page just below the content.

    WeasyPrint needs a page of fixed height, so roll documents are laid out on a very long page
    (see `@page roll` in pdf.css); the template ends with an anchor, and the page is shortened to
    reach just past it (plus the bottom margin). Page.height is what the PDF writer uses for the
    media box and to place content from the top, so nothing above the cut moves.
    """
    last = document.pages[-1]
    anchor = last.anchors.get(ROLL_END_ANCHOR)
    if anchor is None:
        return
    # (x1, y1, x2, y2) in CSS px from the page's top left (older releases gave only (x, y)).
    bottom = max(anchor[1::2])
    last.height = min(last.height, bottom + ROLL_BOTTOM_MARGIN_PX)


async def render_pdf(kind: str, context: dict) -> bytes:
    """Render one document to PDF bytes on a worker thread (WeasyPrint must not block the loop)."""
    return await asyncio.to_thread(render_pdf_sync, kind, context)
