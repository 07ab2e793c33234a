"""The end-of-day close: expected per method from the ledger, cash counted per staff member, a
variance, the day locked against late money, and an admin's reopen with a reason."""

import asyncio
import csv
import io
import itertools
from datetime import timedelta
from decimal import Decimal

from pypdf import PdfReader

from portal.auth import create_staff
from portal.billing import closes
from portal.billing.invoices import lock_member
from portal.documents import store as document_store
from portal.gateways.flutterwave import Verified
from portal.lib import db
from portal.lib.clock import today
from portal.lib.money import Money
from portal.payments.cards import checkout as cards
from portal.payments.mpesa import stk as mpesa
from portal.payments.service import complete_payment, record_desk_payment, refund_payment
from tables.audit import AuditLog
from tables.billing import Payment
from tables.closes import DayClose
from tables.ledger import LedgerEntry
from tests.billing.helpers import invoice_for
from tests.factories import make_location, make_member

_keys = itertools.count(1)


async def _cash(member, amount, staff, location, method="cash") -> int:
    recorded = await record_desk_payment(member_id=member, method=method, amount=Money(Decimal(amount)),
                                         reference="BANK-1" if method == "bank" else "", idempotency_key=f"c{next(_keys)}",
                                         staff_id=staff, location_id=location)
    return recorded.payment["id"]


async def _day(location: int, other: int) -> dict:
    """Westlands today: Faith takes 3,000 cash and refunds 500 of it; Juma takes 1,500 cash; a
    2,000 M-Pesa prompt from the desk; a 1,000 bank transfer; a 2,000 card payment on which
    Flutterwave keeps 28. Karen (another location) takes 700 cash, which is not Westlands' money."""
    faith = await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith", location_id=location)
    juma = await create_staff("juma", "juma-password-1", "front_desk", first_name="Juma", location_id=location)
    member = await make_member()
    await invoice_for(member, 20000)
    first = await _cash(member, 3000, faith, location)
    await refund_payment(first, Money(Decimal("500")), "Overcharged", faith)
    await _cash(member, 1500, juma, location)
    await _cash(member, 1000, juma, location, method="bank")
    await _cash(member, 700, juma, other)
    prompt = await mpesa.start_stk_push(member_id=member, phone="0712345678", amount=Money(Decimal("2000")),
                                        idempotency_key="stk-1", staff_id=juma, location_id=location)
    async with db.transaction():
        await lock_member(member)
        await complete_payment(prompt.payment["id"], reason="M-Pesa QWE123RTY7")
    # A card payment whose hosted checkout was opened (the Flutterwave round trip is tested over
    # HTTP in tests/payments/cards/test_cards.py); here Flutterwave's verified answer is applied.
    card = (await Payment.insert(Payment(member=member, method="card", amount=Decimal("2000"), status="processing",
                                         idempotency_key="card-1", staff=juma, location=location,
                                         gateway_request="ptf-card-1")).returning(*Payment.all_columns()))[0]
    verified = Verified(id=99, tx_ref=card["gateway_request"], status="successful", amount=Money(Decimal("2000")),
                        charged_amount=Money(Decimal("2000")), app_fee=Money(Decimal("28")), currency="KES",
                        card_brand="VISA", card_last4="4246", raw={})
    async with db.transaction():
        await cards.apply_verified(card, verified, source="test")
    return {"faith": faith, "juma": juma, "member": member}


