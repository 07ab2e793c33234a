"""What staff must look at is shown to them, with what the gateway actually sent."""

from portal.callbacks import store as callbacks
from tables.gateway import StaffAlert


async def test_staff_see_alerts_with_the_raw_callback_and_a_manager_resolves_them(alice, bob):
    stored = await callbacks.store("daraja", "stk", b'{"Body": {"oops": 1}}', outcome="malformed", note="not an STK callback")
    await callbacks.alert("malformed", "Daraja stk callback could not be read: not an STK callback", callback_id=stored.id)
    page = await alice.get("/alerts")
    assert "Unreadable callback" in page.text and "could not be read" in page.text
    assert "&#34;oops&#34;" in page.text or '"oops"' in page.text  # the raw body, escaped
    assert 'data-testid="resolve"' not in page.text  # front desk sees, managers resolve
    badge = await alice.get("/alerts/count", htmx=True)
    assert ">1<" in badge.text
    alert_id = (await StaffAlert.select(StaffAlert.id).first())["id"]
    assert (await alice.post(f"/alerts/{alert_id}/resolve")).status_code == 403
    assert (await bob.post(f"/alerts/{alert_id}/resolve")).status_code == 303
    assert 'data-testid="no-alerts"' in (await bob.get("/alerts")).text
    assert (await alice.get("/alerts/count", htmx=True)).text.strip() == ""
