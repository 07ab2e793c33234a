"""Jinja set-up for the pages: the formatting filters (portal/lib/formatting.py) and the globals."""

from __future__ import annotations

from portal.lib import formatting, i18n
from portal.settings import Settings
from portal.web.flash import NOTICES


def configure_jinja(settings: Settings):
    def callback(engine) -> None:
        env = engine.engine
        formatting.register(env, currency=lambda: settings.currency, tz=lambda ctx: settings.tz)
        i18n.install(env)  # the pay pages in the member's language; staff pages in English
        env.globals.update(settings=settings, gym_name=settings.gym_name, notices=NOTICES)
        env.autoescape = True
        env.trim_blocks = True
        env.lstrip_blocks = True

    return callback


def sent_by_htmx(request) -> bool:
    """Any request htmx made (a partial, a poll, a history restore): it cannot follow a redirect
    itself, so it is told where to go with HX-Redirect, and it reads errors as HTML."""
    return request.headers.get("hx-request") == "true"


def is_htmx(request) -> bool:
    """An htmx request that wants a partial. A history restore (back to a URL a list pushed, not
    in htmx's cache) also says hx-request, but replaces the whole page: it gets the whole page."""
    return sent_by_htmx(request) and request.headers.get("hx-history-restore-request") != "true"