async def test_what_the_ledger_expects_per_method_and_per_staff_member(db):
    westlands, karen = await make_location("WST", "Westlands"), await make_location("KRN", "Karen")
    await _day(westlands, karen)
    e = await closes.expected(westlands, today())
    assert e["methods"] == {"cash": "4000.00", "mpesa": "2000.00", "card": "1972.00", "bank": "1000.00", "cheque": "0"}
    assert e["card"] == {"gross": "2000.00", "fees": "28.00", "net": "1972.00"}
    assert [(c["name"], c["expected"]) for c in e["cash_by_staff"]] == [("Faith", "2500.00"), ("Juma", "1500.00")]
    assert e["total"] == "8972.00" and e["moved_in"] == "0" and e["online"] == {}
    # A Paybill payment reaches no desk: shown beside the close, in no location's totals.
    paybill = await mpesa.start_stk_push(member_id=(await make_member("Online", "Payer")), phone="0712345679",
                                         amount=Money(Decimal("1500")), idempotency_key="online-1")
    async with db.transaction():
        await lock_member(paybill.payment["member"])
        await complete_payment(paybill.payment["id"], reason="M-Pesa QWE123RTY8")
    e = await closes.expected(westlands, today())
    assert e["online"] == {"mpesa": "1500.00"} and e["online_total"] == "1500.00" and e["total"] == "8972.00"
    assert (await closes.expected(karen, today()))["methods"]["cash"] == "700.00"


async def test_a_manager_closes_the_day_with_a_cash_variance_and_late_money_goes_to_the_next_day(bob):
    westlands, karen = await make_location("WST", "Westlands"), await make_location("KRN", "Karen")
    people = await _day(westlands, karen)
    page = await bob.get(f"/close?location={westlands}")
    assert page.status_code == 200 and 'data-testid="expected-cash">KES 4,000<' in page.text
    assert page.headers["x-query-count"] == "5"
    faith, juma = str(people["faith"]), str(people["juma"])
    # Notes and coins that do not add up to the typed amount: refused, what was typed kept.
    wrong = await bob.post("/close", {"location": westlands, "date": today().isoformat(), f"counted_{faith}": "2600",
                                      f"d_{faith}_1000": "2", f"d_{faith}_500": "1", f"counted_{juma}": "1400"})
    assert wrong.status_code == 422 and "add up to KES 2,500, not KES 2,600" in wrong.text and 'value="1400"' in wrong.text
    assert await DayClose.count() == 0
    r = await bob.post("/close", {"location": westlands, "date": today().isoformat(), f"d_{faith}_1000": "2",
                                  f"d_{faith}_500": "1", f"counted_{juma}": "1400", "note": "Juma short by 100"})
    assert r.status_code == 303
    close = await closes.close_for(westlands, today())
    assert (close["cash_expected"], close["cash_counted"], close["variance"]) == (
        Decimal("4000.00"), Decimal("3900.00"), Decimal("-100.00"))
    assert [(line["name"], line["variance"]) for line in close["counted"]["cash_by_staff"]] == [
        ("Faith", "0.00"), ("Juma", "-100.00")]
    shown = await bob.get(f"/close?location={westlands}")
    assert 'data-testid="variance-total">-KES 100<' in shown.text or 'data-testid="variance-total">KES -100<' in shown.text
    assert shown.headers["x-query-count"] == "6"
    # The close history under it, and its CSV.
    assert shown.text.count('data-testid="history-row"') == 1
    assert f'href="/close.csv?location={westlands}"' in shown.text
    export = await bob.get(f"/close.csv?location={westlands}")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["business_date"], r["location"], r["status"], r["cash_expected"], r["cash_counted"], r["variance"],
             r["note"], r["closed_by"], r["version"]) for r in rows] == [
        (today().isoformat(), "Westlands", "closed", "4000.00", "3900.00", "-100.00", "Juma short by 100", "Bob", "1")]
    assert rows[0]["expected_total"] == close["expected"]["total"] == "8972.00"  # every method, not cash alone
    assert len(list(csv.DictReader(io.StringIO((await bob.get(f"/close.csv?location={karen}")).text)))) == 0

    # The report PDF.
    subject = f"day_close:{close['id']}:v1"
    await document_store.render_and_store("day_close", subject)
    _, pdf = await document_store.content("day_close", subject)
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "DAY CLOSE" in text and "Westlands" in text and "Short" in text and "Juma" in text and "-KES 100" in text

    # Money after the close is not Westlands' today any more: it counts tomorrow, with the reason.
    late = await _cash(people["member"], 800, people["faith"], westlands)
    entry = await LedgerEntry.select().where((LedgerEntry.payment == late) & (LedgerEntry.kind == "payment_received")).first()
    assert entry["business_date"] == today() + timedelta(days=1) and "was closed at this location" in entry["memo"]
    assert (await closes.expected(westlands, today()))["methods"]["cash"] == "4000.00"
    tomorrow = await closes.expected(westlands, today() + timedelta(days=1))
    assert tomorrow["methods"]["cash"] == "800.00" and tomorrow["moved_in"] == "800.00"
    # Karen's day is still open: its money stays on today.
    other = await _cash(people["member"], 100, people["juma"], karen)
    assert (await LedgerEntry.select(LedgerEntry.business_date).where(LedgerEntry.payment == other).first())[
        "business_date"] == today()
    again = await bob.post("/close", {"location": westlands, "date": today().isoformat()})
    assert again.status_code == 422 and "already closed" in again.text


