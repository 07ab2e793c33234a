"""A manager's day: who owes what, whose memberships end, the analytics charts, and the close of
the day with a cash variance. Screenshots in test-artifacts/screenshots (40-…)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from portal.auth import create_staff
from portal.lib.clock import today
from portal.lib.money import Money
from portal.payments.service import record_desk_payment
from tables.billing import Invoice
from tests.billing.helpers import invoice_for
from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.factories import make_location, make_member, make_membership, make_plan

pytestmark = pytest.mark.browser


async def _gym() -> int:
    westlands = await make_location("WST", "Westlands")
    desk = await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith", location_id=westlands)
    await create_staff("mary", "mary-password-1", "manager", first_name="Mary", location_id=westlands)
    plan = await make_plan("Monthly", "3000")
    names = [("Wanjiku", "Kamau"), ("Otieno", "Odhiambo"), ("Njeri", "Mwangi"), ("Kiprono", "Chebet"),
             ("Achieng", "Omondi"), ("Barasa", "Wekesa")]
    for i, (first, last) in enumerate(names):
        member = await make_member(first, last, phone=f"2547220000{i:02d}")
        t = today()
        await make_membership(member, plan, t - timedelta(days=25 - i), t + timedelta(days=5 + 4 * i), "active")
        inv = await invoice_for(member, 3000 + 500 * i)
        await Invoice.update({Invoice.due_date: t + timedelta(days=[-20, -3, 1, 5, 12, 30][i])}).where(Invoice.id == inv["id"])
        if i % 2 == 0:
            await record_desk_payment(member_id=member, method="cash", amount=Money(Decimal(1000 + 250 * i)),
                                      idempotency_key=f"e2e-{i}", staff_id=desk, location_id=westlands)
    return westlands


async def test_a_manager_reads_the_dashboards_and_closes_the_day(db, queue, browser, live_server, page):
    from playwright.async_api import expect

    await _gym()
    await LoginPage(page).login("mary", "mary-password-1")

    await page.goto("/dues")
    await expect(page.get_by_test_id("due-row")).to_have_count(6)
    await expect(page.get_by_test_id("hold")).to_have_count(1)  # 20 days overdue, past the grace period
    await screenshot(page, "40-payments-due")
    await page.get_by_test_id("summary-overdue").click()
    await expect(page.get_by_test_id("due-row")).to_have_count(2)

    await page.goto("/renewals?window=14")
    await expect(page.get_by_test_id("renewal-row")).to_have_count(3)
    await screenshot(page, "41-renewals-due")

    await page.goto("/analytics?preset=30d")
    await expect(page.get_by_test_id("received")).to_have_text("KES 4,500")
    drawn = await page.evaluate("() => ['chart-revenue', 'chart-methods', 'chart-aging'].map("
                                "id => !!(window.Chart && Chart.getChart(document.getElementById(id))))")
    assert drawn == [True, True, True]
    await screenshot(page, "42-analytics")

    await page.goto("/close")
    await expect(page.get_by_test_id("expected-cash")).to_have_text("KES 4,500")
    await page.get_by_test_id("counted-1").fill("4400")
    await page.get_by_label("Note (optional)").fill("100 short: checked twice")
    await page.get_by_test_id("close-day").click()
    await expect(page.get_by_test_id("closed")).to_be_visible()
    await expect(page.get_by_test_id("variance-total")).to_contain_text("100")
    await expect(page.get_by_test_id("doc-day_close").get_by_role("link", name="Close report (PDF)", exact=True)).to_be_visible(timeout=20_000)
    await screenshot(page, "43-day-closed")
