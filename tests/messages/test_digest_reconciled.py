"""The owner's digest says whether yesterday reconciled (issue 16): read from the email as sent."""

from __future__ import annotations

import json
from datetime import timedelta

from portal.auth import create_staff
from portal.callbacks.dispatch import process
from portal.callbacks.store import store
from portal.lib.clock import now, today
from portal.reconcile import actions, days, statements
from portal.settings import get_settings
from tasks.digest import send_daily_digest
from tests.billing.helpers import invoice_for
from tests.factories import make_member

HEADER = ("Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,Balance,"
          "Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No.\r\n")


def _line(receipt: str, amount: str, account: str) -> str:
    when = (now() - timedelta(minutes=5)).astimezone(get_settings().tz).strftime("%Y-%m-%d %H:%M:%S")
    return f'{receipt},{when},{when},Pay Bill,Completed,"{amount}",,,true,Pay Bill Online,2547 ***** 149 - JOHN,,{account}\r\n'


async def _today_with_a_difference() -> int:
    """Today (the digest's "yesterday" tomorrow): PTF0401 paid 3,000 (confirmed); 5,000 came for
    account "GYM" and matched nobody. Gateway 8,000 (2), ledger 3,000 (1): 1 difference, 5,000."""
    member = await make_member(number="PTF0401")
    await invoice_for(member, 3000)
    body = {"TransactionType": "Pay Bill", "TransID": "TDIG000001", "TransTime": "20261207090000",
            "TransAmount": "3000.00", "BusinessShortCode": "174379", "BillRefNumber": "PTF0401",
            "MSISDN": "2547 ***** 149", "FirstName": "JOHN"}
    stored = await store("daraja", "c2b_confirmation", json.dumps(body).encode(), external_id="TDIG000001")
    assert await process(stored.id) == "applied"
    await statements.import_statement((HEADER + _line("TDIG000001", "3,000.00", "PTF0401")
                                       + _line("TDIG000002", "5,000.00", "GYM")).encode(), filename="s.csv")
    return member


def _text(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")


async def test_the_digest_says_yesterday_did_not_reconcile_with_its_differences(worker, smtp_server):
    await _today_with_a_difference()
    await create_staff("paul", "paul-password-1", "admin", first_name="Paul", email="paul@gym.example", daily_digest=True)
    tomorrow = today() + timedelta(days=1)
    assert (await send_daily_digest({}, on=tomorrow.isoformat()))["queued"] == 1
    (_, _, msg), = await smtp_server.wait_for(1)
    text = _text(msg)
    assert "Yesterday reconciled: no (1 difference, KES 5,000)" in text
    assert f"/reconcile/days/{today().isoformat()}" in text
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "Yesterday reconciled: <strong" in html and "(1 difference, KES 5,000)" in html


async def test_the_digest_says_yes_and_who_once_the_day_is_reconciled(worker, smtp_server):
    await _today_with_a_difference()
    paul = await create_staff("paul", "paul-password-1", "admin", first_name="Paul", email="paul@gym.example",
                              daily_digest=True)
    await actions.settle(today(), "mpesa:TDIG000002", "credit", reason="Typo in the account", member="PTF0401",
                         staff_id=paul)
    summary = days.summary(today(), await days.cells(today(), today() + timedelta(days=1)), {})
    assert (summary.open_count, summary.uncovered) == (0, 0)
    assert await actions.mark_reconciled(today(), staff_id=paul, open_count=0, uncovered=0)
    await send_daily_digest({}, on=(today() + timedelta(days=1)).isoformat())
    (_, _, msg), = await smtp_server.wait_for(1)
    assert "Yesterday reconciled: yes (by paul)" in _text(msg)
