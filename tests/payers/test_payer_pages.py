"""The payer pages as the desk uses them: forms that keep what was typed, linking, one payment
for several members, the bill-to on the invoice page and PDF, and query counts that do not grow
with the number of members."""

from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest

from portal.documents.context import invoice_context, payer_statement_context, receipt_context
from portal.lib.clock import today
from tables.audit import AuditLog
from tables.payers import Payer, PayerMember
from tests.billing.helpers import assert_books_agree, invoice, invoice_for
from tests.factories import make_member
from tests.payers.helpers import company, invoice_due, link
from tests.support.client import field_error, field_value

D = Decimal
COMPANY = {"kind": "company", "name": "Acme Logistics Ltd", "phone": "", "email": "accounts@acme.co.ke",
           "address": "P.O. Box 12345-00100 \r\n\r\nNairobi", "kra_pin": "p051234567x"}


async def test_a_wrong_kra_pin_is_shown_beside_the_field_with_what_was_typed(alice):
    r = await alice.post("/payers/new", {**COMPANY, "kra_pin": "P05123X"})
    assert r.status_code == 422
    assert field_error(r.text, "kra_pin") == "A KRA PIN is a letter, 9 digits and a letter, like P051234567X"
    assert field_value(r.text, "kra_pin") == "P05123X"
    assert field_value(r.text, "name") == "Acme Logistics Ltd"
    assert "P.O. Box 12345-00100" in r.text  # the address textarea keeps it too
    assert await Payer.count() == 0


async def test_a_company_needs_an_address_and_pin_and_a_parent_a_phone(alice):
    r = await alice.post("/payers/new", {"kind": "company", "name": "Beta Ltd"})
    assert r.status_code == 422
    assert unescape(field_error(r.text, "address")).startswith("Enter the company's postal address")
    assert unescape(field_error(r.text, "kra_pin")).startswith("Enter the company's KRA PIN")
    r = await alice.post("/payers/new", {"kind": "person", "name": "Grace Wanjiru", "phone": "12"})
    assert r.status_code == 422 and field_error(r.text, "phone") and field_value(r.text, "phone") == "12"
    r = await alice.post("/payers/new", {"kind": "nonsense", "name": "x" * 500, "email": "not-an-email"})
    assert r.status_code == 422
    assert field_error(r.text, "name") and field_error(r.text, "email") and field_error(r.text, "kind")
    assert await Payer.count() == 0


async def test_create_edit_link_pay_and_read_the_bill_to(alice, bob):
    """Acme (created here, PIN typed in lower case: kept upper-cased) pays for two staff:
    Achieng 3,000.00 due 10 days ago, Otieno 8,000.00 due 2 days ago. A bank payment of
    5,000.00: Achieng's 3,000 paid in full, 5,000 - 3,000 = 2,000.00 on Otieno's, 6,000.00 left."""
    r = await alice.post("/payers/new", COMPANY)
    assert r.status_code == 303
    payer_id = int(r.headers["location"].rsplit("/", 1)[1])
    saved = await Payer.select(Payer.kra_pin, Payer.address).first()
    assert (saved["kra_pin"], saved["address"]) == ("P051234567X", "P.O. Box 12345-00100\nNairobi")
    achieng = await make_member("Achieng", "Odhiambo", number="PTF0101")
    otieno = await make_member("Otieno", "Mwangi", number="PTF0102")
    r = await alice.post(f"/payers/{payer_id}/members", {"member": "ptf0101"})
    assert r.status_code == 303
    r = await alice.post(f"/payers/{payer_id}/members", {"member": "PTF9999"})
    assert r.status_code == 422 and field_error(r.text, "member") == "No member has the number PTF9999"
    assert field_value(r.text, "member") == "PTF9999"
    # From the member's page: its payer box offers the payers, and links.
    box = await alice.get(f"/members/{otieno}/payer", htmx=True)
    assert "Acme Logistics Ltd" in box.text and 'data-testid="choose-payer"' in box.text
    r = await alice.post(f"/members/{otieno}/payer", {"payer": str(payer_id)})
    assert r.status_code == 303 and r.headers["location"] == f"/members/{otieno}"
    box = await alice.get(f"/members/{otieno}/payer", htmx=True)
    assert 'data-testid="unlink-payer"' in box.text
    assert await PayerMember.count() == 2

    a = await invoice_due(achieng, 3000, today() - timedelta(days=10))
    b = await invoice_due(otieno, 8000, today() - timedelta(days=2))
    page = await alice.get(f"/invoices/{a['id']}")
    assert 'data-testid="bill-to"' in page.text and "P051234567X" in page.text
    ctx = await invoice_context(a["id"])
    assert (ctx["invoice"]["bill_to"]["name"], ctx["invoice"]["bill_to"]["kra_pin"]) == ("Acme Logistics Ltd", "P051234567X")
    assert ctx["invoice"]["member"]["name"] == "Achieng Odhiambo"

    listing = await alice.get("/payers")
    assert "Acme Logistics Ltd" in listing.text and "KES 11,000" in listing.text

    r = await alice.post(f"/payers/{payer_id}/payments", {"method": "bank", "amount": "5000", "reference": "",
                                                          "idempotency_key": "k-1"})
    assert r.status_code == 422 and field_error(r.text, "reference") == "Enter the bank reference"
    assert field_value(r.text, "amount") == "5000"
    r = await alice.post(f"/payers/{payer_id}/payments", {"method": "bank", "amount": "5000", "reference": "EQ-1",
                                                          "idempotency_key": "k-1"})
    assert r.status_code == 303
    payment_id = int(r.headers["location"].rsplit("/", 1)[1])
    assert ((await invoice(a["id"]))["status"], (await invoice(b["id"]))["paid"]) == ("paid", D("2000.00"))
    detail = await alice.get(f"/payments/{payment_id}")
    assert detail.status_code == 200 and 'data-testid="payment-payer"' in detail.text
    receipt = await receipt_context(payment_id)
    assert receipt["receipt"]["member"]["name"] == "Acme Logistics Ltd"
    assert [s["description"] for s in receipt["receipt"]["settled"]] == [
        "Monthly membership (Achieng Odhiambo)", "Monthly membership (Otieno Mwangi)"]
    assert receipt["receipt"]["balance_owed"] == D("6000.00")
    from portal.documents.render import render_html, render_pdf_sync
    from tests.documents.test_pdfs import save_preview
    save_preview("receipt-payer", render_pdf_sync("receipt", receipt))
    slip = render_html("receipt_80mm", receipt)
    assert "Payer" in slip and "Acme Logistics Ltd" in slip and "Member no." not in slip
    # A refund of it is refused with words, not a 500.
    r = await bob.post(f"/payments/{payment_id}/refund", {"amount": "100", "reason": "asked for it back"})
    assert r.status_code == 422 and 'data-testid="payer-refund-note"' in r.text

    statement = await alice.get(f"/payers/{payer_id}/statement")
    assert statement.status_code == 200 and "KES 6,000" in statement.text
    st = await payer_statement_context(payer_id, today())
    assert (st["payer_statement"]["total"], st["payer_statement"]["paid"], st["payer_statement"]["balance"]) == (
        D("11000.00"), D("5000.00"), D("6000.00"))

    r = await alice.post(f"/payers/{payer_id}/edit", {**COMPANY, "kra_pin": "12345"})
    assert r.status_code == 422 and field_value(r.text, "kra_pin") == "12345"
    r = await alice.post(f"/payers/{payer_id}/edit", {**COMPANY, "name": "Acme Group Ltd"})
    assert r.status_code == 303
    # The invoice issued before keeps the name it was issued with.
    assert (await invoice_context(a["id"]))["invoice"]["bill_to"]["name"] == "Acme Logistics Ltd"
    r = await alice.post(f"/payers/{payer_id}/members/{achieng}/unlink", {})
    assert r.status_code == 303 and await PayerMember.count() == 1
    assert await AuditLog.count().where(AuditLog.action.like("payer.%")) >= 5
    await assert_books_agree()


