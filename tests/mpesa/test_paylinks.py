"""Pay links: signed, expiring, revocable; the member pays on the public page."""

import re

import httpx

from portal import paylinks
from tables.billing import PayLink, Payment
from tables.members import Member
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member
from tests.mpesa.conftest import PHONES, wait_for_status
from tests.support.client import PortalClient


async def _link_for(alice, invoice_id: int) -> str:
    r = await alice.post(f"/invoices/{invoice_id}/paylink")
    assert r.status_code == 303
    page = await alice.get(r.headers["location"])
    url = re.search(r'data-testid="paylink-url" [^>]*|value="([^"]+)" data-testid="paylink-url"', page.text)
    assert 'data-testid="paylink-qr"' in page.text and "<svg" in page.text
    return re.search(r'value="(http[^"]+/pay/[^"]+)"', page.text).group(1)


async def test_a_member_opens_the_link_and_sees_what_is_owed_and_nothing_else(app, alice):
    member = await make_member("Wanjiku", "Kamau")
    inv = await invoice_for(member, 3000)
    await pay(member, 1000)
    url = await _link_for(alice, inv["id"])
    token = url.rsplit("/pay/", 1)[1]
    async with PortalClient(app) as phone:
        page = await phone.get(f"/pay/{token}")
        assert page.status_code == 200
        assert "Hi Wanjiku" in page.text and 'data-testid="owed">KES 2,000<' in page.text
        assert "Kamau" not in page.text  # first name only


async def test_expired_revoked_and_tampered_links_reveal_nothing(app, alice):
    member = await make_member("Wanjiku", "Kamau")
    inv = await invoice_for(member, 3000)
    first = (await _link_for(alice, inv["id"])).rsplit("/pay/", 1)[1]
    second = (await _link_for(alice, inv["id"])).rsplit("/pay/", 1)[1]
    async with PortalClient(app) as phone:
        replaced = await phone.get(f"/pay/{first}")
        assert replaced.status_code == 410 and "replaced by a newer link" in replaced.text
        link_id, secret, sig = second.split(".")
        tampered = await phone.get(f"/pay/{link_id}.{secret[:-1]}x.{sig}")
        assert tampered.status_code == 404 and "not a valid payment link" in tampered.text
        assert "Wanjiku" not in tampered.text and "3,000" not in tampered.text
        await PayLink.raw("UPDATE pay_link SET expires_at = now() - interval '1 minute'")
        expired = await phone.get(f"/pay/{second}")
        assert expired.status_code == 410 and "expired" in expired.text and "Wanjiku" not in expired.text
    assert (await alice.post(f"/invoices/{inv['id']}/paylink/revoke")).status_code == 303


async def test_the_member_pays_by_mpesa_from_the_link(live, worker, alice):
    member = await make_member("Achieng", "Odhiambo", phone=PHONES["success"])
    inv = await invoice_for(member, 3000)
    token = (await _link_for(alice, inv["id"])).rsplit("/pay/", 1)[1]
    async with httpx.AsyncClient(base_url=live.portal) as phone:
        page = await phone.get(f"/pay/{token}")
        csrf = phone.cookies["portal_csrf"]
        r = await phone.post(f"/pay/{token}/mpesa", data={"phone": "0700 000 001", "_csrf_token": csrf})
        assert r.status_code == 303
        pid = int(r.headers["location"].rsplit("/", 1)[1])
        await wait_for_status(pid, {"completed"})
        status = await phone.get(r.headers["location"])
        assert 'data-status="completed"' in status.text and "Thank you" in status.text
        again = await phone.get(f"/pay/{token}")
        assert 'data-testid="settled"' in again.text
