"""Bad input to the money writes gets a clear answer (4xx problem+json naming a field), never a
5xx: wrong types, NUL bytes, huge numbers, odd amounts and dates, ids that do not exist."""

from __future__ import annotations

import pytest

from portal.settings import get_settings
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member, make_plan
from tests.support.servers import free_port

NASTY_TEXT = ["", " ", "\x00", "a\x00b", "x" * 5000, "٣٠٠٠", "1e3", "NaN", "-Infinity", "3,000.001", "¼", "0x10",
              "99999999999999999999", "-5", "3000.005", "<script>", "'; DROP TABLE payment; --"]
NASTY_NUMBERS = [0, -1, 2**31, 2**63, 1.5, "1", True, None, [], {}]


@pytest.fixture
async def admin(api, monkeypatch):
    # A card payment that passes every check asks Flutterwave: nothing listens here, never the real one.
    monkeypatch.setenv("FLUTTERWAVE_BASE_URL", f"http://127.0.0.1:{free_port()}/v3")
    get_settings.cache_clear()
    async with api.client(await api.key("admin")) as client:
        yield client
    monkeypatch.undo()
    get_settings.cache_clear()


async def test_money_writes_answer_bad_input_with_a_4xx_problem(admin):
    member = await make_member()
    plan = await make_plan()
    inv = await invoice_for(member, 3000)
    paid = (await pay(member, 1000, invoice_id=inv["id"])).payment["id"]
    cases = []
    for method in ("cash", "bank", "cheque", "mpesa", "card", "", "\x00", 5):
        for amount in NASTY_TEXT + [3000, None]:
            cases.append(("/api/v1/payments", {"member_id": member, "method": method, "amount": amount,
                                               "reference": "R", "phone": "0712345678"}))
    for text in NASTY_TEXT:
        cases += [("/api/v1/payments", {"member_id": member, "method": "bank", "amount": "10", "reference": text}),
                  ("/api/v1/payments", {"member_id": member, "method": "mpesa", "amount": "10", "phone": text}),
                  ("/api/v1/payments", {"member_id": member, "method": "cash", "amount": "10", "note": text,
                                        "location_id": 999999}),
                  (f"/api/v1/payments/{paid}/refund", {"reason": text, "amount": text}),
                  (f"/api/v1/payments/{paid}/refund", {"reason": "ok", "amount": text}),
                  (f"/api/v1/invoices/{inv['id']}/void", {"reason": text}) if text.strip() == "" or "\x00" in text else None,
                  (f"/api/v1/members/{member}/memberships", {"plan_id": plan, "start_date": text}),
                  ("/api/v1/invoices", {"member_id": member, "plan_id": plan, "start_date": text})]
    for number in NASTY_NUMBERS:
        cases += [("/api/v1/payments", {"member_id": number, "method": "cash", "amount": "10"}),
                  ("/api/v1/payments", {"member_id": member, "method": "cash", "amount": "10", "invoice_id": number}),
                  (f"/api/v1/members/{member}/memberships", {"plan_id": number}),
                  ("/api/v1/invoices", {"member_id": number, "plan_id": plan})]
    for path in ("/api/v1/payments", f"/api/v1/payments/{paid}/refund", f"/api/v1/invoices/{inv['id']}/void",
                 "/api/v1/invoices", f"/api/v1/members/{member}/memberships", "/api/v1/payments/999999/verify"):
        cases += [(path, None), (path, []), (path, "text"), (path, {})]
    seen = set()
    for path, body in filter(None, cases):
        r = await admin.post(path, json=body)
        assert r.status_code < 500, (path, body, r.text)
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/problem+json"), (path, body)
        seen.add(r.status_code)
    assert {400, 422} <= seen
