"""The M-Pesa statement import: every line matched by receipt code, money the portal never heard of
credited once, reversals shown, ledger payments with no line listed, the same file twice changing
nothing, a malformed file refused with its line and column."""

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from portal.callbacks import dispatch
from portal.callbacks import store as callbacks
from portal.gateways.daraja import DarajaClient
from portal.lib.clock import today
from portal.reconcile import statements
from portal.reconcile.sources import STATEMENT, statement_body
from portal.reconcile.statement import StatementError
from tables.billing import Payment
from tables.gateway import GatewayCallback
from tables.ledger import LedgerLeg
from tables.reconcile import MpesaStatement, MpesaStatementLine
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_member
from tests.reconcile.helpers import (
    confirmation_row,
    lose_next,
    mpesa_in_ledger,
    number,
    pay_paybill,
    register,
)
from tests.support.live import PHONES, wait_for_status


async def _export(live, days: int = 0) -> bytes:
    end = today()
    async with httpx.AsyncClient(base_url=live.sandbox) as http:
        r = await http.get("/_sandbox/daraja/statement.csv",
                           params={"start": (end - timedelta(days=days)).isoformat(), "end": end.isoformat()})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
    return r.content


async def _reverse_in_sandbox(live, receipt: str, amount: int) -> str:
    async with DarajaClient(live.settings) as client:
        await client.reversal(receipt, amount, "http://127.0.0.1:9/result", "http://127.0.0.1:9/timeout",
                              "Paid twice by mistake")
    async with httpx.AsyncClient(base_url=live.sandbox) as http:
        for _ in range(200):
            items = (await http.get("/_sandbox/daraja/ledger")).json()["items"]
            entry = next(i for i in items if i["receipt"] == receipt)
            if entry["reversed_by"]:
                return entry["reversed_by"]
            await asyncio.sleep(0.05)
    raise AssertionError("the sandbox never reversed it")


async def _stk_to_the_paybill(alice, member: int) -> dict:
    r = await alice.post(f"/members/{member}/mpesa", {"phone": PHONES["success"], "amount": "3000",
                                                      "idempotency_key": f"k-stmt-{member}"})
    assert r.status_code == 303, r.text
    paid = await wait_for_status(int(r.headers["location"].rsplit("/", 1)[1]), {"completed"})
    row = await confirmation_row(paid["reference"], waiting_ok=True)  # the C2B copy of the same money
    if row["outcome"] == "stored":  # it came before the STK callback: the sweeper's turn
        assert await dispatch.process(row["id"]) == "duplicate"
    return paid


