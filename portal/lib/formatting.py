"""Formatting at the edge: the one set of Jinja filters for pages, emails, SMS and PDF documents.

`register(env, currency=..., tz=...)` installs them into a Jinja environment; each environment says
where its default currency and its time zone come from (the pages and messages: the gym's
settings; a document: its own render context).

Two date forms are in use and both are kept, because what is printed must not change:
pages and messages show `nice_date` ('05 Jan 2026', the value's own date) and `local_dt`
('05 Jan 2026 14:03' in the gym's time zone); documents print `print_date` ('5 Jan 2026') and
`print_datetime` ('5 Jan 2026, 14:03 EAT').
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import jinja2

from portal.lib.money import Money
from portal.lib.phones import display_phone

LOCAL_DT = "%d %b %Y %H:%M"
NICE_DATE = "%d %b %Y"


def money(value, currency: str) -> str:
    """Decimal -> 'KES 3,000' / 'KES 2,500.50' (None -> ''); a Money keeps its own currency."""
    if value is None:
        return ""
    if isinstance(value, Money):
        return value.format()
    # Through Decimal first, as the pages always did: whatever rendered before still renders.
    return Money(Decimal(value), currency).format()


def money_plain(value, currency: str) -> str:
    """Decimal -> '3,000' (no currency), for narrow columns whose header names the currency."""
    if value is None:
        return ""
    return Money(value, currency).format(symbol=False)


def amount_input(value) -> str:
    """Decimal -> '2500.00': an amount as a form field holds it (no currency, no separators)."""
    return "" if value is None else f"{Decimal(value):.2f}"


def nonzero(value) -> bool:
    """An amount (Decimal or its text, None as zero) that is not zero, compared exactly."""
    return Decimal(value or 0) != 0


def balance(value, currency: str) -> str:
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
    return f"{format(Decimal(value).normalize(), 'f')}%"


def quantity(value) -> str:
    """Decimal('2.00') -> '2'; Decimal('1.5') -> '1.5'."""
    return "" if value is None else format(Decimal(value).normalize(), "f")


def phone(value: str | None) -> str:
    """2547XXXXXXXX -> '0712 345 678' (None -> '')."""
    return display_phone(value) if value else ""


def payment_reference(payment: dict) -> str:
    """A payment's reference as people read it: an M-Pesa payment confirmed without its code
    (an STK query carries none) says the code is to follow until it arrives."""
    if payment.get("reference"):
        return payment["reference"]
    return "M-Pesa code to follow" if payment.get("method") == "mpesa" else ""


def nice_date(value: date | datetime | None) -> str:
    """'05 Jan 2026': the value's own date (a datetime is not moved to another time zone)."""
    return value.strftime(NICE_DATE) if value else ""


def local_dt(value: datetime | None, tz: ZoneInfo, fmt: str = LOCAL_DT) -> str:
    """An aware datetime in the time zone `tz`, by `fmt` ('05 Jan 2026 14:03')."""
    return value.astimezone(tz).strftime(fmt) if value else ""


def print_date(value: date | datetime | None, tz: ZoneInfo) -> str:
    """'5 Jan 2026' (a datetime is first moved to the time zone `tz`)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(tz).date()
    return f"{value.day} {value:%b %Y}"


def print_datetime(value: datetime | None, tz: ZoneInfo) -> str:
    """An aware datetime -> '5 Jan 2026, 14:03 EAT' in the time zone `tz`."""
    if value is None:
        return ""
    if value.tzinfo is None:
        raise ValueError("refusing a naive datetime on a document: times are stored in UTC")
    local = value.astimezone(tz)
    return f"{local.day} {local:%b %Y, %H:%M %Z}"


def register(env: jinja2.Environment, *, currency: Callable[[], str],
             tz: Callable[[jinja2.runtime.Context], ZoneInfo]) -> None:
    """Install the filters into `env`. `currency()` is the currency of an amount given without
    one; `tz(context)` the time zone a template shows times in (asked at each render, so a
    document can carry its own)."""

    def money_filter(value, currency_: str | None = None) -> str:
        return money(value, currency_ or currency())

    def money_plain_filter(value, currency_: str | None = None) -> str:
        return money_plain(value, currency_ or currency())

    def balance_filter(value, currency_: str | None = None) -> str:
        return balance(value, currency_ or currency())

    @jinja2.pass_context
    def local_dt_filter(ctx, value, fmt: str = LOCAL_DT) -> str:
        return local_dt(value, tz(ctx), fmt)

    @jinja2.pass_context
    def print_date_filter(ctx, value) -> str:
        return print_date(value, tz(ctx))

    @jinja2.pass_context
    def print_datetime_filter(ctx, value) -> str:
        return print_datetime(value, tz(ctx))

    env.filters.update(
        money=money_filter, money_plain=money_plain_filter, amount_input=amount_input, nonzero=nonzero,
        payment_reference=payment_reference,
        balance=balance_filter, percent=percent,
        quantity=quantity, phone=phone, nice_date=nice_date, local_dt=local_dt_filter,
        print_date=print_date_filter, print_datetime=print_datetime_filter,
    )
