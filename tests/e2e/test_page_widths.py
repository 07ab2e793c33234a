"""Staff pages at the widths the desk and managers use (issue 15, tidy): nothing scrolls sideways
on a phone (390 px) or a small tablet (768 px), wide tables scroll inside their own box, and no
amount is cut off in its card at those widths or on the desk's 1366 px screen."""

import pytest

from tests.e2e.conftest import screenshot
from tests.e2e.pages import LoginPage
from tests.e2e.test_manager_journey import _gym

pytestmark = pytest.mark.browser

PAGES = ["/members", "/member", "/payments", "/dues", "/renewals", "/analytics?preset=30d", "/close", "/messages",
         "/mpesa/unmatched", "/alerts", "/plans", "/audit", "/staff"]

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
