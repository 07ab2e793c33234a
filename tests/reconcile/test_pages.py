"""The reconciliation pages: managers only, CSRF on every form, a malformed upload answered 422
with its line and column, and a fixed number of queries whatever the statement's size."""

import json
from datetime import timedelta

import pytest

from portal.callbacks import dispatch
from portal.callbacks import store as callbacks
from portal.lib.clock import now
from portal.settings import get_settings
from tables.reconcile import MpesaStatement
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_member
from tests.support.client import PortalClient

HEADER = ("Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,Balance,"
          "Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No.\r\n")


def _line(receipt: str, amount: str, account: str, minutes: int = 0) -> str:
    when = (now() - timedelta(minutes=60 - minutes)).astimezone(get_settings().tz).strftime("%Y-%m-%d %H:%M:%S")
    return f'{receipt},{when},{when},Pay Bill,Completed,"{amount}",,,true,Pay Bill Online,2547 ***** 149 - JOHN,,{account}\r\n'


async def _upload(client: PortalClient, name: str, data: bytes, *, csrf: bool = True):
    fields = {"_csrf_token": await client.csrf_token()} if csrf else {}
    return await client.http.post("/reconcile/mpesa/statements", data=fields,
                                  files={"statement": (name, data, "text/csv")})


async def _statement_of(payments: int) -> bytes:
    """`payments` M-Pesa payments recorded at the desk, all on the statement, and one line more the
    portal never heard of whose account nobody has (left for staff)."""
    member = await make_member(number="PTF0777")
    await invoice_for(member, 100 * payments)
    lines = []
    for i in range(payments):  # confirmed over the Paybill (stored, then processed, as the hook does)
        body = {"TransactionType": "Pay Bill", "TransID": f"TPG{i:07d}", "TransTime": "20261207090000",
                "TransAmount": "100.00", "BusinessShortCode": "174379", "BillRefNumber": "PTF0777",
                "MSISDN": "2547 ***** 149", "FirstName": "JOHN"}
        stored = await callbacks.store("daraja", "c2b_confirmation", json.dumps(body).encode(), external_id=f"TPG{i:07d}")
        assert await dispatch.process(stored.id) == "applied"
        lines.append(_line(f"TPG{i:07d}", "100.00", "PTF0777", i % 50))
    lines.append(_line("TPGNOBODY1", "250.00", "NOBODY"))
    return (HEADER + "".join(lines)).encode()


async def test_front_desk_cannot_open_or_post_to_reconciliation(alice):
    assert (await alice.get("/reconcile/mpesa")).status_code == 403
    assert (await alice.post("/reconcile/mpesa/pull", {"hours": "3"})).status_code == 403
    assert (await _upload(alice, "s.csv", HEADER.encode())).status_code == 403


async def test_an_upload_without_the_csrf_token_is_refused(bob):
    r = await _upload(bob, "s.csv", (HEADER + _line("TPG0000001", "100.00", "X")).encode(), csrf=False)
    assert r.status_code == 403
    assert await MpesaStatement.count() == 0


async def test_a_malformed_upload_says_the_line_and_column_and_keeps_nothing(bob):
    r = await _upload(bob, "broken.csv", (HEADER + _line("TPG0000001", "1O0.00", "X")).encode())
    assert r.status_code == 422
    assert "broken.csv was not imported, nothing was changed. Line 2, column 6 (Paid In)" in r.text
    assert "&#39;1O0.00&#39; is not an amount" in r.text
    assert await MpesaStatement.count() == 0


@pytest.mark.parametrize("payments", [3, 60])
async def test_import_then_the_pages_at_a_fixed_query_count(bob, payments):
    data = await _statement_of(payments)
    r = await _upload(bob, "ORG_statement.csv", data)
    assert r.status_code == 303, r.text
    page = r.headers["location"]
    r = await bob.get(page)
    assert r.status_code == 200
    assert f'data-testid="count-matched">{payments}<' in r.text and 'data-testid="count-unmatched">1<' in r.text
    assert 'data-receipt="TPGNOBODY1"' in r.text and 'data-testid="none-missing"' in r.text
    # session, the statement, the lines needing attention, the ledger's payments with no line
    assert int(r.headers["x-query-count"]) == 4
    r = await bob.get("/reconcile/mpesa")
    # session, the statements
    assert r.status_code == 200 and int(r.headers["x-query-count"]) == 2
    assert "ORG_statement.csv" in r.text
    again = await _upload(bob, "ORG_statement.csv", data)
    assert again.status_code == 303 and again.headers["location"] == page + "?again=1"
    assert "was imported before" in (await bob.get(again.headers["location"])).text
    assert await MpesaStatement.count() == 1
    await assert_books_agree()
