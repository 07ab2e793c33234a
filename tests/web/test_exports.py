"""CSV of every list (issue 15): each export is the list's own rows with its filters applied,
streamed page after page, formula-safe, and for managers only."""

import csv
import io
from datetime import timedelta

import pytest

from portal.lib.clock import today
from portal.web import exports
from tables.billing import Invoice
from tables.messages import Message
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member, make_membership, make_plan

EXPORTS = ["/members.csv", "/dues.csv", "/renewals.csv", "/messages.csv", "/mpesa/unmatched.csv", "/close.csv"]


def _rows(r) -> list[dict]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment; filename=")
    return list(csv.DictReader(io.StringIO(r.text)))


@pytest.mark.parametrize("path", EXPORTS)
async def test_exports_are_for_managers(alice, bob, path):
    assert (await alice.get(path)).status_code == 403
    r = await bob.get(path)
    assert r.status_code == 200 and r.text.count("\n") == 1  # the header alone: nothing to list yet


async def test_members_export_is_the_search_with_its_filter_over_many_pages(bob, monkeypatch):
    monkeypatch.setattr(exports, "EXPORT_PAGE", 3)  # seven members: three pages of three
    for i in range(6):
        await make_member("Amani", f"Otieno{i}", number=f"PTF01{i:02d}")
    await make_member("=HYPERLINK(1)", "Kamau", number="PTF0200")
    everyone = _rows(await bob.get("/members.csv"))
    assert len(everyone) == 7 and len({r["member_number"] for r in everyone}) == 7
    assert {r["first_name"] for r in everyone} == {"Amani", "'=HYPERLINK(1)"}
    assert [r["member_number"] for r in _rows(await bob.get("/members.csv?q=kamau"))] == ["PTF0200"]
    page = await bob.get("/members?q=kamau")
    assert 'href="/members.csv?q=kamau"' in page.text


async def test_dues_export_follows_the_urgency_filter_and_keeps_amounts_as_numbers(bob, settings):
    late, soon = await make_member("Late", "Payer"), await make_member("Soon", "Payer")
    for member, due_in in ((late, -10), (soon, 5)):
        inv = await invoice_for(member, 3000)
        await Invoice.update({Invoice.due_date: today() + timedelta(days=due_in)}).where(Invoice.id == inv["id"])
    await pay(late, 1000)
    rows = _rows(await bob.get("/dues.csv"))
    assert [(r["first_name"], r["urgency"], r["still_owed"]) for r in rows] == [("Late", "overdue", "2000.00"),
                                                                             ("Soon", "d7", "3000.00")]
    last_paid = f"last_paid ({settings.timezone})"  # a time column names the gym's zone
    assert rows[0][last_paid].startswith(today().isoformat()) and rows[1][last_paid] == ""
    assert [r["first_name"] for r in _rows(await bob.get("/dues.csv?urgency=overdue"))] == ["Late"]
    table = await bob.get("/dues?urgency=overdue", htmx=True)  # the link travels with the filtered table
    assert 'href="/dues.csv?urgency=overdue"' in table.text


async def test_renewals_export_is_the_window_asked_for(bob):
    plan = await make_plan("Monthly", "3000")
    ending, later = await make_member("Ends", "Soon"), await make_member("Ends", "Later")
    await make_membership(ending, plan, today() - timedelta(days=25), today() + timedelta(days=5), "active")
    await make_membership(later, plan, today() - timedelta(days=5), today() + timedelta(days=25), "active")
    week = _rows(await bob.get("/renewals.csv?window=7"))
    assert [(r["last_name"], r["days_left"], r["renewal_price"], r["renewed"]) for r in week] == [("Soon", "5", "3000.00", "no")]
    assert {r["last_name"] for r in _rows(await bob.get("/renewals.csv?window=30"))} == {"Soon", "Later"}


async def test_messages_export_follows_the_filters(bob):
    member = await make_member(email="m@example.com")
    await Message.insert(*[Message(member=member, channel="sms" if i % 2 else "email", kind="receipt",
                                   to_address="+254712000001" if i % 2 else "m@example.com", dedupe_key=f"x:{i}",
                                   status="failed" if i == 3 else "sent", subject=f"Subject {i}") for i in range(4)])
    assert len(_rows(await bob.get("/messages.csv"))) == 4
    problems = _rows(await bob.get("/messages.csv?status=problem"))
    assert [(r["channel"], r["status"], r["to_address"]) for r in problems] == [("sms", "failed", "'+254712000001")]
