"""A large statement uploaded on the web is imported by the worker while the page shows how far it
has got (htmx polling the upload's row), and a 50,000-line file is done in under 30 s."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta

from portal.lib.clock import now
from portal.reconcile import uploads
from portal.settings import get_settings
from tables.reconcile import MpesaStatement, MpesaStatementLine
from tests.factories import make_member
from tests.reconcile.test_reconciliation_page import HEADER

LINES = 50_000
LIMIT_SECONDS = 30


def _statement(lines: int, members: list[str]) -> bytes:
    """`lines` lines of today: a Paybill payment to each member given, one nobody's, the rest the
    day's withdrawals to the bank (charges and withdrawals: matched to nothing, as the org portal lists them)."""
    tz = get_settings().tz
    start = now().astimezone(tz).replace(hour=0, minute=0, second=1, microsecond=0)
    rows = []
    for i, number in enumerate(members):
        when = (start + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S")
        rows.append(f"TUPL{i:06d},{when},{when},Pay Bill Acc. {number},Completed,\"3,000.00\",,,true,"
                    f"Pay Bill Online,2547 ***** 149 - JOHN,,{number}\r\n")
    when = start.strftime("%Y-%m-%d %H:%M:%S")
    rows.append(f"TUPLNOBODY,{when},{when},Pay Bill Acc. NOBODY,Completed,\"500.00\",,,true,"
                f"Pay Bill Online,2547 ***** 149 - JOHN,,NOBODY\r\n")
    i = 0
    while len(rows) < lines:
        rows.append(f"TBNK{i:06d},{when},{when},Withdraw to bank,Completed,,-1.00,,true,"
                    f"Organization Withdrawal to Bank,Bank,,\r\n")
        i += 1
    return (HEADER + "".join(rows)).encode()


async def _upload(client, data: bytes, name: str = "month.csv"):
    return await client.http.post("/reconcile/mpesa/statements", data={"_csrf_token": await client.csrf_token()},
                                  files={"statement": (name, data, "text/csv")})


async def test_a_50000_line_statement_from_the_web_shows_its_progress_and_is_done_in_under_30_seconds(bob, worker, capsys):
    """50,000 lines (20 members' Paybill payments, one nobody's, 49,979 bank withdrawals): the
    upload answers at once with the upload's page (a bar); polled as htmx does, the bar moves
    (lines matched of 50,000, seen between 0 and the whole), then the poll is sent to the statement's
    page: 20 credited, 1 unmatched, 49,979 charges and withdrawals. Timed from the upload to that."""
    numbers = [f"PTF{i:04d}" for i in range(1, 21)]
    for number in numbers:
        await make_member(number=number)
    data = _statement(LINES, numbers)
    started = time.monotonic()
    r = await _upload(bob, data)
    answered = time.monotonic() - started
    assert r.status_code == 303, r.text[:500]
    page_url = r.headers["location"]
    assert re.fullmatch(r"/reconcile/mpesa/uploads/\d+", page_url)
    page = await bob.get(page_url)
    assert page.status_code == 200 and 'data-testid="upload"' in page.text and 'hx-trigger="every 1s"' in page.text

    seen, to = [], None
    while time.monotonic() - started < LIMIT_SECONDS + 30:
        poll = await bob.get(page_url, htmx=True)
        assert poll.status_code == 200
        if poll.headers.get("HX-Redirect"):
            to = poll.headers["HX-Redirect"]
            break
        m = re.search(r'data-state="(\w+)" data-phase="(\w*)" data-done="(\d+)" data-total="(\d+)"', poll.text)
        seen.append((m.group(1), m.group(2), int(m.group(3)), int(m.group(4))))
        await asyncio.sleep(0.2)
    seconds = time.monotonic() - started
    assert to is not None, seen[-5:]
    # The bar moved: lines read (or matched) seen part way, and only ever forward within a phase.
    assert any(state == "running" and 0 < done < total for state, _, done, total in seen), seen
    for phase in ("reading", "matching"):
        dones = [done for _, p, done, _ in seen if p == phase]
        assert dones == sorted(dones), seen
    statement = await MpesaStatement.select().first()
    assert to == f"/reconcile/mpesa/statements/{statement['id']}"
    summary = statement["summary"] if isinstance(statement["summary"], dict) else __import__("json").loads(statement["summary"])
    assert summary == {"credited": 20, "unmatched": 1, "not_payment": LINES - 21}
    assert await MpesaStatementLine.count() == LINES
    shown = await bob.get(to)
    assert shown.status_code == 200 and 'data-testid="count-credited">20<' in shown.text
    with capsys.disabled():
        print(f"\n  web statement upload: {LINES:,} lines ({len(data) / 1e6:.1f} MB), upload answered in {answered:.1f} s, "
              f"imported and shown in {seconds:.1f} s (limit {LIMIT_SECONDS} s); {len(seen)} polls, "
              f"progress seen: {sorted({(p, d) for _, p, d, _ in seen})}")
    assert seconds < LIMIT_SECONDS
    # The same file again: the worker finds it imported, nothing changes.
    again = await _upload(bob, data)
    for _ in range(300):
        poll = await bob.get(again.headers["location"], htmx=True)
        if poll.headers.get("HX-Redirect"):
            break
        await asyncio.sleep(0.1)
    assert poll.headers["HX-Redirect"].endswith("?again=1")
    assert await MpesaStatement.count() == 1 and await MpesaStatementLine.count() == LINES
    # The poll is one query besides the session's.
    assert (await bob.get(page_url, htmx=True)).headers["X-Query-Count"] == UPLOAD_PAGE_QUERIES


async def test_a_large_malformed_file_is_refused_with_its_line_and_column_and_nothing_is_kept(bob, worker):
    """A large file goes to the worker unread; its page then says what is wrong, where, as the
    small file's 422 does, and nothing was stored."""
    data = _statement(uploads.IN_REQUEST + 10, []).replace(b"Withdraw to bank,Completed,,-1.00", b"Withdraw,Completed,,-x", 1)
    r = await _upload(bob, data)
    assert r.status_code == 303
    for _ in range(300):
        page = (await bob.get(r.headers["location"], htmx=True)).text
        if 'data-state="refused"' in page:
            break
        await asyncio.sleep(0.1)
    assert "month.csv was not imported, nothing was changed. Line 3, column 7 (Withdrawn)" in page
    assert 'hx-trigger' not in page  # the polling stops
    assert await MpesaStatement.count() == 0 and await MpesaStatementLine.count() == 0
    rows = await MpesaStatement.raw("SELECT state, octet_length(data) AS kept FROM statement_upload")
    assert [(r["state"], r["kept"]) for r in rows] == [("refused", 0)]


async def test_front_desk_cannot_see_an_upload(alice, bob):
    assert (await alice.get("/reconcile/mpesa/uploads/1")).status_code == 403
    assert (await bob.get("/reconcile/mpesa/uploads/999")).status_code == 404


UPLOAD_PAGE_QUERIES = "2"
