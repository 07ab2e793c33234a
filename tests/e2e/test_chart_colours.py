"""A method keeps its colour on every chart and in every view (issue 15, tidy): the colours used
to follow the order of the methods a period happened to hold, so cash was green in one view and
blue in the next."""

from datetime import timedelta
from decimal import Decimal

import pytest

from portal.auth import create_staff
from portal.lib.clock import now
from portal.lib.money import Money
from portal.payments.service import record_desk_payment
from tables.billing import Payment
from tests.billing.helpers import invoice_for
from tests.e2e.pages import LoginPage
from tests.factories import make_location, make_member

pytestmark = pytest.mark.browser

DRAWN = """() => {
  const colours = {};
  const revenue = Chart.getChart(document.getElementById('chart-revenue'));
  for (const set of revenue.data.datasets) colours['revenue:' + set.label] = set.backgroundColor;
  const methods = Chart.getChart(document.getElementById('chart-methods'));
  methods.data.labels.forEach((m, i) => colours['methods:' + m] = methods.data.datasets[0].backgroundColor[i]);
  const success = Chart.getChart(document.getElementById('chart-success'));
  success.data.labels.forEach((m, i) => colours['success:' + m] = success.data.datasets[0].backgroundColor[i]);
  const collection = Chart.getChart(document.getElementById('chart-collection'));
  collection.data.labels.forEach((m, i) => colours['collection:' + m] = collection.data.datasets[0].backgroundColor[i]);
  return colours;
}"""


async def test_each_method_has_one_colour_on_every_chart_whatever_the_period(db, queue, browser, live_server, page):
    desk_location = await make_location("WST", "Westlands")
    desk = await create_staff("faith", "faith-password-1", "front_desk", first_name="Faith", location_id=desk_location)
    await create_staff("mary", "mary-password-1", "manager", first_name="Mary", location_id=desk_location)
    member = await make_member("Wanjiku", "Kamau")
    await invoice_for(member, 1500)  # due today: the cash pays part of it (collection by channel)
    for i, method in enumerate(("bank", "cash")):
        await record_desk_payment(member_id=member, method=method, amount=Money(Decimal(1000)), reference="EQ1",
                                  idempotency_key=f"colour-{i}", staff_id=desk, location_id=desk_location)
    # The bank transfer was 20 days ago: the last 7 days hold cash only, the last 30 both.
    await Payment.update({Payment.completed_at: now() - timedelta(days=20), Payment.created_at: now() - timedelta(days=20)}
                         ).where(Payment.method == "bank")
    await LoginPage(page).login("mary", "mary-password-1")

    seen = {}
    for preset in ("7d", "30d"):
        await page.goto(f"/analytics?preset={preset}")
        seen[preset] = await page.evaluate(DRAWN)
    assert "revenue:bank" not in seen["7d"] and "revenue:bank" in seen["30d"]
    for view in seen.values():
        for chart in ("revenue", "methods", "success"):
            assert view[f"{chart}:cash"] == seen["7d"]["revenue:cash"], (chart, view)
    assert seen["7d"]["collection:cash"] == seen["7d"]["revenue:cash"]
    assert seen["30d"]["methods:bank"] == seen["30d"]["revenue:bank"] == seen["30d"]["success:bank"] != seen["30d"]["revenue:cash"]
