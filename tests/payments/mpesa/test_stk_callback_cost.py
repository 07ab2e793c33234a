"""What one applied M-Pesa STK callback costs, and the receipt number it takes last.

Every query from the callback's arrival to its receipts being requested is counted (as the bench
counts them, tests/bench/test_pages.py), so a query added on the callback path shows here first.
The receipt number (RCP-, gap-free: portal/billing/numbering.py) is taken by the completion's last
statement, so completions at the same moment queue on the counter row for one statement, not for
each other's whole work; the numbers stay unique and without gaps and each payment is credited
once."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import httpx
import pytest

from portal.callbacks import dispatch
from portal.callbacks import store as callbacks
from portal.lib import db as portal_db
from portal.lib.clock import today
from portal.payments import state
from portal.payments.service import complete_payment
from tables.billing import DocumentCounter, Invoice, Payment, PaymentEvent
from tables.gateway import GatewayCallback
from tables.ledger import LedgerEntry
from tests.bench.pages import QueryLog
from tests.billing.helpers import assert_books_agree, invoice_for, pay
from tests.factories import make_member
from tests.payments.mpesa.test_callbacks_exactly_once import in_flight_payment, stk_body

TOKEN = "cost-hook-token-4321"

# Queries for one applied success callback, arrival to receipts requested (29 before the receipt
# number was taken last and the path's repeated reads and writes were folded):
#   store it (its own transaction); lock its row; the checkout's lock; the member and the payment
#   locked; the M-Pesa code's lock; that code paid already?; completed, with its event and its
#   webhook; balances, the entry id and the open invoices (locked); the number and all that
#   carries it (payment, entries, legs, settlement, webhook copy, audit); the callback's outcome
#   (returning the payment to send receipts for); after commit, the receipt message's member.
ONE_CALLBACK = 11
# Paying part of an open invoice adds its allocation, the invoice's new paid amount, the hold
# check and the membership check.
WITH_AN_INVOICE = ONE_CALLBACK + 4


async def test_one_applied_stk_callback_costs_a_pinned_number_of_queries(db, queue, monkeypatch):
    from piccolo.engine import engine_finder

    from portal.app import create_app
    from portal.settings import get_settings

    monkeypatch.setenv("DARAJA_CALLBACK_TOKEN", TOKEN)
    get_settings.cache_clear()
    app = create_app(get_settings(), manage_resources=False)
    alone = await make_member(phone="254713100001")
    owing = await make_member(phone="254713100002")
    inv = await invoice_for(owing, 3000)
    paid_alone = await in_flight_payment(alone, 1000, "ws_CO_COST1")
    paid_owing = await in_flight_payment(owing, 1000, "ws_CO_COST2")
    log = QueryLog(engine_finder())
    counts = []
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            for checkout, receipt in [("ws_CO_COST1", "SCOST00001"), ("ws_CO_COST2", "SCOST00002")]:
                log.active = []
                r = await http.post(f"/hooks/daraja/stk/{TOKEN}", content=stk_body(checkout, 0, 1000, receipt),
                                    headers={"content-type": "application/json"})
                queries, log.active = log.active, None
                assert r.status_code == 200 and r.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
                counts.append((len(queries), [" ".join(q.sql.split())[:90] for q in queries]))
    finally:
        log.remove()
        get_settings.cache_clear()
    assert counts[0][0] == ONE_CALLBACK, counts[0]
    assert counts[1][0] == WITH_AN_INVOICE, counts[1]

    # And what it did is all there, the receipt number in everything that carries it.
    for pid, receipt, credit in [(paid_alone, "SCOST00001", Decimal("1000.00")), (paid_owing, "SCOST00002", Decimal("0.00"))]:
        payment = await Payment.select().where(Payment.id == pid).first()
        number = payment["receipt_number"]
        assert (payment["status"], payment["reference"], payment["flag"], payment["next_check_at"]) == (
            "completed", receipt, "", None)
        assert number.startswith(f"RCP-{today().year}-")
        entries = await LedgerEntry.select(LedgerEntry.kind, LedgerEntry.memo).where(
            LedgerEntry.payment == pid).order_by(LedgerEntry.id)
        assert entries == [{"kind": "payment_received", "memo": f"Receipt {number}"}] + (
            [{"kind": "credit_held", "memo": f"Credit from {number}"}] if credit else [])
        settlement = await PaymentEvent.select(PaymentEvent.details).where(
            (PaymentEvent.payment == pid) & (PaymentEvent.kind == "settlement")).output(load_json=True)
        assert len(settlement) == 1 and settlement[0]["details"]["credit_added"] == str(credit)
        row = await GatewayCallback.select().where(GatewayCallback.external_id == f"ws_CO_COST{1 if credit else 2}").first()
        assert (row["outcome"], row["payment"], row["amount"]) == ("applied", pid, "1000")
    invoice = await Invoice.select().where(Invoice.id == inv["id"]).first()
    assert (invoice["status"], invoice["paid"]) == ("partially_paid", Decimal("1000.00"))
    facts = (await PaymentEvent.select(PaymentEvent.details).where(
        (PaymentEvent.payment == paid_owing) & (PaymentEvent.kind == "settlement")).output(load_json=True))[0]["details"]
    assert (facts["balance_owed"], facts["credit_balance"]) == ("2000.00", "0.00")
    assert facts["settled"] == [{"invoice": inv["id"], "number": inv["number"], "amount": "1000.00"}]
    await assert_books_agree()


async def _waiting_query(exclude: int) -> str | None:
    rows = await Payment.raw(
        "SELECT query FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
        "AND pid <> {}", exclude)
    return rows[0]["query"] if rows else None


async def test_a_completion_waiting_for_the_receipt_number_has_done_all_else_first(db, queue):
    """Two completions at once: the second waits for the counter row only in its last statement,
    the one that takes the number (before, it waited at its first, with all its work still to do)."""
    first, second = await make_member(), await make_member()
    # Cash and M-Pesa: their payment figures are other rows (portal/payments/figures.py), whose
    # locks could make the second wait elsewhere.
    async with portal_db.transaction():
        a, _ = await state.open_payment({"member": first, "method": "cash", "amount": Decimal("1000"),
                                         "currency": "KES", "idempotency_key": "order-1"}, reason="cash taken")
    b = await in_flight_payment(second, 1000, "ws_CO_ORDER2")
    holding, release = asyncio.Event(), asyncio.Event()

    async def complete_and_hold():
        async with portal_db.transaction():
            await complete_payment(a, reason="first")
            holding.set()
            await release.wait()  # the counter row stays locked until this commits

    async def complete():
        async with portal_db.transaction():
            return await complete_payment(b, reason="second")

    held = asyncio.create_task(complete_and_hold())
    await holding.wait()
    me = (await Payment.raw("SELECT pg_backend_pid() AS pid"))[0]["pid"]
    second_task = asyncio.create_task(complete())
    for _ in range(600):  # up to 30 s on a busy machine
        waiting = await _waiting_query(me)
        if waiting:
            break
        await asyncio.sleep(0.05)
    release.set()
    await held
    done = await second_task
    assert waiting and "UPDATE payment SET receipt_number" in waiting, waiting  # (its text is cut at 1 kB)
    numbers = sorted([(await Payment.select().where(Payment.id == a).first())["receipt_number"], done["receipt_number"]])
    year = today().year
    assert numbers == [f"RCP-{year}-000001", f"RCP-{year}-000002"]
    await assert_books_agree()


@pytest.mark.hang_seconds(600)
async def test_concurrent_completions_number_receipts_once_without_gaps(db, queue):
    """Forty STK callbacks (each delivered twice at once) and twenty desk payments at the same time,
    and five completions rolled back after taking their number: every payment is completed and
    credited once, and the receipt numbers are 1 to 60 with none repeated or missing."""
    members = [await make_member(phone=f"2547132{i:05d}") for i in range(70)]
    for m in members[::3]:
        await invoice_for(m, 1500)
    prompts = [(await in_flight_payment(m, 1000, f"ws_CO_GAP{i:03d}"), f"ws_CO_GAP{i:03d}", i)
               for i, m in enumerate(members[:40])]
    doomed = [await in_flight_payment(m, 700, f"ws_CO_DOOM{i}") for i, m in enumerate(members[65:70])]

    async def deliver(checkout: str, i: int) -> str:
        body = stk_body(checkout, 0, 1000, f"SGAP{i:06d}")
        stored = await callbacks.store("daraja", "stk", body, external_id=checkout, dedupe_extra="0")
        return await dispatch.process(stored.id, json.loads(body))

    class RolledBack(Exception):
        pass

    async def complete_then_roll_back(pid: int) -> None:
        with pytest.raises(RolledBack):
            async with portal_db.transaction():
                await complete_payment(pid, reason="rolled back after its number")
                raise RolledBack

    results = await asyncio.gather(
        *[deliver(checkout, i) for _, checkout, i in prompts for _ in range(2)],
        *[pay(m, 500) for m in members[40:60]],
        *[complete_then_roll_back(pid) for pid in doomed])
    assert set(results[:80]) == {"applied"}, results[:80]  # a repeat finds its row applied

    year = today().year
    completed = await Payment.select(Payment.id, Payment.receipt_number).where(Payment.status == "completed")
    assert len(completed) == 60
    assert sorted(p["receipt_number"] for p in completed) == [f"RCP-{year}-{n:06d}" for n in range(1, 61)]
    counter = await DocumentCounter.select().where((DocumentCounter.kind == "RCP") & (DocumentCounter.year == year))
    assert counter[0]["last"] == 60
    assert await Payment.count().where(Payment.id.is_in(doomed) & Payment.receipt_number.is_not_null()) == 0
    for p in completed:
        entries = await LedgerEntry.select(LedgerEntry.memo).where(
            (LedgerEntry.payment == p["id"]) & (LedgerEntry.kind == "payment_received"))
        assert entries == [{"memo": f"Receipt {p['receipt_number']}"}], (p, entries)
        assert await PaymentEvent.count().where((PaymentEvent.payment == p["id"]) & (PaymentEvent.kind == "settlement")) == 1
        assert await PaymentEvent.count().where(
            (PaymentEvent.payment == p["id"]) & (PaymentEvent.new_status == "completed")
            & (PaymentEvent.kind == "status")) == 1
    await assert_books_agree()
