"""The access hold at the front desk: a member with an invoice more than HOLD_GRACE_DAYS (14)
overdue is flagged on their page (with the invoice and how late it is) and in search results;
paying clears it, and an invoice still inside the grace period flags nothing."""

import re
from datetime import timedelta

from portal.lib.clock import today
from portal.members import members
from tables.billing import Invoice
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member


async def _overdue(member: int, amount, days: int) -> dict:
    inv = await invoice_for(member, amount)
    await Invoice.update({Invoice.due_date: today() - timedelta(days=days)}).where(Invoice.id == inv["id"])
    return inv


def _search_row(html: str, name: str) -> str:
    """The results table's row for one member."""
    rows = re.findall(r"<tr>.*?</tr>", html, re.S)
    (row,) = [r for r in rows if name in r]
    return row


async def test_twenty_days_overdue_is_on_hold_on_the_page_and_in_search_until_paid(alice, settings):
    assert settings.hold_grace_days == 14
    late = await make_member("Otieno", "Late", phone="254711000001")
    fine = await make_member("Otieno", "Fine", phone="254711000002")
    inv = await _overdue(late, 3000, 20)
    await pay(late, 1000, invoice_id=inv["id"])  # a part-payment does not clear it: 2,000 still owed
    await _overdue(fine, 3000, 3)

    page = await alice.get(f"/members/{late}")
    assert page.status_code == 200 and 'data-testid="hold"' in page.text
    reason = re.search(r'data-testid="hold-reason">(.*?)</p>', page.text).group(1)
    assert re.sub(r"<.*?>", "", reason) == f"On hold. Invoice {inv['number']} is 20 days overdue. Paying clears the hold."

    found = await alice.get("/members?q=otieno", htmx=True)
    assert 'data-testid="hold"' in _search_row(found.text, "Otieno Late")
    assert 'data-testid="hold"' not in _search_row(found.text, "Otieno Fine")

    await pay(late, 2000)  # the rest: nothing overdue any more
    page = await alice.get(f"/members/{late}")
    assert 'data-testid="hold"' not in page.text and "hold-reason" not in page.text
    found = await alice.get("/members?q=otieno", htmx=True)
    assert 'data-testid="hold"' not in found.text


async def test_ten_days_overdue_is_inside_the_grace_period(alice):
    member = await make_member("Achieng", "Soon")
    await _overdue(member, 3000, 10)
    page = await alice.get(f"/members/{member}")
    assert page.status_code == 200 and 'data-testid="hold"' not in page.text
    found = await alice.get("/members?q=achieng", htmx=True)
    assert "Achieng Soon" in found.text and 'data-testid="hold"' not in found.text


async def test_the_hold_names_the_most_overdue_invoice_and_counts_the_others(db):
    member = await make_member()
    await _overdue(member, 1000, 16)
    oldest = await _overdue(member, 2000, 45)
    await _overdue(member, 500, 14)  # exactly the grace period: not yet past it
    row = await members.member_with_hold(member)
    assert (row["hold_invoice"], row["hold_days"], row["hold_invoices"]) == (oldest["number"], 45, 2)
    # The grace period is measured from the day asked about: a month earlier, nothing was late.
    earlier = await members.member_with_hold(member, on=today() - timedelta(days=31))
    assert (earlier["hold_invoice"], earlier["hold_invoices"]) == (None, 0)
    assert (await members.search_members("wanjiku")).rows[0]["hold"] is True
