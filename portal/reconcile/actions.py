"""Settling a difference on the reconciliation page (managers): one action, a reason, once.

    credit     money the gateway has and the ledger has not, credited to a member through the normal
               path: M-Pesa through Unmatched M-Pesa's match (c2b.match_unmatched, exactly once per
               receipt code); a bank credit as a bank payment keyed `reconcile:<key>`
    not_ours   money the gateway has that is not the gym's to count (someone else's, a test):
               left out of the day's counted totals
    refund     money to give back: a payment's refund by its own rail (payments.refunds); a line
               with no payment is first credited to the payer chosen, then refunded, so the books
               show both
    explained  a difference that is right as it is (the ledger has it and the book cannot: cash
               recorded as bank by mistake, a charge on another day), left out of the totals

Exactly once: every action takes the difference's lock (its key) and writes one
reconcile_resolution row (unique key); a second click, a second tab or a retried form finds that row
and does nothing. Every action is in the audit log with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from portal import audit
from portal.lib import db
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.money import Money
from portal.payments.mpesa import c2b
from portal.payments.refunds import refund_reason, start_refund
from portal.payments.service import record_desk_payment
from portal.reconcile.days import differences
from portal.settings import get_settings
from tables.members import Member
from tables.reconcile import GatewayLine, ReconcileDay, ReconcileResolution

ACTIONS = {"credit": "credited", "not_ours": "not_ours", "refund": "refunded", "explained": "explained"}
LABELS = {"credited": "Credited", "not_ours": "Not ours", "refunded": "Refunded", "explained": "Explained"}


@dataclass(frozen=True)
class Settled:
    resolution: dict
    new: bool  # False: it had been settled before (the second click)


async def _member(number: str) -> int:
    number = (number or "").strip().upper()
    if not number:
        raise RuleBroken("Give the member's number (e.g. PTF0001)", field="member")
    row = await Member.select(Member.id).where(Member.member_number == number).first()
    if row is None:
        raise RuleBroken(f"No member has the number {number}", field="member")
    return row["id"]


async def _item(key: str, day: date) -> dict:
    """The difference as the page shows it: its gateway line and payment."""
    for row in await differences(day):
        if row["key"] == key:
            return row
    raise NotFound("difference")


async def _waiting_callback(receipt: str) -> int:
    rows = await GatewayLine.raw(
        f"SELECT id FROM gateway_callback WHERE {c2b.UNMATCHED_WHERE} AND external_id = {{}} ORDER BY id LIMIT 1", receipt)
    if not rows:
        raise RuleBroken("This M-Pesa payment is not waiting to be matched (see Unmatched M-Pesa and Alerts)")
    return rows[0]["id"]


async def _credit(item: dict, member_number: str, staff_id: int, reason: str) -> int:
    member_id = await _member(member_number)
    if item["family"] == "mpesa":
        return (await c2b.match_unmatched(await _waiting_callback(item["external_id"]), member_id, staff_id)).payment["id"]
    if item["family"] == "bank":
        recorded = await record_desk_payment(
            member_id=member_id, method="bank", amount=Money(item["g_amount"], get_settings().currency),
            reference=item["external_id"], idempotency_key=f"reconcile:{item['key']}"[:80], staff_id=staff_id,
            location_id=None, note=f"From the bank statement: {reason}"[:500], confirmed=True)
        return recorded.payment["id"]
    raise RuleBroken("A card payment with no payment of ours cannot be credited here: find whose it is on Flutterwave")


async def settle(day: date, key: str, action: str, *, reason: str, staff_id: int, member: str = "") -> Settled:
    """Do `action` to the difference `key` of `day`, once. RuleBroken (with the field) on bad input."""
    if action not in ACTIONS:
        raise RuleBroken("Choose what to do", field="action")
    reason = (reason or "").strip()
    if not reason:
        raise RuleBroken("Give the reason", field="reason")
    async with db.transaction():
        await GatewayLine.raw("SELECT pg_advisory_xact_lock(hashtext({}))", f"reconcile:{key}")
        done = await ReconcileResolution.select().where(ReconcileResolution.key == key).first()
        if done:
            return Settled(done, False)
        item = await _item(key, day)
        payment_id = item["payment_id"]
        has_line = item["line_id"] is not None
        if action == "credit":
            if payment_id is not None or not has_line:
                raise RuleBroken("Only money the ledger has not got can be credited", field="action")
            payment_id = await _credit(item, member, staff_id, reason)
        elif action == "not_ours":
            if payment_id is not None or not has_line:
                raise RuleBroken("The ledger has this payment: refund it or explain it instead", field="action")
        elif action == "refund":
            if payment_id is None:
                payment_id = await _credit(item, member, staff_id, reason)
            await start_refund(payment_id, None, refund_reason(reason), staff_id, confirmed=True)
        amount = item["g_amount"] if item["g_amount"] is not None else item["p_amount"]
        row = (await ReconcileResolution.insert(ReconcileResolution(
            day=item["day"], channel=item["channel"], key=key, action=ACTIONS[action], reason=reason, amount=amount,
            payment=payment_id, staff=staff_id)).returning(*ReconcileResolution.all_columns()))[0]
        await audit.record(f"reconcile.{ACTIONS[action]}", "reconcile_resolution", row["id"], staff_id=staff_id,
                           reason=reason, details={"day": str(item["day"]), "channel": item["channel"], "key": key,
                                                   "amount": str(amount), "payment": payment_id,
                                                   "member": member.strip().upper() or None})
    return Settled(row, True)


async def mark_reconciled(day: date, *, staff_id: int, open_count: int, uncovered: int, note: str = "") -> bool:
    """Record who reconciled the day (once: False when it already was). Refused while a difference
    is open or a channel has payments and no gateway book."""
    if open_count:
        raise RuleBroken(f"{open_count} difference{'s' if open_count != 1 else ''} still open: settle each first")
    if uncovered:
        raise RuleBroken("A channel has payments and no gateway book for the day: import its statement first")
    async with db.transaction():
        rows = await ReconcileDay.raw(
            "INSERT INTO reconcile_day (day, staff, note) VALUES ({}, {}, {}) ON CONFLICT (day) DO NOTHING RETURNING id",
            day, staff_id, note.strip()[:500])
        if rows:
            await audit.record("reconcile.day", "reconcile_day", rows[0]["id"], staff_id=staff_id, reason=note.strip(),
                               details={"day": str(day)})
    return bool(rows)
