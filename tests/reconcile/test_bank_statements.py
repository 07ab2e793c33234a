"""Bank statements: a bank's columns saved once, its CSV imported whole or refused with the line and
column, credits matched to the desk's bank transfers by reference, then amount and date; a credit
nobody recorded is credited to a member from the reconciliation page, once."""

from __future__ import annotations

from decimal import Decimal

from portal.lib.clock import today
from tables.audit import AuditLog
from tables.billing import Payment
from tables.reconcile import BankFormat, BankStatement, GatewayLine
from tests.billing.helpers import assert_books_agree, desk_staff, invoice_for, pay
from tests.factories import make_member
from tests.support.client import PortalClient

EQUITY = {"name": "Equity Bank", "date_column": "Transaction Date", "date_format": "DD/MM/YYYY",
          "description_column": "Narrative", "reference_column": "Reference", "credit_column": "Money In",
          "debit_column": "Money Out", "amount_column": ""}


def _csv(*lines: str) -> bytes:
    return ("Account Statement,PAUL'S TROPICAL FITNESS\r\n\r\n"
            "Transaction Date,Narrative,Reference,Money Out,Money In,Balance\r\n" + "".join(lines)).encode()


def _d() -> str:
    return today().strftime("%d/%m/%Y")


async def _upload(client: PortalClient, data: bytes, fmt: int, name: str = "equity.csv"):
    return await client.http.post("/reconcile/bank/statements",
                                  data={"_csrf_token": await client.csrf_token(), "format": str(fmt)},
                                  files={"statement": (name, data, "text/csv")})


async def _format(bob) -> int:
    r = await bob.post("/reconcile/bank/formats", EQUITY)
    assert r.status_code == 303, r.text
    return (await BankFormat.select(BankFormat.id).first())["id"]


async def test_a_bank_statement_matched_then_an_unrecorded_credit_credited_from_the_page(bob):
    """Worked example (KES), today's Equity statement:
        line 4  FT26ABC111  12,000 in   the desk recorded a bank transfer "FT26ABC111"  -> by reference
        line 5  (no ref)     6,000 in   the desk recorded 6,000 by bank, ref "CHQ-88",
                                        yesterday                                        -> by amount and date
        line 6  FT26ZZZ999   4,500 in   nobody recorded it                               -> unrecorded
        line 7  CHG           150 out   bank charges                                     -> a debit, not counted
    Bank cell: gateway 12,000 + 6,000 + 4,500 = 22,500 (3) against ledger 12,000 + 6,000 = 18,000 (2): red.
    Credit FT26ZZZ999 to PTF0502 from the page: ledger 22,500 (3) -> green; importing the file again
    and clicking again change nothing."""
    desk = await desk_staff()
    a, b = await make_member(number="PTF0501"), await make_member(number="PTF0502")
    await invoice_for(a, 18000)
    await invoice_for(b, 4500)
    await pay(a, 12000, "bank", desk, reference="FT26ABC111")
    await pay(a, 6000, "bank", desk, reference="CHQ-88")
    fmt = await _format(bob)
    data = _csv(f'{_d()},TRANSFER FROM WANJIKU K,FT26ABC111,,"12,000.00","12,000.00"\r\n',
                f'{_d()},CASH DEPOSIT BRANCH 12,,,"6,000.00","18,000.00"\r\n',
                f'{_d()},RTGS J OTIENO,FT26ZZZ999,,"4,500.00","22,500.00"\r\n',
                f'{_d()},LEDGER FEES,CHG,150.00,,"22,350.00"\r\n')
    r = await _upload(bob, data, fmt)
    assert r.status_code == 303, r.text
    page = (await bob.get(r.headers["location"])).text
    assert "1 by amount and date, 1 by reference, 1 debits, 1 unrecorded" in page
    lines = {g["external_id"]: g["amount"] for g in await GatewayLine.select(GatewayLine.external_id, GatewayLine.amount)}
    assert lines == {"FT26ABC111": Decimal("12000.00"), "CHQ-88": Decimal("6000.00"), "FT26ZZZ999": Decimal("4500.00")}

    day = f"/reconcile/days/{today().isoformat()}"
    html = (await bob.get(day)).text
    assert f'data-testid="cell-{today()}-bank" data-state="red"' in html
    assert f'data-testid="g-{today()}-bank">KES 22,500 (3)<' in html and f'data-testid="p-{today()}-bank">KES 18,000 (2)<' in html
    for _ in range(2):  # a double click
        r = await bob.post(f"{day}/settle", {"key": "bank:FT26ZZZ999", "action": "credit", "member": "PTF0502",
                                             "reason": "Otieno's RTGS, no reference"})
        assert r.status_code == 303
    html = (await bob.get(day)).text
    assert f'data-testid="cell-{today()}-bank" data-state="green"' in html
    assert f'data-testid="p-{today()}-bank">KES 22,500 (3)<' in html
    credited = await Payment.select(Payment.member, Payment.amount, Payment.status).where(
        Payment.reference == "FT26ZZZ999")
    assert credited == [{"member": b, "amount": Decimal("4500.00"), "status": "completed"}]

    again = await _upload(bob, data, fmt)
    assert "was+imported+before" in again.headers["location"]
    assert await BankStatement.count() == 1 and await GatewayLine.count() == 3
    assert await AuditLog.count().where(AuditLog.action == "bank.statement_imported") == 1
    await assert_books_agree()