async def test_only_an_admin_reopens_a_day_with_a_reason_and_it_can_be_closed_again(bob, carol):
    westlands, karen = await make_location("WST", "Westlands"), await make_location("KRN", "Karen")
    people = await _day(westlands, karen)
    counts = {f"counted_{people['faith']}": "2500", f"counted_{people['juma']}": "1500"}
    assert (await bob.post("/close", {"location": westlands, "date": today().isoformat(), **counts})).status_code == 303
    close = await closes.close_for(westlands, today())
    assert (await bob.post(f"/close/{close['id']}/reopen", {"reason": "Miscounted"})).status_code == 403
    no_reason = await carol.post(f"/close/{close['id']}/reopen", {"reason": " "})
    assert no_reason.status_code == 422 and "Give a reason" in no_reason.text
    assert (await carol.post(f"/close/{close['id']}/reopen", {"reason": "Juma found 100 in the drawer"})).status_code == 303
    reopened = await closes.close_for(westlands, today())
    assert reopened["status"] == "reopened" and reopened["reopen_reason"] == "Juma found 100 in the drawer"
    # Open again: money posted now counts today.
    late = await _cash(people["member"], 300, people["juma"], westlands)
    assert (await LedgerEntry.select(LedgerEntry.business_date).where(LedgerEntry.payment == late).first())[
        "business_date"] == today()
    counts[f"counted_{people['juma']}"] = "1800"
    assert (await bob.post("/close", {"location": westlands, "date": today().isoformat(), **counts})).status_code == 303
    final = await closes.close_for(westlands, today())
    assert (final["status"], final["version"], final["variance"]) == ("closed", 2, Decimal("0.00"))
    actions = [r["action"] for r in await AuditLog.select(AuditLog.action).where(AuditLog.entity == "day_close").order_by(AuditLog.id)]
    assert actions == ["day.closed", "day.reopened", "day.closed"]


async def test_a_close_and_a_payment_at_the_same_moment_never_lose_the_payment(db):
    westlands = await make_location("WST", "Westlands")
    desk = await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith", location_id=westlands)
    member = await make_member()
    await invoice_for(member, 100000)
    await _cash(member, 1000, desk, westlands)
    for attempt in range(5):
        day_close = await closes.close_for(westlands, today())
        if day_close:
            await closes.reopen_day(day_close["id"], "again", desk)
        e = await closes.expected(westlands, today())
        counts = [closes.CashCount(c["staff"], Money(Decimal(c["expected"])), {}) for c in e["cash_by_staff"]]
        closed, paid = await asyncio.gather(closes.close_day(westlands, today(), counts, "", desk),
                                            _cash(member, 100 + attempt, desk, westlands), return_exceptions=True)
        assert not isinstance(closed, Exception), closed
        assert not isinstance(paid, Exception), paid
        # Whatever the order, the snapshot is exactly what the ledger holds for today (a payment
        # that came second went to tomorrow), and the payment is in one of the two days.
        assert Decimal(closed["expected"]["methods"]["cash"]) == Decimal((await closes.expected(westlands, today()))["methods"]["cash"])
        entry = await LedgerEntry.select(LedgerEntry.business_date).where(
            (LedgerEntry.payment == paid) & (LedgerEntry.kind == "payment_received")).first()
        assert entry["business_date"] in (today(), today() + timedelta(days=1))
