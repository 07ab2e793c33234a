"""Settling a difference counts everywhere the money is shown, once:

- "Not ours" on the reconciliation day page takes the payment off Unmatched M-Pesa (and its badge),
  and Unmatched M-Pesa's own "Not ours" is the same resolution on the day page (one rule:
  portal.payments.mpesa.c2b.UNMATCHED_WHERE reads the resolution the day page writes);
- a large refund from the day page asks to be confirmed, as the payment page's refund does;
- a card charge with no payment of ours can be credited to a member or refunded, once."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal

from portal.lib.clock import today
from portal.reconcile import book
from tables.audit import AuditLog
from tables.billing import Payment
from tables.gateway import GatewayCallback, GatewayRequest, StaffAlert
from tables.reconcile import ReconcileResolution
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_member
from tests.reconcile.helpers import mpesa_in_ledger
from tests.reconcile.test_reconciliation_page import _cell, _figures, _import, _line, _today


async def _settle(client, key: str, action: str, reason: str, member: str = "", confirmed: str | None = None):
    data = {"key": key, "action": action, "reason": reason, "member": member}
    if confirmed is not None:
        data["confirmed"] = confirmed
    return await client.post(f"/reconcile/days/{_today()}/settle", data)


async def _unmatched(client) -> str:
    page = await client.get("/mpesa/unmatched")
    assert page.status_code == 200
    return page.text


async def _badge(client) -> str:
    return re.sub(r"<[^>]+>", "", (await client.get("/mpesa/unmatched/count")).text).strip()


async def _callback(receipt: str) -> int:
    row = await GatewayCallback.select(GatewayCallback.id).where(GatewayCallback.external_id == receipt).first()
    return row["id"]


async def test_not_ours_on_the_day_page_takes_it_off_unmatched_mpesa(bob):
    """Worked example (KES). The statement has TWRONG0001 700 for account "KPLC" (someone paid the
    wrong Paybill) and TMINE00002 1,000 for "NOBODY": both wait on Unmatched M-Pesa (badge 2).
    "Not ours" on the day page for TWRONG0001: the day counts gateway 1,000 (1), Unmatched M-Pesa
    lists only TMINE00002 (badge 1), and Match and renew on TWRONG0001 from a page left open is
    refused: the 700 is never both left out and credited."""
    await make_member(number="PTF0401")
    await _import(bob, [_line("TWRONG0001", "700.00", "KPLC"), _line("TMINE00002", "1,000.00", "NOBODY")])
    listed = await _unmatched(bob)
    assert 'data-trans-id="TWRONG0001"' in listed and 'data-trans-id="TMINE00002"' in listed
    assert await _badge(bob) == "2"

    r = await _settle(bob, "mpesa:TWRONG0001", "not_ours", "Wrong paybill, payer told")
    assert r.status_code == 303, r.text

    listed = await _unmatched(bob)
    assert 'data-trans-id="TWRONG0001"' not in listed and 'data-trans-id="TMINE00002"' in listed
    assert await _badge(bob) == "1"
    assert _figures((await bob.get("/reconcile")).text, "mpesa_paybill") == ("KES 1,000 (1)", "KES 0 (0)")
    member = (await Payment.raw("SELECT id FROM member WHERE member_number = 'PTF0401'"))[0]["id"]
    stale = await bob.post(f"/mpesa/unmatched/{await _callback('TWRONG0001')}/match", {"member_id": str(member)})
    assert stale.status_code == 422 and "reconciliation page" in stale.text
    assert await Payment.count() == 0 and await mpesa_in_ledger() == Decimal("0")


async def test_not_ours_on_unmatched_mpesa_is_settled_on_the_day_page(bob, alice):
    """The other way round (KES). TSTRAY0001 500 for account "SAFCOM" waits on Unmatched M-Pesa; the
    day page shows gateway 500 (1) against ledger 0 (0), red. The manager presses "Not ours" on
    Unmatched M-Pesa, twice (a double click): one resolution, audited; the list is empty; the day
    page shows it settled "Not ours by bob" and the Paybill cell green, gateway 0 (0). Front desk
    sees no such button and is refused the post."""
    await _import(bob, [_line("TSTRAY0001", "500.00", "SAFCOM")])
    assert _cell((await bob.get("/reconcile")).text, "mpesa_paybill") == "red"
    callback = await _callback("TSTRAY0001")
    assert 'data-testid="not-ours"' in await _unmatched(bob)
    assert 'data-testid="not-ours"' not in await _unmatched(alice)
    assert (await alice.post(f"/mpesa/unmatched/{callback}/not-ours", {"reason": "x"})).status_code == 403
    refused = await bob.post(f"/mpesa/unmatched/{callback}/not-ours", {"reason": " "})
    assert refused.status_code == 422 and "Give the reason" in refused.text

    results = await asyncio.gather(*[bob.post(f"/mpesa/unmatched/{callback}/not-ours",
                                              {"reason": "Paid the wrong Paybill"}) for _ in range(2)])
    assert [r.status_code for r in results] == [303, 303]
    assert sorted("already" in r.headers["location"] for r in results) == [False, True]
    [row] = await ReconcileResolution.select()
    assert (row["key"], row["action"], row["amount"], row["day"].isoformat()) == (
        "mpesa:TSTRAY0001", "not_ours", Decimal("500.00"), _today())
    assert await AuditLog.count().where(AuditLog.action == "reconcile.not_ours") == 1

    first = next(r for r in results if "already" not in r.headers["location"])
    listed = (await bob.get(first.headers["location"])).text
    assert 'data-testid="unmatched-empty"' in listed and "TSTRAY0001 marked not ours" in listed
    month = (await bob.get("/reconcile")).text
    assert _cell(month, "mpesa_paybill") == "green"
    assert _figures(month, "mpesa_paybill") == ("KES 0 (0)", "KES 0 (0)")
    day = (await bob.get(f"/reconcile/days/{_today()}")).text
    assert "Not ours by bob" in day and "Paid the wrong Paybill" in day
    # The day page's form for it is gone; sending it anyway finds it settled.
    again = await _settle(bob, "mpesa:TSTRAY0001", "not_ours", "again")
    assert again.status_code == 303 and "nothing+done+again" in again.headers["location"]
    assert await ReconcileResolution.count() == 1
    assert await StaffAlert.count().where((StaffAlert.callback == callback) & (StaffAlert.resolved == False)) == 0  # noqa: E712


async def test_match_and_not_ours_at_the_same_moment_do_one_of_them(bob):
    """Two staff at once: one presses Match and renew on Unmatched M-Pesa, a manager "Not ours" on the
    day page. Exactly one wins: either a payment and no "not ours", or "not ours" and no payment."""
    member = await make_member(number="PTF0402")
    await invoice_for(member, 900)
    await _import(bob, [_line("TRACE00001", "900.00", "PTF 402?")])
    callback = await _callback("TRACE00001")
    for _ in range(3):
        await asyncio.gather(bob.post(f"/mpesa/unmatched/{callback}/match", {"member_id": str(member)}),
                             _settle(bob, "mpesa:TRACE00001", "not_ours", "Not for us"))
    paid = await Payment.count().where(Payment.reference == "TRACE00001")
    not_ours = await ReconcileResolution.count().where(ReconcileResolution.action == "not_ours")
    assert (paid, not_ours) in ((1, 0), (0, 1)), (paid, not_ours)
    assert await mpesa_in_ledger() == Decimal(900 * paid)
    await assert_books_agree()


async def test_a_large_refund_from_the_day_page_asks_to_be_confirmed(bob):
    """Worked example (KES, large amounts from 50,000). TBIG000001 60,000 for account "PTF 0403?":
    Refund to PTF0403 from the day page comes back (422) with "KES 60,000 is a large amount: check it
    and confirm", the reason and member kept and a box to tick; nothing was credited, reversed or
    settled. Ticked, it goes: 60,000 credited once, one reversal asked, one resolution."""
    await make_member(number="PTF0403")
    await _import(bob, [_line("TBIG000001", "60,000.00", "PTF 0403?")])

    asked = await _settle(bob, "mpesa:TBIG000001", "refund", "Sent by mistake", "PTF0403")
    assert asked.status_code == 422, asked.text[:300]
    assert "is a large amount: check it and confirm" in asked.text
    assert 'name="confirmed" value="60000.00"' in asked.text and 'value="Sent by mistake"' in asked.text
    assert 'value="PTF0403"' in asked.text
    assert await Payment.count() == 0 and await ReconcileResolution.count() == 0
    assert await GatewayRequest.count().where(GatewayRequest.kind == "reversal") == 0
    # A box ticked for another amount is not this one's.
    wrong = await _settle(bob, "mpesa:TBIG000001", "refund", "Sent by mistake", "PTF0403", confirmed="6000.00")
    assert wrong.status_code == 422 and await Payment.count() == 0

    done = await _settle(bob, "mpesa:TBIG000001", "refund", "Sent by mistake", "PTF0403", confirmed="60000.00")
    assert done.status_code == 303, done.text[:300]
    [payment] = await Payment.select(Payment.id, Payment.amount).where(Payment.reference == "TBIG000001")
    assert payment["amount"] == Decimal("60000.00")
    assert await GatewayRequest.count().where((GatewayRequest.kind == "reversal")
                                              & (GatewayRequest.payment == payment["id"])) == 1
    assert await ReconcileResolution.count() == 1
    await assert_books_agree()


async def test_a_small_refund_is_not_asked_about(bob):
    await make_member(number="PTF0404")
    await _import(bob, [_line("TSMALL0001", "2,000.00", "PTF 0404?")])
    r = await _settle(bob, "mpesa:TSMALL0001", "refund", "Sent by mistake", "PTF0404")
    assert r.status_code == 303 and await ReconcileResolution.count() == 1


async def _card_line(tx_id: str, amount: str, tx_ref: str = "ELSEWHERE-7") -> None:
    """A success on Flutterwave's list of the day (what the cards pass records) with no payment of ours."""
    await book.record([book.Line("card", tx_id, today(), Decimal(amount), "card_pass", tx_ref, "payer@example.com")])


