"""Analytics checked against a small gym where every figure is worked out by hand (the numbers in
the comments), plus the query count (fixed, whatever the size) and the CSV exports."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

from portal.billing.invoices import lock_member, void_invoice
from portal.lib import db
from portal.lib.clock import today
from portal.lib.money import Money
from portal.payments.mpesa import stk as mpesa
from portal.payments.service import complete_payment, refund_payment
from portal.reports import analytics
from tables.billing import Invoice, Payment
from tests.billing.helpers import desk_staff, invoice_for, pay
from tests.factories import make_member, make_members, make_membership, make_plan


async def _due(member: int, amount, due_in: int, issued_ago: int = 0) -> dict:
    inv = await invoice_for(member, amount)
    await Invoice.update({Invoice.due_date: today() + timedelta(days=due_in),
                          Invoice.issue_date: today() - timedelta(days=issued_ago)}).where(Invoice.id == inv["id"])
    return inv


async def _mpesa(member: int, amount: int, key: str, invoice_id: int | None = None) -> int:
    recorded = await mpesa.start_stk_push(member_id=member, phone="0712 345 678", amount=Money(Decimal(amount)),
                                          idempotency_key=key, invoice_id=invoice_id)
    return recorded.payment["id"]


async def _worked_example() -> dict:
    t = today()
    desk = await desk_staff()
    plan = await make_plan("Monthly", "3000")
    a, b, c, d = [await make_member(n, "Worked") for n in ("Amani", "Baraka", "Chiku", "Dalia")]
    await make_membership(a, plan, t - timedelta(days=20), t + timedelta(days=10), "active")   # whole period
    await make_membership(b, plan, t - timedelta(days=33), t - timedelta(days=3), "expired")  # churns
    await make_membership(c, plan, t - timedelta(days=2), t + timedelta(days=28), "active")   # joins
    inv_a = await _due(a, 3000, -2, issued_ago=10)  # paid in cash at the desk: 10 days to pay
    inv_b = await _due(b, 2000, 0, issued_ago=4)    # paid by M-Pesa online: 4 days to pay
    inv_c = await _due(c, 4000, -1)                 # 1,000 cash, then 500 of it refunded: 3,500 owed
    await _due(d, 1000, 20)                         # not due in the period; current in aging
    voided = await _due(d, 700, -1)                 # void: never due
    await void_invoice(voided["id"], "Raised twice", desk)
    await pay(a, 3000, staff_id=desk, invoice_id=inv_a["id"])
    cash_c = (await pay(c, 1000, staff_id=desk, invoice_id=inv_c["id"])).payment["id"]
    await refund_payment(cash_c, Money(Decimal("500")), "Overcharged", desk)
    ok = await _mpesa(b, 2000, "mp-ok", inv_b["id"])
    async with db.transaction():
        await lock_member(b)
        await complete_payment(ok, reason="M-Pesa QWE123RTY7")
    failed = await _mpesa(b, 2000, "mp-fail")
    await mpesa._fail(failed, "Wrong PIN")
    cancelled = await _mpesa(b, 2000, "mp-cancel")
    await Payment.update({Payment.status: "cancelled"}).where(Payment.id == cancelled)
    await _mpesa(b, 2000, "mp-pending")  # undecided: not counted in the success rate
    return {"desk": desk, "a": a, "b": b, "c": c}


async def test_every_figure_matches_the_worked_example(db):
    await _worked_example()
    period = analytics.Period.parse({"preset": "7d", "grain": "day"})
    r = await analytics.report(period)
    assert r["totals"] == {"received": Decimal("6000.00"), "refunds": Decimal("500.00"), "net": Decimal("5500.00")}
    todays = r["series"][-1]
    assert (todays["bucket"], todays["cash"], todays["mpesa"], todays["net"]) == (
        today(), Decimal("4000.00"), Decimal("2000.00"), Decimal("5500.00"))
    assert len(r["series"]) == 7 and all(s["received"] == 0 for s in r["series"][:-1])
    methods = {m["method"]: m for m in r["by_method"]}
    assert (methods["cash"]["started"], methods["cash"]["done"], methods["cash"]["success_rate"]) == (2, 2, Decimal("100.0"))
    assert (methods["mpesa"]["started"], methods["mpesa"]["done"], methods["mpesa"]["bad"], methods["mpesa"]["pending"]) == (4, 1, 2, 1)
    assert methods["mpesa"]["success_rate"] == Decimal("33.3")
    statuses = {s["status"]: s["n"] for s in r["by_status"]}
    assert statuses == {"completed": 2, "partially_refunded": 1, "failed": 1, "cancelled": 1, "pending": 1}
    # Due in the period: 3,000 + 2,000 + 4,000; collected so far: 3,000 + 2,000 + (1,000 - 500).
    col = r["collection"]
    assert (col["due"], col["collected"], col["rate"]) == (Decimal("9000.00"), Decimal("5500.00"), Decimal("61.1"))
    assert [(c["name"], c["collected"], c["rate"]) for c in col["channels"]] == [
        ("cash", Decimal("3500.00"), Decimal("38.9")), ("mpesa", Decimal("2000.00"), Decimal("22.2"))]
    assert [(c["name"], c["rate"]) for c in col["staff"]][1] == ("online", Decimal("22.2"))
    assert col["staff"][0]["name"].startswith("desk") and col["staff"][0]["collected"] == Decimal("3500.00")
    assert r["days_to_pay"]["n"] == 2 and r["days_to_pay"]["median"] == Decimal("7.0")  # median of 10 and 4
    aging = {a["key"]: (a["n"], a["owed"]) for a in r["aging"]}
    assert aging == {"current": (1, Decimal("1000.00")), "0-30": (1, Decimal("3500.00")), "31-60": (0, 0),
                     "61-90": (0, 0), "90+": (0, 0)}
    assert r["members"] == {"active_start": 2, "active_end": 2, "mrr": Decimal("6000.00"), "churned": 1,
                            "churn_rate": Decimal("50.0")}
    assert [(t["name"], t["amount"]) for t in r["top"]] == [
        ("Amani Worked", Decimal("3000.00")), ("Baraka Worked", Decimal("2000.00")), ("Chiku Worked", Decimal("500.00"))]


def test_periods_and_buckets():
    from datetime import date

    on = date(2026, 11, 26)
    assert analytics.Period.parse({}, on=on).start == date(2026, 10, 28)  # last 30 days by default
    last = analytics.Period.parse({"preset": "last_month"}, on=on)
    assert (last.start, last.end, last.grain) == (date(2026, 10, 1), date(2026, 10, 31), "day")
    year = analytics.Period.parse({"preset": "year"}, on=on)
    assert year.grain == "month" and year.buckets()[0] == date(2026, 1, 1) and len(year.buckets()) == 11
    weeks = analytics.Period.parse({"start": "2026-09-01", "end": "2026-11-26", "grain": "week"}, on=on)
    assert weeks.buckets()[0] == date(2026, 8, 31) and all(b.weekday() == 0 for b in weeks.buckets())
    bad = analytics.Period.parse({"start": "2026-13-01", "end": "2026-11-01"}, on=on)
    assert "start" in bad.errors


async def test_the_page_charts_tables_and_csv(bob, alice):
    await _worked_example()
    page = await bob.get("/analytics?preset=7d&grain=day")
    assert page.status_code == 200
    assert 'data-testid="net">KES 5,500<' in page.text and 'data-testid="success-mpesa">33.3%<' in page.text
    assert 'id="chart-data"' in page.text and "/static/vendor/chart-4.6.1.umd.min.js" in page.text
    small_queries = page.headers["x-query-count"]
    assert (await alice.get("/analytics")).status_code == 403  # managers only
    export = await bob.get("/analytics.csv?figure=collection&preset=7d")
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0] == ["dimension", "name", "collected", "due", "rate_percent"]
    assert ["channel", "cash", "3500.00", "9000.00", "38.9"] in rows
    for figure in analytics_figures():
        assert (await bob.get(f"/analytics.csv?figure={figure}&preset=year")).status_code == 200
    # More members and payments: the same number of queries.
    await make_members(300, start=500)
    members = [r["id"] for r in await Payment.raw("SELECT id FROM member ORDER BY id DESC LIMIT 60")]
    for i, member in enumerate(members):
        await _due(member, 1000 + i, -i % 40)
        await pay(member, 500)
    bigger = await bob.get("/analytics?preset=7d&grain=day")
    # session, the report's seven aggregates, revenue by category
    assert bigger.headers["x-query-count"] == small_queries == "9"


def analytics_figures() -> list[str]:
    from portal.web.dashboards import CSV_FIGURES

    return list(CSV_FIGURES)


async def test_csv_writes_names_as_text_and_negative_amounts_as_numbers(bob):
    # A name a spreadsheet would run as a formula, and a day whose refunds exceed what came in.
    desk = await desk_staff()
    member = await make_member("=2+5", "Kamau", number="PTF0401")
    await invoice_for(member, 1000)
    paid = (await pay(member, 1000, staff_id=desk)).payment["id"]
    await Payment.update({Payment.completed_at: Payment.completed_at - timedelta(days=3)}).where(Payment.id == paid)
    await refund_payment(paid, Money(Decimal("600")), "Overcharged", desk)

    top = list(csv.reader(io.StringIO((await bob.get("/analytics.csv?figure=top&preset=7d")).text)))
    assert top[1:] == [["PTF0401", "'=2+5 Kamau", "1", "400.00"]]
    revenue = list(csv.DictReader(io.StringIO((await bob.get("/analytics.csv?figure=revenue&preset=7d&grain=day")).text)))
    assert (revenue[-1]["period_start"], revenue[-1]["refunds"], revenue[-1]["net"]) == (
        today().isoformat(), "600.00", "-600.00")
    assert Decimal(revenue[-1]["net"]) == Decimal("-600")