async def test_a_malformed_bank_file_is_refused_with_line_and_column_and_nothing_kept(bob):
    fmt = await _format(bob)
    r = await _upload(bob, _csv(f'{_d()},OK,FT1,,"1,000.00",\r\n', '31/02/2026,BAD DATE,FT2,,"2,000.00",\r\n'), fmt,
                      "broken.csv")
    assert r.status_code == 422
    assert "broken.csv was not imported, nothing was changed. Line 5, column 1 (Transaction Date)" in r.text
    r = await _upload(bob, _csv(f'{_d()},OK,FT1,,"1,000.00",\r\n', f'{_d()},BAD AMOUNT,FT2,,"2.000,00",\r\n'), fmt)
    assert r.status_code == 422 and "Line 5, column 5 (Money In)" in r.text
    r = await _upload(bob, _csv(f'{_d()},BOTH,FT3,10.00,"2,000.00",\r\n'), fmt)
    assert r.status_code == 422 and "Line 4, column 4 (Money Out): a line is a credit or a debit, not both" in r.text
    assert await BankStatement.count() == 0 and await GatewayLine.count() == 0


async def test_a_bad_mapping_keeps_what_was_typed_and_front_desk_and_csrf_are_refused(alice, bob):
    r = await bob.post("/reconcile/bank/formats", {**EQUITY, "credit_column": "", "debit_column": "", "date_format": ""})
    assert r.status_code == 422
    assert 'data-testid="error-amount_column">Give either one signed amount column' in r.text
    assert 'data-testid="error-date_format">Choose the date format' in r.text
    assert 'value="Transaction Date"' in r.text and 'value="Equity Bank"' in r.text
    assert (await alice.get("/reconcile/bank")).status_code == 403
    assert (await alice.post("/reconcile/bank/formats", EQUITY)).status_code == 403
    assert (await bob.post("/reconcile/bank/formats", EQUITY, csrf=False)).status_code == 403
    assert await BankFormat.count() == 0
    # A signed-amount bank: credits positive, debits negative.
    fmt = await _format(bob)
    r = await bob.post("/reconcile/bank/formats", {"name": "KCB", "date_column": "Date", "date_format": "YYYY-MM-DD",
                                                   "description_column": "Details", "amount_column": "Amount"})
    assert r.status_code == 303
    kcb = (await BankFormat.select(BankFormat.id).where(BankFormat.name == "KCB").first())["id"]
    data = f"Date,Details,Amount\r\n{today().isoformat()},DEPOSIT,2500\r\n{today().isoformat()},FEE,-35.50\r\n".encode()
    r = await _upload(bob, data, kcb, "kcb.csv")
    assert r.status_code == 303, r.text
    assert [g["amount"] for g in await GatewayLine.select(GatewayLine.amount)] == [Decimal("2500.00")]
    assert fmt != kcb