async def test_a_card_charge_we_never_recorded_is_credited_to_a_member_once(bob):
    """Worked example (KES). Flutterwave's list shows charge 7001001 of 4,000 (tx_ref ELSEWHERE-7) that
    no payment of ours has: the card cell shows gateway 4,000 (1) against ledger 0 (0), red, and
    offers "Credit it to a member". Credited to PTF0405 (owing 4,000), sent twice at once (a double
    click): one card payment of 4,000 with Flutterwave's id, PTF0405's invoice paid, one resolution,
    one audit; the cell is green, 4,000 (1) each side."""
    member = await make_member(number="PTF0405")
    invoice = await invoice_for(member, 4000)
    await _card_line("7001001", "4000")
    day = (await bob.get(f"/reconcile/days/{_today()}")).text
    assert _cell(day, "card") == "red" and 'data-key="card:7001001"' in day
    form = day[day.index('data-key="card:7001001"'):]
    assert 'value="credit"' in form and 'value="refund"' in form and 'name="member"' in form

    results = await asyncio.gather(*[_settle(bob, "card:7001001", "credit", "Charged on the terminal link", "PTF0405")
                                     for _ in range(2)])
    assert [r.status_code for r in results] == [303, 303], [r.text[:300] for r in results]
    [payment] = await Payment.select().where(Payment.method == "card")
    assert (payment["member"], payment["amount"], payment["status"], payment["gateway_ref"]) == (
        member, Decimal("4000.00"), "completed", "7001001")
    status = await Payment.raw("SELECT status FROM invoice WHERE id = {}", invoice["id"])
    assert status[0]["status"] == "paid"
    assert await ReconcileResolution.count() == 1
    assert await AuditLog.count().where(AuditLog.action == "reconcile.credited") == 1
    month = (await bob.get("/reconcile")).text
    assert _cell(month, "card") == "green"
    assert _figures(month, "card") == ("KES 4,000 (1)", "KES 4,000 (1)")
    await assert_books_agree()


