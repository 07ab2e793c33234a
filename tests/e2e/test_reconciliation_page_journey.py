"""A manager reconciles a day across channels at /reconcile: the month's grid shows the day red,
the day's page lists the two differences (an M-Pesa payment nobody matched, a bank credit the
portal never recorded); one is credited to a member, the other marked not ours, and the day is
marked reconciled. Screenshots 94-… at 1366 and 390 wide."""

from datetime import timedelta
from decimal import Decimal

import pytest

from portal.auth import create_staff
from portal.lib.clock import local, now, today
from portal.reconcile import book, statements
from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.e2e.test_reconcile_journey import _statement

pytestmark = pytest.mark.browser


async def _shots(page, name: str) -> None:
    await page.set_viewport_size({"width": 1366, "height": 860})
    await screenshot(page, name)
    await page.set_viewport_size({"width": 390, "height": 844})
    await screenshot(page, f"{name}-phone")
    await page.set_viewport_size({"width": 1366, "height": 860})


async def test_a_manager_settles_and_reconciles_a_day(db, queue, browser, live_server, page):
    from playwright.async_api import expect

    await create_staff("mary", "mary-password-1", "manager", first_name="Mary")
    # M-Pesa: 3,000 confirmed, 8,000 credited by the import, 500 for account "GYM" (nobody).
    await statements.import_statement((await _statement()).encode(), filename="ORG_174379_statement.csv")
    # Bank: a credit on the bank statement the desk never recorded.
    await book.record([book.Line("bank", "FT26341XYZ", today(), Decimal("4500"), "bank_statement",
                                 "SALARY ADV J OTIENO", "J OTIENO")])
    d = today().isoformat()
    # The statement's lines are 10-40 min old: within the gym's first 90 minutes of a day they fall
    # on the day before (Nairobi's midnight is 21:00 UTC: UTC's date said nothing about it).
    if local(now() - timedelta(minutes=90)).date() != today():
        pytest.skip("run too close to the gym's midnight")

    await LoginPage(page).login("mary", "mary-password-1")
    await page.get_by_test_id("nav-more").click()
    await page.get_by_role("link", name="Reconciliation", exact=True).click()
    await expect(page.get_by_test_id(f"cell-{d}-mpesa_paybill")).to_have_attribute("data-state", "red")
    await expect(page.get_by_test_id(f"cell-{d}-bank")).to_have_attribute("data-state", "red")
    await _shots(page, "94-reconciliation-month")

    await page.get_by_test_id(f"open-{d}").click()
    await expect(page.get_by_test_id("diff")).to_have_count(2)
    await _shots(page, "95-reconciliation-day")

    nobody = page.locator('[data-key="mpesa:TLA1NOBODY"]')
    await nobody.locator("select[name=action]").select_option("credit")
    await nobody.locator("input[name=member]").fill("PTF0102")
    await nobody.locator("input[name=reason]").fill("Otieno typed GYM as the account")
    await nobody.get_by_test_id("settle").click()
    await expect(page.get_by_test_id("done")).to_contain_text("Credited")
    await expect(page.get_by_test_id(f"cell-{d}-mpesa_paybill")).to_have_attribute("data-state", "green")

    bank = page.locator('[data-key="bank:FT26341XYZ"]')
    await bank.locator("select[name=action]").select_option("not_ours")
    await bank.locator("input[name=reason]").fill("The landlord's deposit, not the gym's takings")
    await bank.get_by_test_id("settle").click()
    await expect(page.get_by_test_id(f"cell-{d}-bank")).to_have_attribute("data-state", "green")

    await page.get_by_test_id("mark-reconciled").click()
    await expect(page.get_by_test_id("reconciled-by")).to_contain_text("Reconciled by mary")
    await _shots(page, "96-reconciliation-day-reconciled")
    await page.get_by_test_id("to-month").click()
    await expect(page.get_by_test_id(f"reconciled-{d}")).to_contain_text("mary")
    await _shots(page, "97-reconciliation-month-reconciled")
