"""Money edits of a week (portal/reports/money_edits.py): every refund, void and reopened close,
with who, how much and why, on a managers' page and in a Monday email to those who opted in."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from portal.auth import create_staff
from portal.billing import closes
from portal.billing.invoices import void_invoice
from portal.lib.clock import today
from portal.lib.money import Money
from portal.messages import content
from portal.payments.service import refund_payment
from portal.reports import money_edits
from tables.messages import Message
from tables.staff import Staff
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_location, make_member


async def _week_of_edits() -> dict:
    """This week: Faith refunds 500 of a 3,000 cash payment ("Overcharged"); Mo voids invoice
    B of 2,000 ("Raised twice"; 16% VAT inside it); Mo reopens Westlands' close ("Miscounted the
    float"). Totals this week: refund 500 (1), invoice voided 2,000 (1), close reopened (1)."""
    westlands = await make_location("WST", "Westlands")
    faith = await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith", last_name="Wambui",
                               location_id=westlands)
    mo = await create_staff("mo", "mo-password-1", "manager", first_name="Mo", last_name="Farah",
                            email="mo@gym.example")
    member = await make_member("Amani", "Otieno", number="PTF0700")
    await invoice_for(member, 3000)
    cash = (await pay(member, 3000, staff_id=faith, location_id=westlands)).payment
    await refund_payment(cash["id"], Money(Decimal("500")), "Overcharged", faith)
    other = await invoice_for(member, 2000)
    await void_invoice(other["id"], "Raised twice", mo)
    counted = [closes.CashCount(faith, Money(Decimal("2500")), {})]  # 3,000 in, 500 back
    close = await closes.close_day(westlands, today(), counted, "", mo)
    await closes.reopen_day(close["id"], "Miscounted the float", mo)
    return {"member": member, "cash": cash, "void": other, "mo": mo, "faith": faith}


async def test_the_week_lists_each_edit_with_who_how_much_and_why(bob):
    w = await _week_of_edits()
    r = await bob.get("/money-edits")
    assert r.status_code == 200
    rows = re.findall(r'<tr data-testid="edit-row" data-kind="([\w.]+)">(.*?)</tr>', r.text, re.S)
    text = {kind: re.sub(r"\s+", " ", re.sub(r"<.*?>", " ", cells)).strip() for kind, cells in rows}
    assert sorted(text) == ["day.reopened", "refund", "void"]
    assert "Refund" in text["refund"] and "KES 500" in text["refund"] and "Faith Wambui" in text["refund"]
    assert "Overcharged" in text["refund"] and "Amani Otieno" in text["refund"] and w["cash"]["receipt_number"] in text["refund"]
    assert "Invoice voided" in text["void"] and "KES 2,000" in text["void"] and "Raised twice" in text["void"]
    assert w["void"]["number"] in text["void"] and "Mo Farah" in text["void"]
    assert "Close reopened" in text["day.reopened"] and f"Westlands, {today():%d %b %Y}" in text["day.reopened"]
    assert "Miscounted the float" in text["day.reopened"]
    assert re.search(r'data-testid="total-refund">KES 500<', r.text)
    assert re.search(r'data-testid="total-void">KES 2,000<', r.text)
    assert re.search(r'data-testid="total-day.reopened">1<', r.text)
    # the session's staff member, the week's edits: whatever their number
    assert int(r.headers["x-query-count"]) == 2

    # A week is Monday to Sunday: the weeks either side hold none of it.
    last_week = await bob.get(f"/money-edits?week={(today() - timedelta(days=7)).isoformat()}")
    assert 'data-testid="no-edits"' in last_week.text and "Overcharged" not in last_week.text
    assert 'data-testid="next-week"' in last_week.text and 'data-testid="next-week"' not in r.text
    assert (await money_edits.week(money_edits.monday_of(today()) + timedelta(days=7)))["edits"] == []
    bad = await bob.get("/money-edits?week=someday")
    assert bad.status_code == 422 and "is not a day" in bad.text


async def test_only_managers_see_it(alice, bob):
    assert (await alice.get("/money-edits")).status_code == 403
    page = await bob.get("/money-edits")
    assert page.status_code == 200 and 'data-testid="no-edits"' in page.text


async def test_the_monday_email_goes_once_to_those_who_opted_in(carol, settings):
    w = await _week_of_edits()
    # Opting in, as the staff form does; a front-desk login may not.
    form = {"first_name": "Mo", "last_name": "Farah", "role": "manager", "location": "", "email": "mo@gym.example",
            "active": "on", "weekly_money_edits": "on"}
    assert (await carol.post(f"/staff/{w['mo']}/edit", form)).status_code == 303
    assert (await Staff.select(Staff.weekly_money_edits).where(Staff.id == w["mo"]).first())["weekly_money_edits"]
    refused = await carol.post(f"/staff/{w['faith']}/edit", {**form, "first_name": "Faith", "role": "front_desk",
                                                            "email": "faith@gym.example"})
    assert refused.status_code == 422 and "The weekly money edits email is for managers and admins" in refused.text

    next_monday = money_edits.monday_of(today()) + timedelta(days=7)
    assert await money_edits.send_weekly(next_monday) == {"recipients": 1, "queued": 1}
    assert await money_edits.send_weekly(next_monday) == {"recipients": 1, "queued": 0}
    (message,) = await Message.select().where(Message.kind == "money_edits").output(load_json=True)
    assert message["to_address"] == "mo@gym.example"
    assert message["dedupe_key"] == f"money_edits:{w['mo']}:{money_edits.monday_of(today()).isoformat()}"
    built = await content.build(message)
    assert built.subject == (f"Money edits, week of {money_edits.monday_of(today()):%d %b}: 3 edits, "
                             "refund KES 500, invoice voided KES 2,000")
    assert "Good morning Mo Farah" in built.text and "Overcharged" in built.text and "Raised twice" in built.text
    assert "Miscounted the float" in built.text and "by Faith Wambui" in built.text
    assert f"{settings.public_base_url}/money-edits?week=" in built.text and "KES 2,000" in built.html
