"""The walk-in account: the one member row every walk-in sale's invoice belongs to.

Invoices, payments, ledger legs, receipts, voids and refunds all expect a member; a walk-in has
none. Rather than make `invoice.member` nullable and teach every one of those places about it,
walk-in sales go on this account (member number WALKIN, no phone or email, so no message is ever
sent to it), and the buyer's name and phone, when given, are kept on the sale (tables/sales.py).
A walk-in sale is always paid in full at the desk, so the account never owes anything.
"""

from __future__ import annotations

from portal.lib.clock import now
from tables.members import Member

WALKIN_NUMBER = "WALKIN"


async def walkin_member_id() -> int:
    """The walk-in account's id, made on the first walk-in sale (safe when two desks race)."""
    row = await Member.select(Member.id).where(Member.member_number == WALKIN_NUMBER).first()
    if row:
        return row["id"]
    at = now()
    await Member.insert(Member(
        member_number=WALKIN_NUMBER, first_name="Walk-in", last_name="customer", phone="", email=None,
        notes="Desk sales to people who are not members (portal/sales/walkin.py). Not a person.",
        reminder_opt_out=True, created_at=at, updated_at=at,
    )).on_conflict(target=Member.member_number, action="DO NOTHING")
    return (await Member.select(Member.id).where(Member.member_number == WALKIN_NUMBER).first())["id"]


async def is_walkin(member_id: int) -> bool:
    return await Member.exists().where((Member.id == member_id) & (Member.member_number == WALKIN_NUMBER))
