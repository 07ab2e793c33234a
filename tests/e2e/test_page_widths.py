"""Staff pages at the widths the desk and managers use (issue 15, tidy): nothing scrolls sideways
on a phone (390 px) or a small tablet (768 px), wide tables scroll inside their own box, and no
amount is cut off in its card at those widths or on the desk's 1366 px screen."""

import pytest

from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.e2e.test_manager_journey import _gym

pytestmark = pytest.mark.browser

PAGES = ["/members", "/member", "/payments", "/dues", "/renewals", "/analytics?preset=30d", "/close", "/messages",
         "/mpesa/unmatched", "/alerts", "/plans", "/audit", "/staff", "/money-edits", "/checkin/visits",
         "/catalogue", "/sales/new", "/discounts/approvals", "/discounts/promo-codes", "/reconcile"]

# The page wider than the screen (tables scroll inside their own box instead), and a figure card
# whose amount runs out of its box. The cards are checked holding the longest amount the books
# can hold (numeric(12,2)), written into each one, since a test gym's totals are short.
PROBE = """() => {
  const out = {page: document.documentElement.scrollWidth - document.documentElement.clientWidth, clipped: []};
  for (const el of document.querySelectorAll('.stat strong')) {
    if (/KES/.test(el.textContent)) el.textContent = 'KES 9,999,999,999.99';
  }
  for (const el of document.querySelectorAll('.stat')) {
    const box = el.getBoundingClientRect();
    for (const part of el.children) {
      const r = part.getBoundingClientRect();
      if (r.right > box.right + 0.5 || part.scrollWidth > part.clientWidth + 1) out.clipped.push(el.textContent.trim().slice(0, 60));
    }
  }
  // On the desk's screen a table fits its box: nothing to scroll to reach a row's buttons.
  if (window.innerWidth >= 1366) {
    for (const wrap of document.querySelectorAll('.table-wrap')) {
      if (wrap.scrollWidth > wrap.clientWidth + 1) out.clipped.push('table scrolls: ' + wrap.textContent.trim().slice(0, 40));
    }
  }
  out.page = Math.max(out.page, document.documentElement.scrollWidth - document.documentElement.clientWidth);
  return out;
}"""


@pytest.mark.parametrize("width, height", [(390, 800), (768, 1024), (1366, 900)])
async def test_staff_pages_fit_narrow_screens(db, queue, browser, live_server, width, height):
    await _gym()
    # A sent SMS is mostly its pay link, one long word: the messages table showed it unbroken and
    # scrolled at 1366 px whenever the worker had written one before the page was read.
    from tables.messages import Message

    await Message.insert(Message(channel="sms", kind="pay_link", to_address="+254712000001", status="sent",
                                 dedupe_key="width-probe", body_text="Pay: https://portal.example/pay/" + "x" * 150))
    context = await browser.new_context(base_url=live_server, viewport={"width": width, "height": height})
    page = await context.new_page()
    await LoginPage(page).login("mary", "mary-password-1")
    await page.goto("/members")
    member_href = await page.locator("a[href^='/members/']").first.get_attribute("href")
    problems = {}
    for path in PAGES:
        await page.goto(member_href if path == "/member" else path)
        await page.wait_for_load_state("networkidle")
        found = await page.evaluate(PROBE)
        if found["page"] > 0 or found["clipped"]:
            problems[path] = found
        await screenshot(page, f"width-{width}-{path.strip('/').split('?')[0].replace('/', '-') or 'home'}")
    await context.close()
    assert problems == {}


async def test_the_menu_is_one_line_on_the_desk_screen_and_more_opens_by_keyboard(db, queue, browser, live_server):
    from playwright.async_api import expect

    from portal.auth import create_staff

    await _gym()
    await create_staff("ann", "ann-password-1", "admin", first_name="Ann")
    context = await browser.new_context(base_url=live_server, viewport={"width": 1366, "height": 900})
    page = await context.new_page()
    for login in ("faith", "mary", "ann"):
        await page.context.clear_cookies()
        await LoginPage(page).login(login, f"{login}-password-1")
        await page.goto("/dues")
        # The brand, every menu item and who is logged in, on one row.
        middles = await page.evaluate(
            "() => [...document.querySelectorAll('.topbar .brand, .topbar nav > a, .topbar nav > details > summary, .topbar .me')]"
            ".map(e => { const r = e.getBoundingClientRect(); return Math.round(r.top + r.height / 2); })")
        assert max(middles) - min(middles) <= 4, (login, middles)
    # The admin's set-up pages are under More, by keyboard: focus it, Enter opens, Escape closes.
    more = page.get_by_test_id("nav-more")
    await more.locator("summary").focus()
    await page.keyboard.press("Enter")
    await expect(more.get_by_role("link", name="API keys")).to_be_visible()
    await screenshot(page, "menu-more-open")
    await page.keyboard.press("Escape")
    await expect(more.get_by_role("link", name="API keys")).to_be_hidden()
    await more.locator("summary").click()
    await more.get_by_role("link", name="Staff").click()
    await expect(page).to_have_url(f"{live_server}/staff")
    await expect(page.get_by_test_id("nav-more").locator("summary")).to_have_attribute("aria-current", "page")
    await context.close()
