"""Shared steps for the payer stories."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

from piccolo.engine import engine_finder

from portal.billing.invoices import Line, issue_invoice, lock_member
from portal.payers.payers import create_payer, link_member
from portal.payers.payments import record_payer_payment
from tests.billing.helpers import kes

_keys = itertools.count(1)

ACME = {"kind": "company", "name": "Acme Logistics Ltd", "phone": "", "email": "accounts@acme.co.ke",
        "address": "P.O. Box 12345-00100, Nairobi", "kra_pin": "P051234567X"}


async def company(**over) -> int:
    return await create_payer({**ACME, **over}, None)


async def parent(name: str = "Grace Wanjiru", phone: str = "254722000111") -> int:
    return await create_payer({"kind": "person", "name": name, "phone": phone, "email": "",
                               "address": "", "kra_pin": ""}, None)


async def link(payer_id: int, member_id: int) -> None:
    await link_member(payer_id, "", None, member_id=member_id)


async def invoice_due(member_id: int, amount, due: date, description: str = "Monthly membership") -> dict:
    async with engine_finder().transaction():
        await lock_member(member_id)
        return await issue_invoice(member_id, [Line(description, kes(amount), vat_rate=Decimal("16"))], due_date=due)


async def payer_pays(payer_id: int, amount, method: str = "cash", reference: str = "", key: str | None = None,
                     staff_id: int | None = None):
    return await record_payer_payment(payer_id=payer_id, method=method, amount=kes(amount), reference=reference,
                                      idempotency_key=key or f"payer-test-{next(_keys)}", staff_id=staff_id,
                                      location_id=None, confirmed=True)