async def test_unknown_payers_and_links_are_404(alice):
    assert (await alice.get("/payers/999")).status_code == 404
    assert (await alice.get("/payers/999/statement")).status_code == 404
    assert (await alice.post("/payers/999/members/1/unlink", {})).status_code == 404
    assert (await alice.post("/payers/999/payments", {"method": "cash", "amount": "10"})).status_code == 404
    member = await make_member()
    assert (await alice.post(f"/members/{member}/payer", {"payer": "999"})).status_code == 404
    assert (await alice.post(f"/members/{member}/payer", {"payer": "abc"})).status_code == 303


# session, payer, statement rows, the PDF's version, the stored PDF looked up (asking the worker for it is the queue's, not a query)
STATEMENT_QUERIES = 5


async def _count(client, path: str) -> int:
    r = await client.get(path)
    assert r.status_code == 200, r.text[:300]
    return int(r.headers["x-query-count"])


@pytest.mark.parametrize("members", [2, 25])
async def test_payer_pages_cost_a_fixed_number_of_queries(alice, members):
    acme = await company()
    for n in range(members):
        m = await make_member(f"Staff{n}", "Acme")
        await link(acme, m)
        await invoice_for(m, 3000)
    for n in range(members):
        await company(name=f"Other {n} Ltd")
    # session, the page of payers (members counted and what each owes in the same query)
    assert await _count(alice, "/payers") == 2
    assert await _count(alice, "/payers?q=acme") == 2
    # session, payer, open invoices, members, payments, desks
    assert await _count(alice, f"/payers/{acme}") == 6
    # session, payer, statement rows, the PDF's version, the stored PDF looked up (+ the job asked for)
    assert await _count(alice, f"/payers/{acme}/statement") == STATEMENT_QUERIES
    # session, the member's payer
    m = (await PayerMember.select(PayerMember.member).first())["member"]
    assert await _count(alice, f"/members/{m}/payer") == 2


async def test_the_payer_statement_pdf_lists_every_member_invoice_with_totals(db):
    """Acme: Achieng 3,000 (paid by Acme's 3,000 today), Otieno 8,000 open: the statement lists
    both (the paid one is recent), invoiced 3,000 + 8,000 = 11,000, paid 3,000, due 8,000."""
    from io import BytesIO

    from pypdf import PdfReader

    from portal.documents.render import render_pdf_sync
    from tests.documents.test_pdfs import save_preview
    from tests.payers.helpers import payer_pays

    acme = await company()
    achieng, otieno = await make_member("Achieng", "Odhiambo"), await make_member("Otieno", "Mwangi")
    await link(acme, achieng)
    await link(acme, otieno)
    await invoice_due(achieng, 3000, today() - timedelta(days=9))
    await invoice_due(otieno, 8000, today())
    await payer_pays(acme, 3000)
    pdf = render_pdf_sync("payer_statement", await payer_statement_context(acme, today()))
    save_preview("payer-statement", pdf)
    text = " ".join(" ".join((p.extract_text() or "") for p in PdfReader(BytesIO(pdf)).pages).split())
    for expected in ("Acme Logistics Ltd", "PIN: P051234567X", "Achieng Odhiambo", "Otieno Mwangi",
                     "Balance due KES 8,000", "Invoiced KES 11,000", "Paid KES 3,000", "Totals 11,000 3,000 8,000"):
        assert expected.lower() in text.lower(), (expected, text)