async def test_a_statement_with_a_payment_never_heard_of_one_told_twice_and_a_reversal(live, worker, alice):
    """Worked example (KES). Members 1, 2, 3 each owe one invoice: 3,000, 8,000, 3,000.
        A  member 1 pays 3,000 to the Paybill; its confirmation arrives                 -> credited at once
        B  member 2 pays 8,000 to the Paybill; the confirmation is lost                 -> the portal never hears
        C  member 3 pays 3,000 by STK to the Paybill: M-Pesa tells it twice (the STK
           callback and a C2B confirmation of the same receipt)                          -> credited once
        D  M-Pesa reverses A (3,000 out, Linked Transaction ID = A)
        Z  a confirmation with a receipt M-Pesa's book does not have (3,000)           -> in the ledger only
    Ledger M-Pesa before the import: A 3,000 + C 3,000 + Z 3,000 = 9,000.
    The statement: Paid In 3,000 + 8,000 + 3,000 = 14,000, Withdrawn 3,000 (D).
    Import: A matched, B credited (8,000: ledger 17,000), C matched (not credited again), D reversal of
    A's payment, Z listed as in the ledger but not on the statement. Importing again: the same
    statement, nothing changed (17,000). Forcing C through the statement's crediting path anyway:
    "duplicate", still 17,000."""
    await register(live)
    m1, m2, m3 = [await make_member(phone=f"25471400000{i}") for i in range(3)]
    for m, amount in ((m1, 3000), (m2, 8000), (m3, 3000)):
        await invoice_for(m, amount)
    a = await pay_paybill(live, 3000, await number(m1))
    assert (await confirmation_row(a))["outcome"] == "applied"
    await lose_next(live, 1)
    b = await pay_paybill(live, 8000, await number(m2))
    c = (await _stk_to_the_paybill(alice, m3))["reference"]
    d = await _reverse_in_sandbox(live, a, 3000)
    async with httpx.AsyncClient() as http:  # Z: a confirmation the portal got that M-Pesa's book lacks
        z_body = {"TransactionType": "Pay Bill", "TransID": "TZZ0000001", "TransTime": "20261207101500",
                  "TransAmount": "3000.00", "BusinessShortCode": live.settings.daraja_shortcode,
                  "BillRefNumber": await number(m1), "InvoiceNumber": "", "OrgAccountBalance": "",
                  "ThirdPartyTransID": "", "MSISDN": "2547 ***** 149", "FirstName": "JOHN", "MiddleName": "",
                  "LastName": ""}
        r = await http.post(live.hook("c2b/confirmation"), content=json.dumps(z_body),
                            headers={"content-type": "application/json"})
        assert r.status_code == 200
    assert await mpesa_in_ledger() == Decimal("9000")
    assert await Payment.count().where(Payment.reference == c) == 1

    data = await _export(live)
    imported = await statements.import_statement(data, filename="ORG_statement.csv")
    assert imported.new and imported.summary == {"credited": 1, "matched": 2, "reversal": 1}
    assert await mpesa_in_ledger() == Decimal("17000")
    s = await MpesaStatement.select().where(MpesaStatement.id == imported.statement_id).first()
    assert (s["line_count"], s["paid_in"], s["withdrawn"]) == (4, Decimal("14000.00"), Decimal("3000.00"))
    lines = {(r["receipt"], r["direction"]): r for r in await MpesaStatementLine.select()}
    pay = {p["reference"]: p for p in await Payment.select().where(Payment.method == "mpesa")}
    assert lines[(a, "in")]["outcome"] == "matched" and lines[(a, "in")]["payment"] == pay[a]["id"]
    assert lines[(b, "in")]["outcome"] == "credited" and lines[(b, "in")]["payment"] == pay[b]["id"]
    assert pay[b]["member"] == m2 and pay[b]["amount"] == Decimal("8000.00") and pay[b]["status"] == "completed"
    assert lines[(c, "in")]["outcome"] == "matched" and lines[(c, "in")]["payment"] == pay[c]["id"]
    assert lines[(d, "out")]["outcome"] == "reversal" and lines[(d, "out")]["linked_receipt"] == a
    assert lines[(d, "out")]["payment"] == pay[a]["id"]
    stored = await GatewayCallback.select().where((GatewayCallback.kind == STATEMENT))
    assert [(r["external_id"], r["outcome"], r["payment"]) for r in stored] == [(b, "applied", pay[b]["id"])]
    row = await statements.statement(imported.statement_id)
    missing = await statements.missing_payments(row)
    assert [m["reference"] for m in missing] == ["TZZ0000001"]

    again = await statements.import_statement(data, filename="ORG_statement (1).csv")
    assert (again.statement_id, again.new) == (imported.statement_id, False)
    assert await MpesaStatement.count() == 1 and await MpesaStatementLine.count() == 4
    assert await mpesa_in_ledger() == Decimal("17000")

    # C is credited once because it is deduplicated, not because nobody tried: through the
    # statement's own crediting path it is a duplicate.
    line_c = next(line for line in (await _lines(data)) if line.receipt == c)
    forced = await callbacks.store("daraja", STATEMENT, statement_body(line_c.line_no, line_c.cells), external_id=c)
    assert await dispatch.process(forced.id) == "duplicate"
    assert await Payment.count().where(Payment.reference == c) == 1
    legs = await LedgerLeg.raw("SELECT count(*) AS n FROM ledger_leg l JOIN ledger_entry e ON e.id = l.entry "
                               "WHERE l.account = 'mpesa' AND l.amount > 0 AND e.payment = {}", pay[c]["id"])
    assert legs[0]["n"] == 1
    assert await mpesa_in_ledger() == Decimal("17000")
    await assert_books_agree()


async def _lines(data: bytes):
    from portal.reconcile.statement import read_statement
    from portal.settings import get_settings

    return read_statement(data, get_settings().tz).lines


HEADER = ("Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,Balance,"
          "Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No.\r\n")
GOOD = "TKL0ABC123,2026-12-07 09:15:02,2026-12-07 09:15:02,Pay Bill,Completed,\"3,000.00\",,\"3,000.00\",true,Pay Bill Online,254712345678 - JOHN,,PTF0001\r\n"