async def test_a_card_charge_we_never_recorded_is_refunded_once(bob):
    """Worked example (KES). Charge 7002002 of 2,500 on Flutterwave's list, no payment of ours; the
    payer (PTF0406) wants it back. "Refund it" with PTF0406, twice at once: the 2,500 is credited
    to PTF0406 as a card payment with Flutterwave's id (the gym's money until Flutterwave gives it
    back) and one Flutterwave refund of 2,500 is asked; one resolution. The card cell is green."""
    member = await make_member(number="PTF0406")
    await _card_line("7002002", "2500", tx_ref="ELSEWHERE-8")
    results = await asyncio.gather(*[_settle(bob, "card:7002002", "refund", "Charged twice", "PTF0406")
                                     for _ in range(2)])
    assert [r.status_code for r in results] == [303, 303], [r.text[:300] for r in results]
    [payment] = await Payment.select().where(Payment.method == "card")
    assert (payment["member"], payment["amount"], payment["gateway_ref"]) == (member, Decimal("2500.00"), "7002002")
    refunds = await GatewayRequest.select(GatewayRequest.amount).where(
        (GatewayRequest.kind == "refund") & (GatewayRequest.payment == payment["id"]))
    assert [Decimal(r["amount"]) for r in refunds] == [Decimal("2500.00")]
    [row] = await ReconcileResolution.select()
    assert (row["action"], row["payment"]) == ("refunded", payment["id"])
    assert _cell((await bob.get("/reconcile")).text, "card") == "green"
    await assert_books_agree()


async def test_a_card_charge_whose_reference_is_a_payment_of_ours_is_not_credited_again(bob):
    """The cards pass lists a charge whose tx_ref is one of our payments (failed here, the amounts
    differed): crediting it as money we never recorded is refused, the payment is the one to look at."""
    member = await make_member(number="PTF0407")
    await Payment.raw(
        "INSERT INTO payment (member, method, amount, currency, idempotency_key, gateway_request, refunded, status, "
        "created_at, reference, note) VALUES ({}, 'card', 1000, 'KES', 'k-ours', 'PTF-OURS', 0, 'failed', now(), '', '')",
        member)
    await _card_line("7003003", "1200", tx_ref="PTF-OURS")
    r = await _settle(bob, "card:7003003", "credit", "Found it", "PTF0407")
    assert r.status_code == 422 and "A payment of ours has this charge&#39;s reference (PTF-OURS)" in r.text
    assert await Payment.count().where(Payment.status == "completed") == 0 and await ReconcileResolution.count() == 0
