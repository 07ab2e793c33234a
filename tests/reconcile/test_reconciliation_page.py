"""The reconciliation page (/reconcile, /reconcile/days/D): the gateway's book against the ledger per
day and channel, every difference settled once with a reason, the day marked reconciled; managers
only, CSRF on every form, a fixed number of queries."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest

from portal.callbacks import dispatch
from portal.callbacks import store as callbacks
from portal.lib.clock import now
from portal.settings import get_settings
from tables.audit import AuditLog
from tables.billing import Payment
from tables.gateway import GatewayRequest
from tables.reconcile import ReconcileDay, ReconcileResolution
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_member
from tests.reconcile.helpers import mpesa_in_ledger
from tests.support.client import PortalClient

HEADER = ("Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,Balance,"
          "Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No.\r\n")


def _when(minutes_ago: int = 60) -> str:
    # Never before the gym's midnight: in its first hour an hour ago is yesterday's page.
    tz = get_settings().tz
    midnight = now().astimezone(tz).replace(hour=0, minute=0, second=1, microsecond=0)
    return max((now() - timedelta(minutes=minutes_ago)).astimezone(tz), midnight).strftime("%Y-%m-%d %H:%M:%S")


def _line(receipt: str, amount: str, account: str, minutes_ago: int = 60) -> str:
    when = _when(minutes_ago)
    return (f'{receipt},{when},{when},Pay Bill from 2547 ***** 149 - JOHN Acc. {account},Completed,"{amount}",,,true,'
            f'Pay Bill Online,2547 ***** 149 - JOHN,,{account}\r\n')


async def _confirmed(receipt: str, amount: str, account: str) -> None:
    """A Paybill confirmation that reached the portal (stored raw, then processed, as the hook does)."""
    body = {"TransactionType": "Pay Bill", "TransID": receipt, "TransTime": "20261207090000", "TransAmount": amount,
            "BusinessShortCode": "174379", "BillRefNumber": account, "MSISDN": "2547 ***** 149", "FirstName": "JOHN"}
    stored = await callbacks.store("daraja", "c2b_confirmation", json.dumps(body).encode(), external_id=receipt)
    assert await dispatch.process(stored.id) == "applied"


async def _import(client: PortalClient, lines: list[str]) -> None:
    r = await client.http.post("/reconcile/mpesa/statements", data={"_csrf_token": await client.csrf_token()},
                               files={"statement": ("statement.csv", (HEADER + "".join(lines)).encode(), "text/csv")})
    assert r.status_code == 303, r.text


def _today() -> str:
    return now().astimezone(get_settings().tz).date().isoformat()


def _cell(html: str, channel: str) -> str:
    return re.search(rf'data-testid="cell-{_today()}-{channel}" data-state="(\w+)"', html).group(1)


def _figures(html: str, channel: str) -> tuple[str, str]:
    g = re.search(rf'data-testid="g-{_today()}-{channel}">([^<]*)<', html).group(1)
    p = re.search(rf'data-testid="p-{_today()}-{channel}">([^<]*)<', html).group(1)
    return g, p


async def _settle(client: PortalClient, key: str, action: str, reason: str, member: str = "", **kw):
    return await client.post(f"/reconcile/days/{_today()}/settle",
                             {"key": key, "action": action, "reason": reason, "member": member}, **kw)


async def test_a_lost_paybill_confirmation_shows_red_then_credited_from_the_page_shows_green(bob):
    """Worked example (KES). Today two members pay the Paybill:
        TLOST00001  3,000, account PTF0101: confirmed, credited                    ledger 3,000 (1)
        TLOST00002  5,000, account "GYM" (a typo): its confirmation was lost
    The statement shows both: gateway 3,000 + 5,000 = 8,000 (2). The import finds no member for
    "GYM" (it waits on Unmatched M-Pesa), so the ledger stays 3,000 (1):
        Paybill cell: gateway 8,000 (2) against ledger 3,000 (1) -> red, 1 difference of 5,000
    The manager credits TLOST00002 to PTF0102 from the day's page, reason "Member's typo":
        ledger 3,000 + 5,000 = 8,000 (2) = gateway 8,000 (2) -> green; PTF0102's 5,000 invoice paid.
    Sending the same form again (a double click) credits nothing more: still 8,000, one resolution.
    """
    first, second = await make_member(number="PTF0101"), await make_member(number="PTF0102")
    await invoice_for(first, 3000)
    await invoice_for(second, 5000)
    await _confirmed("TLOST00001", "3000.00", "PTF0101")
    await _import(bob, [_line("TLOST00001", "3,000.00", "PTF0101"), _line("TLOST00002", "5,000.00", "GYM")])

    month = (await bob.get("/reconcile")).text
    assert _cell(month, "mpesa_paybill") == "red"
    assert _figures(month, "mpesa_paybill") == ("KES 8,000 (2)", "KES 3,000 (1)")
    day = await bob.get(f"/reconcile/days/{_today()}")
    assert day.status_code == 200
    assert day.text.count('data-testid="diff"') == 1 and 'data-key="mpesa:TLOST00002"' in day.text
    assert "not in the ledger" in day.text and "account GYM" in day.text and "1 difference open (KES 5,000)" in day.text

    r = await _settle(bob, "mpesa:TLOST00002", "credit", "Member's typo", "ptf0102")
    assert r.status_code == 303, r.text
    again = await _settle(bob, "mpesa:TLOST00002", "credit", "Member's typo", "ptf0102")
    assert again.status_code == 303 and "nothing+done+again" in again.headers["location"]
    assert await mpesa_in_ledger() == Decimal("8000")
    assert await Payment.count().where(Payment.reference == "TLOST00002") == 1
    assert await ReconcileResolution.count() == 1

    month = (await bob.get("/reconcile")).text
    assert _cell(month, "mpesa_paybill") == "green"
    assert _figures(month, "mpesa_paybill") == ("KES 8,000 (2)", "KES 8,000 (2)")
    day = (await bob.get(f"/reconcile/days/{_today()}")).text
    assert "Credited by bob" in day and "Member&#39;s typo" in day
    audit = await AuditLog.select(AuditLog.reason, AuditLog.details).where(AuditLog.action == "reconcile.credited")
    assert len(audit) == 1 and audit[0]["reason"] == "Member's typo"

    # Mark the day reconciled: who and when, once.
    r = await bob.post(f"/reconcile/days/{_today()}/reconciled", {"note": "All in"})
    assert r.status_code == 303
    r = await bob.post(f"/reconcile/days/{_today()}/reconciled", {"note": "All in"})
    assert "already+reconciled" in r.headers["location"]
    assert await ReconcileDay.count() == 1
    day = (await bob.get(f"/reconcile/days/{_today()}")).text
    assert "Reconciled by <strong>bob</strong>" in day
    month = (await bob.get("/reconcile")).text
    assert re.search(rf'data-testid="reconciled-{_today()}"><span class="badge completed">yes</span> bob', month)
    await assert_books_agree()


async def test_a_line_marked_not_ours_leaves_the_totals_and_the_day_turns_green(bob):
    """Worked example (KES). The statement has TMINE00001 3,000 (PTF0201, confirmed: ledger 3,000)
    and TNOTOURS01 700 for account "KPLC" (someone paid the wrong Paybill number; nobody matches).
        before: gateway 3,000 + 700 = 3,700 (2) against ledger 3,000 (1) -> red
        "not ours", reason "Wrong paybill, payer told": the 700 is left out of the counted total
        after:  gateway 3,700 - 700 = 3,000 (1) against ledger 3,000 (1) -> green; no money moved.
    Marking the day reconciled is refused while it is open (422, the note typed kept)."""
    member = await make_member(number="PTF0201")
    await invoice_for(member, 3000)
    await _confirmed("TMINE00001", "3000.00", "PTF0201")
    await _import(bob, [_line("TMINE00001", "3,000.00", "PTF0201"), _line("TNOTOURS01", "700.00", "KPLC")])
    assert _cell((await bob.get("/reconcile")).text, "mpesa_paybill") == "red"

    refused = await bob.post(f"/reconcile/days/{_today()}/reconciled", {"note": "looks fine"})
    assert refused.status_code == 422 and "1 difference still open" in refused.text and 'value="looks fine"' in refused.text

    r = await _settle(bob, "mpesa:TNOTOURS01", "not_ours", "Wrong paybill, payer told")
    assert r.status_code == 303
    month = (await bob.get("/reconcile")).text
    assert _cell(month, "mpesa_paybill") == "green"
    assert _figures(month, "mpesa_paybill") == ("KES 3,000 (1)", "KES 3,000 (1)")
    assert await mpesa_in_ledger() == Decimal("3000")
    assert await Payment.count() == 1
    assert "Not ours by bob" in (await bob.get(f"/reconcile/days/{_today()}")).text


async def test_refund_credits_the_payer_once_and_asks_mpesa_to_reverse_once(bob, settings):
    """Worked example (KES). TREFUND001 2,500 arrives for account "PTF 0301?" (matches nobody); the
    member PTF0301 owes nothing: it was sent by mistake and goes back.
        before: gateway 2,500 (1), ledger 0 (0) -> red
        refund to PTF0301, reason "Paid twice by mistake": the 2,500 is credited to PTF0301 (it is
        the gym's money until M-Pesa reverses it) and one Daraja reversal of TREFUND001 is asked
        after:  gateway 2,500 (1), ledger 2,500 (1) -> green; the refund is posted when M-Pesa's
        Result comes (portal.payments.mpesa.reversal), as any reversal.
    Two tabs sending it at once: one payment, one reversal request, one resolution."""
    await make_member(number="PTF0301")
    await _import(bob, [_line("TREFUND001", "2,500.00", "PTF 0301?")])
    assert _cell((await bob.get("/reconcile")).text, "mpesa_paybill") == "red"

    results = await asyncio.gather(*[_settle(bob, "mpesa:TREFUND001", "refund", "Paid twice by mistake", "PTF0301")
                                     for _ in range(2)])
    assert sorted(r.status_code for r in results) == [303, 303], [r.text[:300] for r in results]
    payments = await Payment.select(Payment.id, Payment.amount, Payment.status).where(Payment.reference == "TREFUND001")
    assert [(p["amount"], p["status"]) for p in payments] == [(Decimal("2500.00"), "completed")]
    reversals = await GatewayRequest.select(GatewayRequest.status).where(
        (GatewayRequest.kind == "reversal") & (GatewayRequest.payment == payments[0]["id"]))
    assert [r["status"] for r in reversals] == ["requested"]
    assert await ReconcileResolution.count() == 1
    assert _cell((await bob.get("/reconcile")).text, "mpesa_paybill") == "green"
    assert await AuditLog.count().where(AuditLog.action == "reconcile.refunded") == 1
    await assert_books_agree()


async def test_bad_input_keeps_what_was_typed_and_says_what_is_wrong(bob):
    await _import(bob, [_line("TBAD000001", "1,000.00", "NOBODY")])
    r = await _settle(bob, "mpesa:TBAD000001", "credit", "", "PTF9999")
    assert r.status_code == 422 and 'data-testid="error-reason">Give the reason' in r.text and 'value="PTF9999"' in r.text
    r = await _settle(bob, "mpesa:TBAD000001", "credit", "Found him", "PTF9999")
    assert r.status_code == 422 and "No member has the number PTF9999" in r.text and 'value="Found him"' in r.text
    r = await _settle(bob, "mpesa:NOSUCH", "not_ours", "x")
    assert r.status_code == 422
    for path in ("/reconcile?month=2026-13", "/reconcile?month=%00", "/reconcile?month=0001-01", "/reconcile/days/2026-02-30",
                 "/reconcile/days/0001-01-01", "/reconcile/days/9999-12-31", "/reconcile/days/x"):
        assert (await bob.get(path)).status_code in (200, 400, 404)
    assert await ReconcileResolution.count() == 0 and await Payment.count() == 0


async def test_front_desk_is_refused_and_a_post_without_csrf_does_nothing(alice, bob):
    await _import(bob, [_line("TCSRF00001", "1,000.00", "NOBODY")])
    assert (await alice.get("/reconcile")).status_code == 403
    assert (await alice.get(f"/reconcile/days/{_today()}")).status_code == 403
    assert (await _settle(alice, "mpesa:TCSRF00001", "not_ours", "x")).status_code == 403
    assert (await alice.post(f"/reconcile/days/{_today()}/reconciled", {})).status_code == 403
    assert (await _settle(bob, "mpesa:TCSRF00001", "not_ours", "x", csrf=False)).status_code == 403
    assert (await bob.post(f"/reconcile/days/{_today()}/reconciled", {}, csrf=False)).status_code == 403
    assert await ReconcileResolution.count() == 0 and await ReconcileDay.count() == 0


@pytest.mark.parametrize("lines", [2, 80])
async def test_the_pages_take_a_fixed_number_of_queries(bob, lines):
    """Month: session, the cells, the reconciled days. Day: the same, plus the differences."""
    await _import(bob, [_line(f"TQC{i:07d}", "100.00", "NOBODY", minutes_ago=60 + i % 30) for i in range(lines)])
    month = await bob.get("/reconcile")
    day = await bob.get(f"/reconcile/days/{_today()}")
    assert day.text.count('data-testid="diff"') == lines
    assert (month.headers["X-Query-Count"], day.headers["X-Query-Count"]) == (MONTH_QUERIES, DAY_QUERIES)


MONTH_QUERIES, DAY_QUERIES = "3", "4"
