"""Jinja set-up: the filters that format money, phones and times at the edge."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from portal.lib.money import Money
from portal.lib.phones import display_phone
from portal.settings import Settings
from portal.web.flash import NOTICES


def configure_jinja(settings: Settings):
    def money(value, currency: str | None = None) -> str:
        if value is None:
            return ""
        if isinstance(value, Money):
            return value.format()
        return Money(Decimal(value), currency or settings.currency).format()

    def local_dt(value: datetime | None, fmt: str = "%d %b %Y %H:%M") -> str:
        return value.astimezone(settings.tz).strftime(fmt) if value else ""

    def nice_date(value: date | None) -> str:
        return value.strftime("%d %b %Y") if value else ""

    def callback(engine) -> None:
        env = engine.engine
        env.filters.update(money=money, phone=display_phone, local_dt=local_dt, nice_date=nice_date)
        env.globals.update(settings=settings, gym_name=settings.gym_name, notices=NOTICES)
        env.autoescape = True
        env.trim_blocks = True
        env.lstrip_blocks = True

    return callback


def is_htmx(request) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-history-restore-request") != "true"
