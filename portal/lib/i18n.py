"""What members read, in their language: English or Swahili, through gettext catalogs.

The English text is the msgid, written in the templates (`{{ _("Receipt") }}`,
`{{ ngettext(…) }}`) and in Python (`gettext(lang, "…")`, or `N_("…")` to mark a constant
translated where it is shown, e.g. `{{ error | translated }}`). `portal/locale/messages.pot` is what
Babel extracts from them (the commands are in `babel.cfg`), `portal/locale/sw/LC_MESSAGES/messages.po`
the Swahili. tests/messages/test_languages.py fails when a message has no Swahili or the .pot is
stale. In `_("…%(name)s…", name=…)` a literal percent sign is written `%%`.

The .po is read at start-up with Babel's own reader and turned into a gettext catalog in
memory, so there is no compile step for a fresh clone to miss and no .mo to fall out of date.

Staff pages are English, but their texts are msgids too (`_()` in the staff templates, `S_("…")`
for a notice or a rule's message in Python): Babel extracts them with babel-staff.cfg into
`portal/locale/staff.pot`, a catalog with no translation, so the Swahili one only asks for what
members read.

A template renders in the language named by its context's `lang` ('en' when absent, so staff
pages, which never set it, stay English while their strings go through the same calls). Dates
shown to members follow it too: month and day names come from Babel's CLDR data for the
language (offline), the layout ('05 Jan 2026') stays the same in both.
"""

from __future__ import annotations

import gettext as _gettext
import io
import re
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

import jinja2
from babel.dates import get_day_names, get_month_names
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = {"en": "English", "sw": "Kiswahili"}
DEFAULT = "en"
LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
DOMAIN = "messages"


def N_(message: str) -> str:
    """Marks a constant for extraction; it is translated where it is shown."""
    return message


def S_(message: str) -> str:
    """Marks a staff text in Python (a notice, a form error) for extraction into the staff
    catalog, `portal/locale/staff.pot`; staff pages are English, so it is the text itself."""
    return message


