"""Every POST the API documents takes an Idempotency-Key (issue 13, "safe writes"): sent again
with the same body it answers the first answer (status and body, marked Idempotent-Replayed) and
writes nothing more; sent with the same key and another body it is refused, 422 naming the
Idempotency-Key, and writes nothing. The operations come from the OpenAPI document, so a new POST
without a case here fails the test rather than going untested."""

from __future__ import annotations

import pytest

from tables.audit import AuditLog
from tables.billing import CreditNote, Invoice, Payment
from tables.members import Member, Membership
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member, make_plan

TABLES = (Member, Membership, Invoice, Payment, CreditNote, AuditLog)


async def _rows() -> dict[str, int]:
    return {t._meta.tablename: await t.count() for t in TABLES}


async def _cases() -> dict[str, tuple[str, dict | None, str, dict | None]]:
    """Per documented POST path: (address, body) written first, then (address, body) that reuses
    the key for a different request."""
    member = await make_member()
    other = await make_member("Achieng", "Otieno", "254722000111")
    plan = await make_plan("Monthly", "3000", months=1)
    later_plan = await make_plan("Quarterly", "8000", months=3)
    to_void = await invoice_for(member, 700)
    also_void = await invoice_for(other, 900)
    paid = (await pay(member, 2000)).payment["id"]
    also_paid = (await pay(other, 1500)).payment["id"]
    return {
        "/api/v1/members": ("/api/v1/members", {"first_name": "Njeri", "last_name": "Mwangi", "phone": "0722000333"},
                            "/api/v1/members", {"first_name": "Wanjiku", "last_name": "Mwangi", "phone": "0722000333"}),
        "/api/v1/members/{member_id}/memberships": (
            f"/api/v1/members/{member}/memberships", {"plan_id": plan},
            f"/api/v1/members/{member}/memberships", {"plan_id": later_plan}),
        "/api/v1/invoices": ("/api/v1/invoices", {"member_id": other, "plan_id": plan},
                             "/api/v1/invoices", {"member_id": other, "plan_id": later_plan}),
        "/api/v1/invoices/{invoice_id}/void": (
            f"/api/v1/invoices/{to_void['id']}/void", {"reason": "Raised by mistake"},
            f"/api/v1/invoices/{also_void['id']}/void", {"reason": "Raised by mistake"}),
        "/api/v1/payments": ("/api/v1/payments", {"member_id": member, "method": "cash", "amount": "500"},
                             "/api/v1/payments", {"member_id": member, "method": "cash", "amount": "600"}),
        "/api/v1/payments/{payment_id}/verify": (f"/api/v1/payments/{paid}/verify", None,
                                                 f"/api/v1/payments/{also_paid}/verify", None),
        "/api/v1/payments/{payment_id}/refund": (
            f"/api/v1/payments/{paid}/refund", {"reason": "Charged twice", "amount": "100"},
            f"/api/v1/payments/{paid}/refund", {"reason": "Charged twice", "amount": "200"}),
    }


@pytest.fixture
async def admin(api):
    async with api.client(await api.key("read", "members", "payments")) as client:
        yield client


async def test_every_post_replays_its_first_answer_and_refuses_another_body(admin):
    documented = sorted(path for path, ops in (await admin.get("/api/v1/openapi.json")).json()["paths"].items()
                        if "post" in ops)
    cases = await _cases()
    assert documented == sorted(cases), "a POST without a case here (or a case for no POST)"
    for n, (name, (path, body, other_path, other_body)) in enumerate(sorted(cases.items())):
        headers = {"Idempotency-Key": f"sweep-{n}"}
        first = await admin.post(path, json=body, headers=headers)
        assert first.status_code in (200, 201), f"{name}: {first.status_code} {first.text}"
        assert "idempotent-replayed" not in first.headers, name
        written = await _rows()
        again = await admin.post(path, json=body, headers=headers)
        assert (again.status_code, again.json()) == (first.status_code, first.json()), name
        assert again.headers["idempotent-replayed"] == "true", name
        assert await _rows() == written, f"{name}: the repeat wrote something"
        refused = await admin.post(other_path, json=other_body, headers=headers)
        assert refused.status_code == 422, f"{name}: {refused.status_code} {refused.text}"
        assert refused.headers["content-type"].startswith("application/problem+json"), name
        assert [e["name"] for e in refused.json()["errors"]] == ["Idempotency-Key"], name
        assert "different body" in refused.json()["detail"], name
        assert await _rows() == written, f"{name}: the refused request wrote something"