@pytest.mark.parametrize("bad, line, column, words", [
    (GOOD.replace('"3,000.00",,', '"3,0x0.00",,', 1), 4, 6, "is not an amount"),
    (GOOD.replace("2026-12-07 09:15:02,2026", "07 Dec 2026,2026", 1), 4, 2, "not a date and time"),
    (GOOD.replace("TKL0ABC123", "TKL-0ABC", 1), 4, 1, "not an M-Pesa receipt code"),
    (GOOD + GOOD, 5, 1, "already on line 4"),
    (GOOD.replace(",,\"3,000.00\",true", ",\"-3,000.00\",\"3,000.00\",true", 1), 4, 7, "not both"),
    (GOOD.rsplit(",", 2)[0] + "\r\n", 4, 12, "columns"),
])
async def test_a_malformed_file_is_refused_with_line_and_column_and_nothing_is_kept(db, bad, line, column, words):
    """Line 1 is the preamble, line 2 the header, line 3 a good line (whose account is a member's:
    it would be credited), line 4 the bad one. Nothing is kept, the good line's credit included."""
    await make_member(number="PTF0001")  # the good line's account: it would be credited
    data = ("Organisation Name:,Gym\r\n" + HEADER + GOOD.replace("TKL0ABC123", "TKL0GOOD01") + bad).encode()
    with pytest.raises(StatementError) as refused:
        await statements.import_statement(data)
    assert (refused.value.line, refused.value.column) == (line, column), str(refused.value)
    assert words in str(refused.value) and str(refused.value).startswith(f"Line {line}, column {column}")
    assert await MpesaStatement.count() == 0 and await MpesaStatementLine.count() == 0
    assert await GatewayCallback.count() == 0 and await Payment.count() == 0


async def test_a_file_without_the_header_or_lines_is_refused(db):
    with pytest.raises(StatementError, match="no header line"):
        await statements.import_statement(b"Date,Amount\r\n2026-12-07,3000\r\n")
    with pytest.raises(StatementError, match="no column 'Paid In'"):
        await statements.import_statement(HEADER.replace("Paid In,", "").encode())
    with pytest.raises(StatementError, match="no lines"):
        await statements.import_statement(HEADER.encode())
    with pytest.raises(StatementError, match="not UTF-8"):
        await statements.import_statement(HEADER.encode() + b"\xff\xfe\r\n")


async def test_a_failure_midway_keeps_nothing_not_even_the_credits_already_made(db, monkeypatch):
    """Two lines the portal never heard of, with members' numbers as accounts (3,000 and 8,000): the
    first is credited inside the import's transaction, then crediting the second fails (a fault put
    into the crediting step). Nothing is kept: no statement, no line, no stored callback, no payment,
    the ledger's M-Pesa account still 0. The same file then imports whole: 3,000 + 8,000 = 11,000."""
    for number_, amount in (("PTF0201", 3000), ("PTF0202", 8000)):
        await invoice_for(await make_member(number=number_), amount)
    data = (HEADER + GOOD.replace("TKL0ABC123", "TKL0FAIL01").replace("PTF0001", "PTF0201")
            + GOOD.replace("TKL0ABC123", "TKL0FAIL02").replace("PTF0001", "PTF0202").replace('"3,000.00",,', '"8,000.00",,', 1)
            ).encode()
    real, tried = statements._credit, []

    async def failing_second(line):
        tried.append(line.receipt)
        if len(tried) == 2:
            raise RuntimeError("the database connection was lost")
        return await real(line)

    monkeypatch.setattr(statements, "_credit", failing_second)
    with pytest.raises(RuntimeError):
        await statements.import_statement(data)
    assert tried == ["TKL0FAIL01", "TKL0FAIL02"]
    assert await MpesaStatement.count() == 0 and await MpesaStatementLine.count() == 0
    assert await GatewayCallback.count() == 0 and await Payment.count() == 0
    assert await mpesa_in_ledger() == Decimal("0")
    monkeypatch.undo()
    imported = await statements.import_statement(data)
    assert imported.summary == {"credited": 2}
    assert await mpesa_in_ledger() == Decimal("11000")
    await assert_books_agree()


def test_the_import_command_shows_its_progress_and_refuses_a_broken_file(db, tmp_path):
    """`portal import-statement FILE`: the upload's import from a shell, with the progress line of
    portal/lib/progress.py (every tenth, into a log); a broken file exits non-zero with its line and
    column."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    lines = "".join(GOOD.replace("TKL0ABC123", f"TKL{i:07d}").replace("PTF0001", "NOBODY") for i in range(30))
    good, broken = tmp_path / "statement.csv", tmp_path / "broken.csv"
    good.write_text(HEADER + lines)
    broken.write_text(HEADER + lines.replace("2026-12-07 09:15:02,", "2026-13-07 09:15:02,", 1))
    portal = str(Path(sys.executable).parent / "portal")
    r = subprocess.run([portal, "import-statement", str(broken)], capture_output=True, text=True, timeout=120,
                       env=os.environ)
    assert r.returncode == 1
    assert "broken.csv was not imported, nothing was changed. Line 2, column 2 (Completion Time)" in r.stderr
    r = subprocess.run([portal, "import-statement", str(good)], capture_output=True, text=True, timeout=120,
                       env=os.environ)
    assert r.returncode == 0, r.stderr
    assert "statement lines: 100% (30/30 lines" in r.stderr
    assert r.stdout.strip().endswith("30 unmatched")
