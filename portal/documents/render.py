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
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import jinja2
import segno

from portal.lib.money import Money
from portal.lib.phones import display_phone

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"
DEFAULT_TIMEZONE = "Africa/Nairobi"

KINDS = frozenset({"invoice", "receipt", "receipt_80mm", "statement", "credit_note", "day_close"})
# Thermal-roll documents: laid out on one very long page, which is then cut to the content.
ROLL_KINDS = frozenset({"receipt_80mm"})
ROLL_END_ANCHOR = "roll-end"
ROLL_BOTTOM_MARGIN_PX = 3 * 96 / 25.4  # the 3 mm @page margin, in CSS px


# --- filters: formatting happens here, at the edge ---------------------------------------------

def money(value, currency: str = "KES") -> str:
    """Decimal -> 'KES 3,000' / 'KES 2,500.50' (None -> '')."""
    if value is None:
        return ""
    if isinstance(value, Money):
        return value.format()
    return Money(value, currency).format()


def money_plain(value, currency: str = "KES") -> str:
    """Decimal -> '3,000' (no currency), for narrow columns whose header names the currency."""
    if value is None:
        return ""
    return Money(value, currency).format(symbol=False)


def balance(value, currency: str = "KES") -> str:
    """A member balance: owed is positive ('KES 1,500'), credit negative ('KES 1,500 in credit')."""
    if value is None:
        return ""
    amount = Decimal(value)
    if amount < 0:
        return f"{money(-amount, currency)} in credit"
    return money(amount, currency)


def percent(value) -> str:
    """Decimal('16') / Decimal('16.00') -> '16%'; Decimal('12.5') -> '12.5%'."""
    if value is None:
        return ""
    text = format(Decimal(value).normalize(), "f")
    return f"{text}%"


def quantity(value) -> str:
    """Decimal('2.00') -> '2'; Decimal('1.5') -> '1.5'."""
    return "" if value is None else format(Decimal(value).normalize(), "f")


def nice_date(value: date | datetime | None, tz: ZoneInfo | None = None) -> str:
    """date -> '5 Jan 2026' (a datetime is first moved to the gym's time zone)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(tz or ZoneInfo(DEFAULT_TIMEZONE)).date()
    return f"{value.day} {value:%b %Y}"


def nice_datetime(value: datetime | None, tz: ZoneInfo | None = None) -> str:
    """aware datetime -> '5 Jan 2026, 14:03 EAT' in the gym's time zone."""
    if value is None:
        return ""
    if value.tzinfo is None:
        raise ValueError("refusing a naive datetime on a document: times are stored in UTC")
    local = value.astimezone(tz or ZoneInfo(DEFAULT_TIMEZONE))
    return f"{local.day} {local:%b %Y, %H:%M %Z}"


def phone(value: str | None) -> str:
    return display_phone(value) if value else ""


def qr_data_uri(link: str) -> str:
    """An SVG QR code for `link`, as a data: URI WeasyPrint draws as vector (sharp when printed)."""
    return segno.make(link, error="m").svg_data_uri(scale=4, border=0, dark="#000")


def _context_tz(ctx) -> ZoneInfo:
    return ZoneInfo(ctx.get("timezone") or DEFAULT_TIMEZONE)


@jinja2.pass_context
def date_filter(ctx, value) -> str:
    return nice_date(value, _context_tz(ctx))


@jinja2.pass_context
def datetime_filter(ctx, value) -> str:
    return nice_datetime(value, _context_tz(ctx))


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(money=money, money_plain=money_plain, balance=balance, percent=percent,
                       quantity=quantity, phone=phone, qr_data_uri=qr_data_uri,
                       date=date_filter, datetime=datetime_filter)
    return env


def render_html(kind: str, context: dict) -> str:
    """The document as HTML (what WeasyPrint lays out); useful to debug a template."""
    if kind not in KINDS:
        raise ValueError(f"unknown document kind {kind!r}: one of {sorted(KINDS)}")
    template = _environment().get_template(f"pdf/{kind}.html")
    return template.render(**context, roll_end_anchor=ROLL_END_ANCHOR)


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
