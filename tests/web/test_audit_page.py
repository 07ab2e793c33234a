"""Managers read the audit log in the portal: newest first, a page at a time, narrowed by staff
member and by what was changed, in the same few queries however long the log is."""

import re

from portal import audit
from tables.staff import Staff


async def _staff_id(username: str) -> int:
    return (await Staff.objects().where(Staff.user.username == username).first()).id


def _actions(html: str) -> list[str]:
    return re.findall(r'data-testid="audit-action">([^<]*)<', html)


async def test_a_manager_reads_the_log_newest_first_and_filters_it(bob, alice):
    alice_id, bob_id = await _staff_id("alice"), await _staff_id("bob")
    await audit.record("member.created", "member", 7, staff_id=alice_id, details={"name": "Wanjiku"})
    await audit.record("plan.updated", "plan", 2, staff_id=bob_id, reason="new price")
    await audit.record("invoice.voided", "invoice", 9, staff_id=alice_id, reason="duplicate <b>")
    await audit.record("payment.reconciled", "payment", 3)  # the system: no staff member

    r = await bob.get("/audit")
    assert r.status_code == 200
    # The two logins (the fixtures) come first in time, then the four above; newest at the top.
    assert _actions(r.text)[:4] == ["payment.reconciled", "invoice.voided", "plan.updated", "member.created"]
    assert "duplicate &lt;b&gt;" in r.text and "System" in r.text

    mine = await bob.get(f"/audit?staff={alice_id}")
    assert _actions(mine.text) == ["invoice.voided", "member.created", "staff.login"]
    plans = await bob.get("/audit?entity=plan")
    assert _actions(plans.text) == ["plan.updated"]
    both = await bob.get(f"/audit?staff={alice_id}&entity=member", htmx=True)
    assert _actions(both.text) == ["member.created"] and "<h1>" not in both.text  # the table alone


async def test_the_log_is_paged_in_a_fixed_number_of_queries(bob):
    one_page = await bob.get("/audit")
    for i in range(audit.PAGE_SIZE + 5):
        await audit.record("member.updated", "member", i)
    first = await bob.get("/audit")
    assert len(_actions(first.text)) == audit.PAGE_SIZE
    assert 'data-testid="next-page"' in first.text
    assert int(first.headers["x-query-count"]) == int(one_page.headers["x-query-count"])
    second = await bob.get("/audit?page=2")
    assert len(_actions(second.text)) == 5 + 1  # the rest, and bob's login, the oldest entry
    assert _actions(second.text)[-1] == "staff.login"


async def test_front_desk_may_not_read_the_audit_log(alice):
    assert (await alice.get("/audit")).status_code == 403
    assert 'href="/audit"' not in (await alice.get("/members")).text


async def test_the_manager_navigation_links_to_it(bob):
    assert 'href="/audit"' in (await bob.get("/members")).text


async def test_bad_filters_are_answered_not_crashed(bob):
    for query in ("staff=%C2%B2", "staff=99999999999999", "staff=abc", "entity=%3Cscript%3E", "page=99999999999999999999"):
        r = await bob.get(f"/audit?{query}")
        assert r.status_code in (200, 422), (query, r.status_code)
    r = await bob.get("/audit?staff=abc")
    assert r.status_code == 422 and "Choose a staff member from the list" in r.text
