"""Export CSV exports what the payments list shows, filters applied live (htmx) included."""

import csv
import io

import pytest

from portal.auth import create_staff
from tests.billing.helpers import invoice_for, pay
from tests.e2e.pages import LoginPage
from tests.factories import make_member

pytestmark = pytest.mark.browser


async def test_the_export_link_follows_a_filter_chosen_on_the_page(db, queue, browser, live_server, page):
    from playwright.async_api import expect

    await create_staff("mary", "mary-password-1", "manager", first_name="Mary")
    member = await make_member("Achieng", "Odhiambo")
    await invoice_for(member, 5000)
    await pay(member, 3000, method="cash")
    await pay(member, 1500, method="bank", reference="KCB-99812")
    await LoginPage(page).login("mary", "mary-password-1")

    await page.goto("/payments")
    await expect(page.get_by_test_id("total-count")).to_have_text("2")
    await page.get_by_label("Method").select_option("bank")
    await expect(page.get_by_test_id("total-count")).to_have_text("1")
    export = page.get_by_test_id("export-csv")
    await expect(export).to_have_attribute("href", "/payments.csv?method=bank")

    response = await page.request.get(await export.get_attribute("href"))
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(r["method"], r["reference"]) for r in rows] == [("bank", "KCB-99812")]
