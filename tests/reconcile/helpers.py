"""Paying the sandbox's Paybill, losing confirmations, and reading the ledger's M-Pesa money."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx

from portal.gateways.daraja import DarajaClient
from portal.payments.mpesa.c2b import register_c2b_urls
from tables.gateway import GatewayCallback
from tables.ledger import LedgerLeg
from tables.members import Member

CUSTOMER = 254708374149


async def register(live) -> None:
    assert await register_c2b_urls(live.settings) == "Success"


async def lose_next(live, n: int) -> None:
    async with httpx.AsyncClient(base_url=live.sandbox) as http:
        r = await http.post("/_sandbox/daraja/c2b/lose", json={"next": n})
        assert r.status_code == 200, r.text


async def page_size(live, n: int) -> None:
    async with httpx.AsyncClient(base_url=live.sandbox) as http:
        r = await http.post("/_sandbox/daraja/pull/settings", json={"page_size": n})
        assert r.status_code == 200, r.text


async def pay_paybill(live, amount: int, account: str, msisdn: int = CUSTOMER) -> str:
    """A customer pays the Paybill (simulate API); returns the TransID once M-Pesa completed it
    and posted its confirmation (or lost it, as the sandbox was told)."""
    async with DarajaClient(live.settings) as client:
        token = await client.access_token()
    async with httpx.AsyncClient(base_url=live.sandbox) as http:
        known = {p["trans_id"] for p in (await http.get("/_sandbox/daraja/c2b")).json()["payments"]}
        r = await http.post("/mpesa/c2b/v2/simulate", headers={"Authorization": f"Bearer {token}"}, json={
            "ShortCode": int(live.settings.daraja_shortcode), "CommandID": "CustomerPayBillOnline",
            "Amount": amount, "Msisdn": msisdn, "BillRefNumber": account})
        assert r.status_code == 200 and r.json()["ResponseCode"] == "0", r.text
        for _ in range(400):
            payments = (await http.get("/_sandbox/daraja/c2b")).json()["payments"]
            done = [p for p in payments if p["trans_id"] not in known and p["bill_ref_number"] == account
                    and (p["notified"] or "confirmation lost" in p["note"] or p["state"] in ("rejected", "cancelled"))]
            if done:
                assert done[0]["state"] == "completed", done[0]
                return done[0]["trans_id"]
            await asyncio.sleep(0.05)
    raise AssertionError(f"the sandbox never finished the payment to {account!r}")


async def confirm_late(live, trans_id: str) -> None:
    async with httpx.AsyncClient(base_url=live.sandbox) as http:
        r = await http.post(f"/_sandbox/daraja/c2b/{trans_id}/confirm")
        assert r.status_code == 200, r.text


async def confirmation_row(trans_id: str, timeout: float = 20, waiting_ok: bool = False) -> dict:
    """The Paybill confirmation of `trans_id` once processed (or, `waiting_ok`, waiting for its STK twin)."""
    for _ in range(int(timeout / 0.05)):
        row = await GatewayCallback.select().where((GatewayCallback.kind == "c2b_confirmation")
                                                   & (GatewayCallback.external_id == trans_id)).first()
        if row and (row["processed_at"] or (waiting_ok and row["outcome"] == "stored" and row["attempts"])):
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"confirmation {trans_id} not processed")


async def mpesa_in_ledger() -> Decimal:
    """What the ledger's M-Pesa account holds (debits less credits)."""
    rows = await LedgerLeg.raw("SELECT coalesce(sum(amount), 0) AS total FROM ledger_leg WHERE account = 'mpesa'")
    return Decimal(rows[0]["total"])


async def number(member: int) -> str:
    return (await Member.select(Member.member_number).where(Member.id == member).first())["member_number"]
