"""GET /api/v1/analytics over real HTTP: the analytics page's figures for a period as JSON, money
as decimal strings, and a period that cannot be read answered with the field at fault."""

from __future__ import annotations

from datetime import timedelta

from portal.lib.clock import today
from portal.lib.money import Money
from portal.payments.service import refund_payment
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member


def _problem(r, status: int, field: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in [e["name"] for e in r.json().get("errors", [])], r.json()
    return r.json()


async def test_figures_for_a_period(reader):
    member = await make_member("Achieng", "Otieno")
    await invoice_for(member, 5000)
    cash = (await pay(member, "1000.50")).payment
    await pay(member, 2000, method="bank", reference="BANK1")
    await refund_payment(cash["id"], Money.parse("500"), "Overcharged", None)
    day = today().isoformat()
    r = await reader.get("/api/v1/analytics", params={"from": (today() - timedelta(days=6)).isoformat(), "to": day})
    assert r.status_code == 200, r.text
    data = r.json()
    assert (data["start"], data["end"], data["grain"]) == ((today() - timedelta(days=6)).isoformat(), day, "day")
    assert data["totals"] == {"received": {"amount": "3000.50", "currency": "KES"},
                              "refunds": {"amount": "500.00", "currency": "KES"},
                              "net": {"amount": "2500.50", "currency": "KES"}}
    assert len(data["series"]) == 7 and data["series"][-1]["bucket"] == day
    assert data["series"][-1]["by_method"] == {"bank": {"amount": "2000.00", "currency": "KES"},
                                               "cash": {"amount": "1000.50", "currency": "KES"}}
    methods = {m["method"]: m for m in data["by_method"]}
    assert methods["cash"]["completed"] == 1 and methods["cash"]["success_rate_percent"] == "100.0"
    assert methods["bank"]["received"] == {"amount": "2000.00", "currency": "KES"}
    assert data["collection"]["due"]["amount"] == "5000.00"  # due today, inside the period
    assert [(t["member_id"], t["payments"]) for t in data["top"]] == [(member, 2)]
    owed = {a["bucket"]: a["owed"]["amount"] for a in data["aging"]}
    assert owed["current"] == "2499.50"  # 5000 - 3000.50 + 500 reopened by the refund
    assert isinstance(data["members"]["mrr"]["amount"], str)


async def test_a_period_that_cannot_be_read_names_its_field(reader):
    _problem(await reader.get("/api/v1/analytics", params={"from": "1st of May"}), 400, "from")
    _problem(await reader.get("/api/v1/analytics", params={"from": today().isoformat()}), 422, "to")
    _problem(await reader.get("/api/v1/analytics", params={"from": "2020-01-01", "to": today().isoformat()}), 422, "from")
    _problem(await reader.get("/api/v1/analytics", params={"grain": "hour"}), 422, "grain")
    backwards = await reader.get("/api/v1/analytics", params={"from": today().isoformat(),
                                                              "to": (today() - timedelta(days=3)).isoformat()})
    _problem(backwards, 422, "to")
    default = (await reader.get("/api/v1/analytics")).json()
    assert default["end"] == today().isoformat() and default["start"] == (today() - timedelta(days=29)).isoformat()