def known(lang: str | None) -> str:
    """`lang` when it is one of LANGUAGES, else the default."""
    return lang if lang in LANGUAGES else DEFAULT


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=None)
def translations(lang: str) -> _gettext.NullTranslations:
    """The catalog of `lang` (English: the msgids themselves). Fuzzy entries are left out, as
    msgfmt would."""
    lang = known(lang)
    if lang == DEFAULT:
        return _gettext.NullTranslations()
    with po_path(lang).open("rb") as f:
        catalog = read_po(f, locale=lang, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def gettext(lang: str | None, message: str, **variables) -> str:
    text = translations(known(lang)).gettext(message)
    return text % variables if variables else text


def ngettext(lang: str | None, singular: str, plural: str, n: int, **variables) -> str:
    text = translations(known(lang)).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


def of_context(context: dict) -> str:
    """The language of a receipt's or an invoice's render context (a document, an email, an
    SMS): its `lang`, else that of the member it is for (`member.language`), else English.
    Statements and credit notes are not translated yet: English."""
    if context.get("lang"):
        return known(context["lang"])
    for key in ("receipt", "invoice"):
        part = context.get(key)
        member = part.get("member") if isinstance(part, dict) else None
        if isinstance(member, dict) and member.get("language"):
            return known(member["language"])
    return DEFAULT


# --- dates in the member's language ------------------------------------------------------------

_NAMES = re.compile(r"%[%aAbB]")


def strftime(value: date | datetime, fmt: str, lang: str | None) -> str:
    """`value.strftime(fmt)`, with month and day names (%b %B %a %A) in `lang`."""
    lang = known(lang)
    if lang == DEFAULT:
        return value.strftime(fmt)

    def name(match: re.Match) -> str:
        code = match.group(0)
        if code == "%%":
            return code
        if code in ("%b", "%B"):
            text = get_month_names("abbreviated" if code == "%b" else "wide", locale=lang)[value.month]
        else:
            text = get_day_names("abbreviated" if code == "%a" else "wide", locale=lang)[value.weekday()]
        return text.replace("%", "%%")

    return value.strftime(_NAMES.sub(name, fmt))


# --- Jinja ------------------------------------------------------------------------------------

def lang_of(context) -> str:
    return known(context.get("lang"))


@jinja2.pass_context
def _ctx_gettext(context, message: str) -> str:
    return translations(lang_of(context)).gettext(message)


@jinja2.pass_context
def _ctx_ngettext(context, singular: str, plural: str, n: int) -> str:
    return translations(lang_of(context)).ngettext(singular, plural, n)


@jinja2.pass_context
def _ctx_pgettext(context, ctxt: str, message: str) -> str:
    return translations(lang_of(context)).pgettext(ctxt, message)


@jinja2.pass_context
def _ctx_npgettext(context, ctxt: str, singular: str, plural: str, n: int) -> str:
    return translations(lang_of(context)).npgettext(ctxt, singular, plural, n)


def install(env: jinja2.Environment) -> None:
    """Jinja's i18n extension on `env`, translating into each render's `lang`; the date filters
    (after portal/lib/formatting.register) follow it, and `date_fmt(fmt)` is strftime in it."""
    for lang in LANGUAGES:  # read now: a broken catalog stops the start, not a member's receipt
        translations(lang)
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(_ctx_gettext, _ctx_ngettext, newstyle=True,
                                  pgettext=_ctx_pgettext, npgettext=_ctx_npgettext)
    filters = env.filters
    english = {name: filters[name] for name in ("nice_date", "local_dt", "print_date", "print_datetime")
               if name in filters}

    @jinja2.pass_context
    def date_fmt(context, value, fmt: str) -> str:
        return strftime(value, fmt, lang_of(context)) if value else ""

    @jinja2.pass_context
    def nice_date(context, value) -> str:
        from portal.lib.formatting import NICE_DATE

        return strftime(value, NICE_DATE, lang_of(context)) if value else ""

    @jinja2.pass_context
    def local_dt(context, value, fmt: str | None = None) -> str:
        from portal.lib.formatting import LOCAL_DT

        if lang_of(context) == DEFAULT or not value:
            return context.call(english["local_dt"], value, *([fmt] if fmt else []))
        # The English filter moves the value into the template's time zone; ask it for an ISO
        # form (no names in it), then name the month in the member's language.
        moved = datetime.fromisoformat(context.call(english["local_dt"], value, "%Y-%m-%dT%H:%M:%S"))
        return strftime(moved, fmt or LOCAL_DT, lang_of(context))

    @jinja2.pass_context
    def print_date(context, value) -> str:
        if lang_of(context) == DEFAULT or not value:
            return context.call(english["print_date"], value)
        day = date.fromisoformat(_local_iso(context, value)[:10])
        return f"{day.day} {strftime(day, '%b %Y', lang_of(context))}"

    @jinja2.pass_context
    def print_datetime(context, value) -> str:
        if lang_of(context) == DEFAULT or not value:
            return context.call(english["print_datetime"], value)
        english_text = context.call(english["print_datetime"], value)  # '5 Jan 2026, 14:03 EAT'
        moved = datetime.fromisoformat(_local_iso(context, value))
        zone = english_text.rsplit(" ", 1)[-1]
        return f"{moved.day} {strftime(moved, '%b %Y, %H:%M', lang_of(context))} {zone}"

    def _local_iso(context, value) -> str:
        if isinstance(value, datetime):
            return context.call(english["local_dt"], value, "%Y-%m-%dT%H:%M:%S")
        return value.isoformat()

    @jinja2.pass_context
    def translated(context, text) -> str:
        """A message made elsewhere (an N_-marked constant, an error): translated when the catalog
        has it, as it is otherwise; never read as a format string."""
        return translations(lang_of(context)).gettext(text) if text else ""

    env.globals["languages"] = LANGUAGES
    filters["translated"] = translated
    filters["date_fmt"] = date_fmt
    filters["nice_date"] = nice_date
    if "local_dt" in english:
        filters["local_dt"] = local_dt
    if "print_date" in english:
        filters["print_date"] = print_date
    if "print_datetime" in english:
        filters["print_datetime"] = print_datetime
