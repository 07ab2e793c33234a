"""The payment figures (tables/figures.py, kept by trigger) give the numbers the payments give:
the analytics' worked example and the payments list's totals, read both ways, are the same to the
cent; the books check compares every figure with its payments after every money story."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.lib.clock import today
from portal.payments import figures
from portal.payments.queries import PaymentFilters, payment_page
from portal.reports import analytics
from tables.billing import Payment
from tests.billing.helpers import assert_books_agree
from tests.reports.test_analytics import _worked_example


def test_whole_hour_zones_read_figures_others_read_payments():
    nairobi, kolkata = ZoneInfo("Africa/Nairobi"), ZoneInfo("Asia/Kolkata")
    day = today()
    assert figures.whole_hour_days(nairobi, day - timedelta(days=29), day)
    assert not figures.whole_hour_days(kolkata, day - timedelta(days=29), day)  # UTC+5:30
    assert figures.whole_hours(ZoneInfo("Europe/London"), datetime(2026, 3, 29, 12, tzinfo=ZoneInfo("UTC")))
    assert not figures.whole_hours(ZoneInfo("Australia/Adelaide"), datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")))


async def _both_ways(monkeypatch, read):
    """`read()` from the figures, then from the payments themselves."""
    fast = await read()
    with monkeypatch.context() as m:
        m.setattr(figures, "whole_hour_days", lambda *a: False)
        m.setattr(figures, "whole_hours", lambda *a: False)
        slow = await read()
    return fast, slow


async def test_the_worked_example_reads_the_same_from_figures_and_from_payments(db, monkeypatch):
    """The worked example of tests/reports/test_analytics.py (cash 3,000 and 1,000 with 500 refunded,
    M-Pesa 2,000 done, one failed, one cancelled, one pending): every figure of the report, for
    each preset and grain, is the same whichever way it is read."""
    await _worked_example()
    for params in ({"preset": "7d", "grain": "day"}, {"preset": "30d"}, {"preset": "year", "grain": "week"},
                   {"preset": "month", "grain": "month"}):
        period = analytics.Period.parse(params)
        fast, slow = await _both_ways(monkeypatch, lambda: analytics.report(period))
        assert fast == slow, params
    assert fast["totals"]["received"] == 6000  # 3,000 + 1,000 cash, 2,000 M-Pesa
    await assert_books_agree()


@pytest.mark.parametrize("params", [
    {}, {"status": "completed"}, {"status": "pending"}, {"method": "cash"}, {"method": "card"},
    {"status": "partially_refunded", "method": "cash"}, {"date_from": "2020-01-01"},
    {"date_to": today().isoformat()}, {"date_from": today().isoformat(), "date_to": today().isoformat()},
    {"staff": "the desk"}, {"staff": "the desk", "status": "completed", "date_from": today().isoformat()},
])
async def test_the_payments_lists_totals_are_the_same_either_way(db, monkeypatch, params):
    """Count, amount, refunded and net of the worked example's payments under each filter: all of
    them are 6 payments (cash 3,000 and 1,000; M-Pesa 2,000 done, failed, cancelled and pending),
    12,000 (3,000 + 1,000 + 4 x 2,000), 500 refunded; net of the completed and part refunded ones
    5,500 (3,000 + 500 + 2,000)."""
    ids = await _worked_example()
    if "staff" in params:
        params = {**params, "staff": str(ids["desk"])}

    async def read():
        f = PaymentFilters()
        f.read(params)
        page = await payment_page(f)
        return page.count, page.amount, page.refunded, page.net, [r["id"] for r in page.rows]

    fast, slow = await _both_ways(monkeypatch, read)
    assert fast == slow
    if not params:
        assert fast[:4] == (6, 12000, 500, 5500)


async def test_figures_follow_every_change_of_a_payment(db):
    """Changed by hand (a status, an amount and its hour, a row added and deleted): the triggers
    keep up with each."""
    await _worked_example()
    pending = await Payment.select(Payment.id).where(Payment.status == "pending").first()
    await Payment.update({Payment.status: "expired"}).where(Payment.id == pending["id"])
    assert await figures.disagreements() == []
    await Payment.raw("UPDATE payment SET created_at = created_at - interval '3 hours', amount = amount + 1 "
                      "WHERE id = {}", pending["id"])
    assert await figures.disagreements() == []
    # Payments keep their events (append-only), so the row deleted is a copy made for it.
    copy = await Payment.raw(
        "INSERT INTO payment SELECT (jsonb_populate_record(p, jsonb_build_object('id', (SELECT max(id) + 1 FROM payment), "
        "'idempotency_key', 'copy-to-delete', 'receipt_number', null, 'gateway_ref', null))).* "
        "FROM payment p WHERE id = {} RETURNING id", pending["id"])
    assert (await figures.payment_totals(status="expired"))["n"] == 2
    await Payment.raw("DELETE FROM payment WHERE id = {}", copy[0]["id"])
    assert await figures.disagreements() == []
    totals = await figures.payment_totals(status="expired")
    assert totals["n"] == 1 and totals["amount"] == 2001  # the 2,000 prompt, 1 added by hand
    assert (await figures.payment_totals(status="pending"))["n"] == 0
