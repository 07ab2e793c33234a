"""Invoices and memberships through the API over real HTTP: list with filters and cursors, detail
with lines and allocations, invoicing a plan (the member page's enrolment), voiding with a reason."""

from __future__ import annotations

from datetime import timedelta

from portal.lib.clock import today
from tables.audit import AuditLog
from tables.members import Membership
from tests.billing.helpers import assert_books_agree, invoice_for, pay
from tests.factories import make_member, make_plan


def _problem(r, status: int, field: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if field:
        assert field in [e["name"] for e in r.json().get("errors", [])], r.json()
    return r.json()


async def test_invoices_list_filters_and_pages(reader):
    a, b = await make_member("Achieng", "Otieno", phone="254711000001"), await make_member("Barasa", "W", phone="254711000002")
    first = await invoice_for(a, 1000)
    await invoice_for(b, 2000)
    third = await invoice_for(a, 3000)
    await pay(a, 1000, invoice_id=first["id"])
    items = (await reader.get("/api/v1/invoices")).json()["items"]
    assert len(items) == 3 and [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)
    mine = (await reader.get("/api/v1/invoices", params={"member": a})).json()["items"]
    assert [i["id"] for i in mine] == [third["id"], first["id"]]
    paid = (await reader.get("/api/v1/invoices", params={"member": a, "status": "paid"})).json()["items"]
    assert [(i["id"], i["balance"]["amount"], i["paid"]["amount"]) for i in paid] == [(first["id"], "0.00", "1000.00")]
    _problem(await reader.get("/api/v1/invoices", params={"status": "unpaid"}), 400, "status")
    _problem(await reader.get("/api/v1/invoices", params={"member": "x"}), 400, "member")
    page = (await reader.get("/api/v1/invoices", params={"limit": 2})).json()
    rest = (await reader.get("/api/v1/invoices", params={"limit": 2, "cursor": page["next_cursor"]})).json()
    assert [i["id"] for i in page["items"] + rest["items"]] == [i["id"] for i in items] and rest["next_cursor"] is None


async def test_invoice_detail_has_lines_allocations_and_balance(reader):
    member = await make_member()
    inv = await invoice_for(member, 3000)
    p = (await pay(member, "1000.50", invoice_id=inv["id"])).payment
    r = await reader.get(f"/api/v1/invoices/{inv['id']}")
    assert r.status_code == 200
    detail = r.json()
    assert detail["invoice"]["status"] == "partially_paid"
    assert detail["invoice"]["total"] == {"amount": "3000.00", "currency": "KES"}
    assert detail["invoice"]["balance"]["amount"] == "1999.50"
    (line,) = detail["lines"]
    assert line["total"]["amount"] == "3000.00" and line["vat_rate"] == "16.00"
    assert [(x["payment_id"], x["receipt_number"], x["amount"]["amount"]) for x in detail["allocations"]] == [
        (p["id"], p["receipt_number"], "1000.50")]
    _problem(await reader.get("/api/v1/invoices/999999"), 404)


async def test_invoice_for_a_plan_puts_the_member_on_it(api, writer):
    member = await make_member()
    plan = await make_plan("Quarterly", "8000", months=3)
    r = await writer.post("/api/v1/invoices", json={"member_id": member, "plan_id": plan, "start_date": today().isoformat()},
                          headers={"Idempotency-Key": "q-1"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["invoice"]["kind"] == "new" and out["invoice"]["total"]["amount"] == "8000.00"
    assert out["invoice"]["membership_id"] == out["membership"]["id"] and out["membership"]["status"] == "unpaid"
    assert out["membership"]["end_date"] > out["membership"]["start_date"]
    again = await writer.post("/api/v1/invoices", json={"member_id": member, "plan_id": plan,
                                                        "start_date": today().isoformat()}, headers={"Idempotency-Key": "q-1"})
    assert again.json() == out and await Membership.count() == 1
    # The member page's rules: no second membership over the same dates, an active plan only.
    overlap = await writer.post("/api/v1/invoices", json={"member_id": member, "plan_id": plan})
    assert "renew" in _problem(overlap, 422, "start_date")["detail"]
    retired = await make_plan("Old", "1000", active=False)
    _problem(await writer.post("/api/v1/invoices", json={"member_id": member, "plan_id": retired,
                                                         "start_date": (today() + timedelta(days=200)).isoformat()}),
             422, "plan_id")
    _problem(await writer.post("/api/v1/invoices", json={"member_id": 999999, "plan_id": plan}), 422, "member_id")
    _problem(await writer.post("/api/v1/invoices", json={"member_id": member}), 400, "plan_id")
    async with api.client(await api.key("read")) as c:
        assert (await c.post("/api/v1/invoices", json={"member_id": member, "plan_id": plan})).status_code == 403


async def test_memberships_list_and_put_on_plan(writer):
    member = await make_member()
    plan = await make_plan("Monthly", "3000")
    assert (await writer.get(f"/api/v1/members/{member}/memberships")).json() == []
    r = await writer.post(f"/api/v1/members/{member}/memberships", json={"plan_id": plan})
    assert r.status_code == 201, r.text
    assert r.json()["membership"]["start_date"] == today().isoformat()
    listed = (await writer.get(f"/api/v1/members/{member}/memberships")).json()
    assert [(m["plan_name"], m["status"], m["price"]["amount"]) for m in listed] == [("Monthly", "unpaid", "3000.00")]
    invoices = (await writer.get("/api/v1/invoices", params={"member": member})).json()["items"]
    assert [i["id"] for i in invoices] == [r.json()["invoice"]["id"]]
    _problem(await writer.get("/api/v1/members/999999/memberships"), 404)
    _problem(await writer.post("/api/v1/members/999999/memberships", json={"plan_id": plan}), 404)
    _problem(await writer.post(f"/api/v1/members/{member}/memberships", json={"plan_id": plan, "start_date": "soon"}),
             400, "start_date")


async def test_void_needs_a_reason_and_the_payments_scope(api, writer):
    member = await make_member()
    inv = await invoice_for(member, 3000)
    await pay(member, 1000, invoice_id=inv["id"])
    assert (await writer.post(f"/api/v1/invoices/{inv['id']}/void", json={"reason": "Mistake"})).status_code == 403
    async with api.client(await api.key("payments", name="Accounts")) as c:
        _problem(await c.post(f"/api/v1/invoices/{inv['id']}/void", json={"reason": " "}), 422, "reason")
        _problem(await c.post(f"/api/v1/invoices/{inv['id']}/void", json={}), 400, "reason")
        r = await c.post(f"/api/v1/invoices/{inv['id']}/void", json={"reason": "Raised twice"})
        assert r.status_code == 200, r.text
        assert r.json()["invoice"]["status"] == "void" and r.json()["invoice"]["void_reason"] == "Raised twice"
        assert r.json()["credit_note"].startswith("CRN-")
        _problem(await c.post(f"/api/v1/invoices/{inv['id']}/void", json={"reason": "Again"}), 409)
        _problem(await c.post("/api/v1/invoices/999999/void", json={"reason": "x"}), 404)
    row = await AuditLog.select(AuditLog.details, AuditLog.reason).where(AuditLog.action == "invoice.voided").first()
    assert row["reason"] == "Raised twice" and '"Accounts"' in row["details"]
    await assert_books_agree()
