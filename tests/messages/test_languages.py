"""Members read their SMS, emails, pay pages and receipts in English or Swahili (issue 15).

What is checked here:
- the catalog: every message Babel extracts from the templates and the Python has a Swahili
  translation with the same placeholders, and the committed messages.pot is what Babel extracts;
- every member-facing template renders in both languages, and the Swahili really is Swahili;
- every SMS variant sent fits one 160-character GSM-7 part in both languages with the longest
  fields we expect (see WORST);
- end to end: a Swahili member who pays gets the SMS and the email receipt (and its PDF) in Swahili.
"""

from __future__ import annotations

import asyncio
import io
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from pypdf import PdfReader

from portal.documents import render as documents
from portal.gateways.africastalking import sms_parts
from portal.lib import i18n
from portal.messages import content, email
from tables.members import Member
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_member
from tests.messages.conftest import messages_of, sandbox_sms, use_settings, wait_for_message

ROOT = Path(__file__).resolve().parents[2]

# --- the catalog ----------------------------------------------------------------------------------


def _extracted() -> dict:
    """msgid (a str, or a (singular, plural) tuple) -> where, as Babel extracts it with babel.cfg."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords):
        found[message] = f"{filename}:{lineno}"
    return found


def _sw_catalog():
    with i18n.po_path("sw").open("rb") as f:
        return read_po(f, locale="sw")


def test_every_message_has_its_swahili():
    extracted = _extracted()
    assert len(extracted) > 150  # the member-facing templates and the pay page's messages
    catalog = _sw_catalog()
    missing = []
    for msgid, where in extracted.items():
        entry = catalog.get(msgid)
        strings = entry and (entry.string if isinstance(entry.string, tuple) else (entry.string,))
        if not entry or entry.fuzzy or not all(s.strip() for s in strings):
            missing.append(f"{where}: {msgid!r}")
    assert not missing, "no Swahili for:\n" + "\n".join(missing)
    # Placeholders match (babel's python-format checker): a translation cannot drop an amount.
    problems = [(m.id, errors) for m, errors in catalog.check()]
    assert not problems, problems


def test_the_committed_template_is_what_babel_extracts():
    with (i18n.LOCALE_DIR / "messages.pot").open("rb") as f:
        pot = {m.id for m in read_po(f) if m.id}
    assert pot == set(_extracted()), "run the pybabel extract line in babel.cfg"


def test_english_is_the_msgid_and_swahili_comes_from_the_po():
    assert i18n.gettext("en", "Thank you!") == "Thank you!"
    assert i18n.gettext("sw", "Thank you!") == "Asante!"
    assert i18n.gettext("fr", "Thank you!") == "Thank you!"  # an unknown language: English
    assert i18n.ngettext("sw", "%(owed)s overdue %(num)d day.", "%(owed)s overdue %(num)d days.", 3,
                         owed="KES 1,500") == "Malipo ya KES 1,500 yamechelewa siku 3."


def test_swahili_dates_name_the_month_in_swahili():
    assert i18n.strftime(date(2026, 12, 7), "%d %b %Y", "sw") == "07 Des 2026"
    assert i18n.strftime(date(2026, 3, 5), "%d %B %Y (%A)", "sw") == "05 Machi 2026 (Alhamisi)"
    assert i18n.strftime(date(2026, 3, 5), "%d %b %Y", "en") == "05 Mar 2026"


# --- realistic contexts, with the longest fields -----------------------------------------------

# The longest we expect: an https base URL of 38 characters and a link id of 7 digits (the link
# is 99 characters), a seven-figure amount with cents, a long gym name, a long member number.
LONG_LINK = "https://pay.paulstropicalfitness.co.ke/pay/1234567." + "A" * 32 + "." + "f" * 20
WORST = {"gym_name": "Paul's Tropical Fitness", "amount": Decimal("1234567.50"), "number": "INV-2026-123456",
         "receipt": "RCP-2026-123456", "member": "PTF123456789", "paybill": "4071234", "due": date(2026, 9, 30)}


def _member(lang: str) -> dict:
    return {"name": "Wanjiku Nyambura-Kamau", "number": WORST["member"], "phone": "254712345678",
            "email": "wanjiku@example.com", "language": lang}


def _gym() -> dict:
    return {"name": WORST["gym_name"], "address": "Moi Avenue\nNairobi", "phone": "254712000000",
            "email": "desk@example.com", "kra_pin": "P051234567X", "logo": ""}


def invoice_ctx(lang: str, *, link: str | None = LONG_LINK, paid: Decimal = Decimal("0"), status: str = "open") -> dict:
    total = WORST["amount"]
    return {"gym": _gym(), "generated_at": datetime(2026, 9, 1, 7, 0, tzinfo=timezone.utc), "timezone": "Africa/Nairobi",
            "paybill": WORST["paybill"], "invoice": {
                "number": WORST["number"], "issue_date": date(2026, 9, 1), "due_date": WORST["due"], "status": status,
                "currency": "KES", "member": _member(lang),
                "lines": [{"description": "Annual membership", "quantity": Decimal("1"), "unit_price": total,
                           "vat_rate": Decimal("16"), "vat_inclusive": True, "net": Decimal("1064282.33"),
                           "vat": Decimal("170285.17"), "total": total}],
                "subtotal": Decimal("1064282.33"), "tax_total": Decimal("170285.17"), "total": total, "paid": paid,
                "balance": total - paid, "pay_link": link, "period": "01 Sep 2026 – 31 Aug 2027"}}


def receipt_ctx(lang: str, *, owed: Decimal = Decimal("999999.50"), lapsed: bool = True, method: str = "Bank transfer") -> dict:
    return {"gym": _gym(), "generated_at": datetime(2026, 9, 1, 7, 0, tzinfo=timezone.utc), "timezone": "Africa/Nairobi",
            "receipt": {
                "number": WORST["receipt"], "paid_at": datetime(2026, 3, 5, 11, 3, tzinfo=timezone.utc),
                "method_label": method, "reference": "TXN-0000000000", "amount": WORST["amount"], "currency": "KES",
                "member": _member(lang), "staff_name": "Grace Achieng",
                "settled": [{"invoice_number": WORST["number"], "description": "Annual membership", "amount": WORST["amount"]}],
                "credit_added": Decimal("10.00"), "balance_owed": owed, "credit_balance": Decimal("0"),
                "membership_note": "", "membership_lapsed": lapsed}}


STAGES = [("before", 3), ("due", 0), ("overdue", 1), ("overdue", 14), ("final", 21)]


def sms_cases(lang: str):
    """(name, every variant as rendered, the text fit_sms sends) of every SMS a member can get."""
    env = email.environment()

    def render(name, ctx):
        rendered = env.get_template(f"sms/{name}.txt").render({"gym_name": WORST["gym_name"], "lang": lang, **ctx})
        variants = [" ".join(v.split()) for v in re.split(r"^---\s*$", rendered, flags=re.M)]
        return f"{name} {lang}", variants, content.fit_sms(rendered)

    yield render("invoice", invoice_ctx(lang))
    yield render("invoice-nolink", invoice_ctx(lang, link=None))
    for owed in (Decimal("0"), Decimal("999999.50")):
        for lapsed in (False, True):
            yield render("receipt", receipt_ctx(lang, owed=owed, lapsed=lapsed))
    for stage, days in STAGES:
        for name, link in (("reminder", LONG_LINK), ("reminder-nolink", None)):
            name_, variants, sent = render(name, {**invoice_ctx(lang, link=link), "stage": stage, "days": days})
            yield f"{name_} {stage} {days}", variants, sent


SWAHILI_WORDS = re.compile(r"\b(ankara|Lipa|lipa|Tumepokea|risiti|Asante|Malipo|ILANI|mwisho|akaunti|leo)\b")


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_every_sms_fits_one_part_with_the_longest_fields(lang):
    cases = list(sms_cases(lang))
    assert len(cases) == 16
    for name, variants, sent in cases:
        assert sms_parts(sent) == ("GSM-7", 1), f"{name}: {len(sent)} characters: {sent}"
        assert len(sent) <= 160
        # The last variant is the one sent when nothing fits: it must fit by itself.
        assert sms_parts(content.gsm7_safe(variants[-1]))[1] == 1, f"{name}: {variants[-1]}"
        if lang == "sw":
            assert SWAHILI_WORDS.search(sent), f"{name} is not in Swahili: {sent}"
        else:
            assert not SWAHILI_WORDS.search(sent.replace(LONG_LINK, "")), f"{name}: {sent}"


def test_sms_in_swahili_reads_as_written():
    """Worked example, with an ordinary invoice: Swahili month names, amounts as in English."""
    env = email.environment()
    ctx = invoice_ctx("sw", link="https://pay.example.com/pay/1.x.y")
    ctx["invoice"].update(balance=Decimal("1500"), due_date=date(2026, 12, 7))
    text = content.fit_sms(env.get_template("sms/invoice.txt").render({"gym_name": "PTF", "lang": "sw", **ctx}))
    assert text == "PTF: ankara INV-2026-123456 ya KES 1,500, tarehe ya mwisho 07 Des 2026. Lipa: https://pay.example.com/pay/1.x.y"
    ctx["invoice"]["member"]["language"] = "en"
    english = content.fit_sms(env.get_template("sms/invoice.txt").render({"gym_name": "PTF", "lang": "en", **ctx}))
    assert english == "PTF: invoice INV-2026-123456, KES 1,500 due 07 Dec 2026. Pay: https://pay.example.com/pay/1.x.y"


# --- every member-facing template in both languages --------------------------------------------

def _emails(lang):
    yield "receipt", email.render("receipt", receipt_ctx(lang))
    yield "invoice", email.render("invoice", invoice_ctx(lang, paid=Decimal("100")))
    for stage, days in STAGES:
        yield f"reminder {stage}", email.render("reminder", {**invoice_ctx(lang, paid=Decimal("100")), "stage": stage, "days": days})


EMAIL_SWAHILI = {"receipt": "asante kwa malipo yako", "invoice": "hii ni ankara yako", "reminder before": "tunakukumbusha",
                 "reminder due": "inapaswa kulipwa", "reminder overdue": "zilizopita", "reminder final": "ilani ya mwisho"}


def test_every_email_renders_in_both_languages():
    english = dict(_emails("en"))
    swahili = dict(_emails("sw"))
    assert english.keys() == swahili.keys()
    for name, sw in swahili.items():
        en = english[name]
        phrase = EMAIL_SWAHILI[name]
        assert phrase in sw.text.lower() and phrase in sw.html.lower(), (name, sw.text)
        assert phrase not in en.text.lower() and "Hello Wanjiku" in en.text and "Habari Wanjiku" in sw.text
        assert sw.subject != en.subject and "KES 1,234,567.50" in sw.subject + sw.text
        assert '<html lang="sw">' in sw.html and '<html lang="en">' in en.html
    assert swahili["receipt"].subject == "Risiti RCP-2026-123456: tumepokea KES 1,234,567.50, asante"
    assert "tarehe 05 Mac 2026, 14:03" in swahili["receipt"].text  # 11:03 UTC is 14:03 in Nairobi
    assert "on 05 Mar 2026 at 14:03" in english["receipt"].text
    assert "Uhamisho wa benki" in swahili["receipt"].text  # the method, translated
    assert "tarehe ya mwisho 30 Sep 2026" in swahili["invoice"].subject


@pytest.mark.parametrize("kind", ["receipt", "receipt_80mm", "invoice"])
def test_every_document_renders_in_both_languages(kind):
    ctx = invoice_ctx if kind == "invoice" else receipt_ctx
    en = documents.render_html(kind, ctx("en"))
    sw = documents.render_html(kind, ctx("sw"))
    words = {"receipt": ["Risiti", "Kiasi kilichopokelewa", "Salio la kulipa", "Asante kwa malipo yako", "05 Mac 2026"],
             "receipt_80mm": ["RISITI", "UMELIPA", "SALIO LA KULIPA", "Uhamisho wa benki", "5 Mac 2026"],
             "invoice": ["Ankara", "Tarehe ya mwisho", "Kiasi kilicholipwa", "Salio", "30 Sep 2026", "1 Sep 2026"]}[kind]
    for word in words:
        if word[0].isdigit() and kind != "receipt":
            assert word in sw
            continue
        if kind == "receipt" and word == "05 Mac 2026":
            assert "5 Mac 2026" in sw  # documents print the day without a leading zero
            continue
        assert word in sw, word
        assert word not in en, word
    assert 'lang="sw"' in sw and 'lang="en"' in en
    # A context's own `lang` wins over the member's (and English stays the default).
    assert documents.render_html(kind, {**ctx("sw"), "lang": "en"}) == en


# --- end to end -----------------------------------------------------------------------------------

def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


async def test_a_swahili_member_who_pays_gets_the_email_receipt_in_swahili(alice, worker, smtp_server):
    member = await make_member("Achieng", "Odhiambo", email="achieng@example.com", language="sw")
    invoice = await invoice_for(member, 3000)

    r = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "1000", "idempotency_key": "sw1"})
    assert r.status_code == 303

    (_, rcpt, msg), = await smtp_server.wait_for(1)
    assert rcpt == ["achieng@example.com"]
    assert re.fullmatch(r"Risiti RCP-\d{4}-\d{6}: tumepokea KES 1,000, asante", msg["Subject"]), msg["Subject"]
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "Habari Achieng Odhiambo," in text and "Asante kwa malipo yako: tumepokea KES 1,000 kwa Pesa taslimu" in text
    assert "Bado unadaiwa baada ya malipo haya: KES 2,000" in text and f"Imelipia ankara {invoice['number']}" in text
    assert '<html lang="sw">' in html and "Asante kwa malipo yako" in html
    (pdf,) = list(msg.iter_attachments())
    pdf_text = _pdf_text(pdf.get_content())
    assert "RISITI" in pdf_text and "Kiasi kilichopokelewa" in pdf_text and "KES 2,000" in pdf_text, pdf_text
    assert "Amount received" not in pdf_text
    await assert_books_agree()


async def test_a_swahili_member_who_pays_gets_the_sms_receipt_in_swahili(at_live, alice, worker):
    use_settings(SMS_RECEIPTS="1")  # receipts by SMS too (the live fixture puts the environment back)
    member = await make_member("Kiprono", "Chebet", phone="254711222555", language="sw")
    await invoice_for(member, 3000)

    r = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "3000", "idempotency_key": "sw2"})
    payment_id = int(r.headers["location"].rsplit("/", 1)[1])

    for _ in range(600):  # the worker writes the receipt message once the payment's PDF job runs
        if found := await messages_of(payment=payment_id):
            break
        await asyncio.sleep(0.05)
    (message,) = found
    assert message["channel"] == "sms"
    message = await wait_for_message(message["id"], {"sent", "delivered"})
    (sms,) = sandbox_sms(at_live.sandbox, "+254711222555")
    text = sms["request"]["form"]["message"]
    assert re.fullmatch(r"Paul's Tropical Fitness: tumepokea KES 3,000 \(Pesa taslimu\), risiti RCP-\d{4}-\d{6}\. Asante!",
                        text), text
    assert (sms["encoding"], sms["parts"]) == ("GSM-7", 1)
    await assert_books_agree()


async def test_the_member_form_keeps_the_language(alice):
    r = await alice.post("/members/new", {"first_name": "Mwende", "last_name": "Mutua", "phone": "0711 333 444",
                                          "message_channel": "sms", "language": "sw"})
    assert r.status_code == 303
    member_id = int(re.search(r"/members/(\d+)", r.headers["location"]).group(1))
    assert (await Member.select(Member.language).where(Member.id == member_id).first())["language"] == "sw"
    page = await alice.get(f"/members/{member_id}")
    assert 'data-testid="member-language">in Kiswahili<' in page.text
    edit = await alice.get(f"/members/{member_id}/edit")
    assert '<option value="sw" selected>' in edit.text

    bad = await alice.post(f"/members/{member_id}/edit", {"first_name": "Mwende", "last_name": "Mutua",
                                                          "phone": "0711 333 444", "language": "fr"})
    assert bad.status_code == 422 and "Choose English or Kiswahili" in bad.text
    assert (await Member.select(Member.language).where(Member.id == member_id).first())["language"] == "sw"


def test_staff_navigation_and_login_go_through_gettext_in_english():
    """Staff pages stay English, but their strings are msgids Babel can extract (the nav and the
    login page so far): translating them later is a catalog, not a template change."""
    from babel.messages.extract import extract_from_file
    from jinja2.ext import babel_extract

    def msgids(path: str) -> set:
        return {m[1] for m in extract_from_file(babel_extract, str(ROOT / path), keywords={"_": None})}

    assert {"Members", "Payments", "End of day", "Log out", "Skip to content"} <= msgids("templates/base.html")
    assert {"Log in", "User name", "Password"} <= msgids("templates/login.html")


async def test_the_members_export_says_each_members_language(bob):
    await make_member("Achieng", "Odhiambo", number="PTF0301", language="sw")
    await make_member("Wanjiku", "Kamau", number="PTF0302")
    r = await bob.get("/members.csv")
    lines = r.text.splitlines()
    assert lines[0].split(",")[-1] == "language"
    assert sorted(line.split(",")[-1] for line in lines[1:]) == ["en", "sw"]


# --- staff pages: English, through the same machinery (issue 15) -------------------------------

def _member_facing_patterns() -> list[str]:
    return [line.strip()[len("[jinja2: "):-1] for line in (ROOT / "babel.cfg").read_text().splitlines()
            if line.startswith("[jinja2:")]


def _is_member_facing(rel: str) -> bool:
    from fnmatch import fnmatch

    return any(fnmatch(rel, pattern.replace("**", "*")) for pattern in _member_facing_patterns())


# Staff templates whose shown text does not go through _() yet: none left. A template put here
# is skipped by the check below until it is done (and the check fails once it is, so the list
# cannot go stale).
NOT_YET: set[str] = set()
# Shown text that is the same in every language: names of things, and the pay page's own
# two-language switch.
ALLOWED = {"M-Pesa", "KRA PIN", "aria-label='Language / Lugha'"}
# A label, a hint or a blank choice passed to the form macros (_forms.html) as a bare string.
BARE_MACRO_TEXT = re.compile(r"""(?:\b(?:field|select|checkbox)\(["'][^"']*["'],\s*["']|\b(?:hint|blank)=["'])(?=[^"']*[A-Za-z])""")
# `{% set _ = list.append(…) %}` hides gettext from the rest of the template: every _() after it
# calls None (a 500 on the page).
HIDES_GETTEXT = re.compile(r"\{%-?\s*(?:set|for)\s+_\s*(?:=|in\b|,)")


def _shown_untranslated(path: Path) -> list[str]:
    from tests.messages.template_text import JINJA, untranslated

    source = path.read_text()
    found = [t for t in untranslated(source, per_line=path.suffix == ".txt") if t not in ALLOWED]
    for tag in JINJA.finditer(source):
        if BARE_MACRO_TEXT.search(tag.group()):
            found.append(" ".join(tag.group().split())[:80])
        if HIDES_GETTEXT.search(tag.group()):
            found.append(f"{tag.group()[:40]}: a variable named _ hides gettext")
    return found


def test_no_template_shows_text_outside_gettext():
    """Every template, staff or member-facing: the text a person reads goes through _()."""
    templates = sorted(p for p in (ROOT / "templates").rglob("*") if p.is_file() and p.suffix in (".html", ".txt"))
    assert len(templates) > 80
    left = {}
    for path in templates:
        rel = str(path.relative_to(ROOT))
        found = _shown_untranslated(path)
        if rel in NOT_YET:
            assert found, f"{rel} is done: take it off NOT_YET"
        elif found:
            left[rel] = found
    assert not left, "shown text outside _():\n" + "\n".join(f"{k}: {v}" for k, v in left.items())


def test_the_check_sees_bare_text_and_lets_the_rest_through():
    from tests.messages.template_text import untranslated

    bare = ('<h1 title="Owed by {{ m.name }}">Dues</h1><p>Paid {{ amount }} on {{ day }}</p>'
            '<input placeholder="Search"><script>var words = "not shown";</script>{# a comment #}')
    assert untranslated(bare) == ["Dues", "Paid on", "title='Owed by'", "placeholder='Search'"]
    done = ('<h1 title="{{ _(\'Owed by %(name)s\', name=m.name) }}">{{ _("Dues") }}</h1>'
            '<p>{{ _("Paid %(amount)s", amount=amount) }} · 42 &nbsp; {{ m.name }} – {% if x %}{{ y }}{% endif %}</p>'
            '<textarea>typed by someone</textarea>')
    assert untranslated(done) == []
    assert untranslated("Total: {{ n }}\n{{ _('Due') }}\n", per_line=True) == ["Total:"]
    assert BARE_MACRO_TEXT.search('{{ field("name", "Name", values, errors) }}')
    assert BARE_MACRO_TEXT.search('{{ field("x", _("X"), values, errors, hint="Optional") }}')
    assert not BARE_MACRO_TEXT.search('{{ field("name", _("Name"), values, errors, hint=_("Optional")) }}')


def _staff_extracted() -> set:
    with (ROOT / "babel-staff.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    return {message for _f, _l, message, _c, _x in extract_from_dir(
        str(ROOT), method_map, options_map, keywords={"_": None, "S_": None})}


def test_staff_texts_have_their_own_english_only_catalog():
    """Staff msgids go to portal/locale/staff.pot (babel-staff.cfg), never to messages.pot: the
    Swahili catalog only asks for what members read, and no staff translation is pretended."""
    with (i18n.LOCALE_DIR / "staff.pot").open("rb") as f:
        pot = {m.id for m in read_po(f) if m.id}
    staff = _staff_extracted()
    assert pot == staff, "run the pybabel extract line in babel-staff.cfg"
    assert len(staff) > 700
    assert {"Record cash, bank or cheque", "Send M-Pesa prompt", "Reminder sent.", "End of day"} <= staff
    assert "Record cash, bank or cheque" not in _extracted()  # not asked of the Swahili catalog
    assert not list(i18n.LOCALE_DIR.glob("*/LC_MESSAGES/staff.po"))
