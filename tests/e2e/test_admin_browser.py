"""piccolo-admin in a real browser under its own Content-Security-Policy: reached through the
portal's login, its styles and scripts load (no CSP violation), so its icons are icons."""

import pytest

from portal.auth import create_staff
from tests.e2e.pages import LoginPage

pytestmark = pytest.mark.browser


async def test_an_admin_opens_piccolo_admin_and_nothing_is_blocked(db, queue, browser, live_server, page):
    from playwright.async_api import expect

    await create_staff("dora", "dora-password-1", "admin", first_name="Dora")
    blocked = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    await LoginPage(page).login("dora", "dora-password-1")
    await page.goto("/admin/")
    await expect(page.get_by_role("link", name="audit log")).to_be_visible(timeout=15000)
    # Font Awesome's icons are sized by the styles it injects: blocked, they fill the page.
    icon = page.locator("svg.svg-inline--fa:visible").first
    await expect(icon).to_be_visible()
    box = await icon.bounding_box()
    assert box["height"] < 64, box
    assert blocked == []
