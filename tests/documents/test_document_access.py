"""A document is a printout of a page and carries that page's permission: whoever may open the
page may open its PDFs, and whoever is refused the page is refused its PDFs (front desk and the
manager's close report, issue 12)."""

import re

from portal.billing import closes
from portal.documents import store as document_store
from portal.lib.clock import today
from portal.web.billing import DOCUMENT_PAGE_GUARDS
from tables.billing import CreditNote
from tests.billing.helpers import invoice_for
from tests.factories import make_location, make_member


async def _one_of_each(alice, bob) -> list[tuple[str, str, str]]:
    """(kind, subject, the page it is a printout of), every kind made the way staff make it."""
    westlands = await make_location()
    member = await make_member("Achieng", "Odhiambo")
    kept = await invoice_for(member, 3000)
    voided = await invoice_for(member, 500)
    paid = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "1000", "location": westlands,
                                                          "invoice": kept["id"], "idempotency_key": "doc-access-1"})
    assert paid.status_code == 303, paid.text
    payment = int(paid.headers["location"].rsplit("/", 1)[1])
    assert (await bob.post(f"/invoices/{voided['id']}/void", {"reason": "Raised twice"})).status_code == 303
    note = (await CreditNote.select(CreditNote.id).where(CreditNote.invoice == voided["id"]).first())["id"]
    day = today()
    closed = await bob.post("/close", {"location": westlands, "date": day.isoformat(),
                                       **{k: "1000" for k in await _cash_fields(bob, westlands)}})
    assert closed.status_code == 303, closed.text
    close = await closes.close_for(westlands, day)
    close_page = f"/close?location={westlands}&date={day.isoformat()}"
    return [
        ("receipt", f"payment:{payment}", f"/payments/{payment}"),
        ("receipt_80mm", f"payment:{payment}", f"/payments/{payment}"),
        ("invoice", await document_store.invoice_subject(kept["id"]), f"/invoices/{kept['id']}"),
        ("credit_note", f"credit_note:{note}", f"/invoices/{voided['id']}"),
        ("statement", document_store.statement_subject(member, day.replace(month=1, day=1), day),
         f"/members/{member}/statement"),
        ("day_close", f"day_close:{close['id']}:v{close['version']}", close_page),
        *await _payer_statement(member, day),
    ]


async def _payer_statement(member: int, day) -> list[tuple[str, str, str]]:
    """A payer's statement (portal/payers): a company paying for the member's next invoice."""
    from tests.payers.helpers import company, link

    acme = await company()
    await link(acme, member)
    await invoice_for(member, 3000)
    return [("payer_statement", await document_store.payer_statement_subject(acme, day), f"/payers/{acme}/statement")]


async def _cash_fields(bob, location: int) -> list[str]:
    """The close form's counted-cash fields (one per staff member who took cash)."""
    page = await bob.get(f"/close?location={location}")
    return sorted(set(re.findall(r'name="(counted_\d+)"', page.text)))


async def test_each_document_is_open_to_exactly_who_may_open_its_page(alice, bob):
    documents = await _one_of_each(alice, bob)
    assert {kind for kind, _, _ in documents} == set(document_store.KIND_SOURCES)  # every kind is checked
    for kind, subject, _ in documents:
        await document_store.render_and_store(kind, subject)

    refused = []
    for persona, name in ((alice, "front desk"), (bob, "manager")):
        for kind, subject, page in documents:
            page_status = (await persona.get(page)).status_code
            assert page_status in (200, 403), (name, page, page_status)
            pdf = await persona.get(f"/documents/{kind}/{subject}")
            status = await persona.get(f"/documents/{kind}/{subject}/status?label=PDF", htmx=True)
            assert (pdf.status_code, status.status_code) == (page_status, page_status), (name, kind)
            if page_status == 200:
                assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
            else:
                assert b"%PDF" not in pdf.content
                refused.append((name, kind))
    # The one page front desk may not open is the close; the manager opens everything.
    assert refused == [("front desk", "day_close")]


async def test_every_kind_of_document_names_the_guard_of_its_page():
    # A new kind without a page guard would fall back to "any staff": it must be listed on purpose.
    assert set(DOCUMENT_PAGE_GUARDS) == set(document_store.KIND_SOURCES)
