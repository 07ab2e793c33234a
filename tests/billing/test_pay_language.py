"""The pay page and the thank-you page speak the member's language, and the member may switch."""

import re

from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member
from tests.support.client import PortalClient


async def _token(alice, invoice_id: int) -> str:
    r = await alice.post(f"/invoices/{invoice_id}/paylink")
    assert r.status_code == 303
    page = await alice.get(r.headers["location"])
    return re.search(r'value="http[^"]+/pay/([^"]+)"', page.text).group(1)


async def test_a_swahili_member_gets_the_pay_page_in_swahili_and_may_switch(app, alice):
    member = await make_member("Achieng", "Odhiambo", language="sw")
    inv = await invoice_for(member, 1500)
    token = await _token(alice, inv["id"])
    async with PortalClient(app) as phone:
        page = await phone.get(f"/pay/{token}")
        assert page.status_code == 200 and '<html lang="sw">' in page.text
        assert "Habari Achieng" in page.text and "Kiasi cha kulipa" in page.text and "Tuma ombi la M-Pesa" in page.text
        assert 'data-testid="owed">KES 1,500<' in page.text  # amounts as in English
        assert "Amount due" not in page.text
        # The switch: English chosen, remembered for the visit (the thank-you page after a POST too).
        english = await phone.get(f"/pay/{token}?lang=en")
        assert '<html lang="en">' in english.text and "Amount due" in english.text and "Hi Achieng" in english.text
        assert "pay_lang=en" in english.headers["set-cookie"] and "HttpOnly" in english.headers["set-cookie"]
        assert "Path=/pay" in english.headers["set-cookie"]
        again = await phone.get(f"/pay/{token}")
        assert "Amount due" in again.text and "Kiasi cha kulipa" not in again.text
        back = await phone.get(f"/pay/{token}?lang=sw")
        assert "Kiasi cha kulipa" in back.text and 'data-testid="lang-en"' in back.text


async def test_the_thank_you_page_is_in_the_members_language(app, alice):
    member = await make_member("Kiprono", "Chebet", language="sw")
    inv = await invoice_for(member, 3000)
    token = await _token(alice, inv["id"])
    recorded = await pay(member, 3000, invoice_id=inv["id"])
    async with PortalClient(app) as phone:
        page = await phone.get(f"/pay/{token}/payments/{recorded.payment['id']}")
        assert page.status_code == 200 and 'data-testid="thank-you"' in page.text
        assert "Asante!" in page.text and "Tumepokea KES 3,000." in page.text
        assert "<dd>Pesa taslimu</dd>" in page.text  # the method, in Swahili
        assert "Pakua risiti (PDF)" in page.text and "Thank you!" not in page.text
        settled = await phone.get(f"/pay/{token}")
        assert "Ankara hii imeshalipwa. Asante!" in settled.text


async def test_an_english_member_and_unusable_links_stay_english(app, alice):
    member = await make_member("Wanjiku", "Kamau")
    inv = await invoice_for(member, 3000)
    token = await _token(alice, inv["id"])
    async with PortalClient(app) as phone:
        page = await phone.get(f"/pay/{token}")
        assert '<html lang="en">' in page.text and "Amount due" in page.text and "pay_lang" not in page.headers.get("set-cookie", "")
        bad = await phone.get("/pay/1.nope.abc")
        assert bad.status_code == 404 and "This link can't be used" in bad.text
        # A member who chose Swahili on their link reads the refusal in Swahili too.
        bad_sw = await phone.get("/pay/1.nope.abc?lang=sw")
        assert bad_sw.status_code == 404 and "Kiungo hiki hakiwezi kutumika" in bad_sw.text


async def test_a_wrong_phone_is_explained_in_swahili(app, alice):
    member = await make_member("Mwende", "Mutua", language="sw")
    inv = await invoice_for(member, 2000)
    token = await _token(alice, inv["id"])
    async with PortalClient(app) as phone:
        await phone.get(f"/pay/{token}")
        page = await phone.post(f"/pay/{token}/mpesa", {"phone": "", "attempt": "a1"})
        assert page.status_code == 422 and 'data-testid="error-phone">Weka nambari ya simu<' in page.text, page.text
        assert "Kiasi cha kulipa" in page.text
