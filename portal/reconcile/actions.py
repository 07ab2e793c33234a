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
from decimal import Decimal

from portal import audit
from portal.billing.invoices import lock_member
from portal.lib import db
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from portal.lib.money import Money, MoneyParseError
from portal.payments import state
from portal.payments.limits import NeedsConfirmation, check_confirmed
from portal.payments.mpesa import c2b
from portal.payments.refunds import refund_reason, start_refund
from portal.payments.service import complete_payment, record_desk_payment
from portal.reconcile.days import differences
from portal.settings import get_settings
from tables.billing import Payment
from tables.gateway import GatewayCallback
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
    return await _credit_card(item, member_id, staff_id, reason)


async def _credit_card(item: dict, member_id: int, staff_id: int, reason: str) -> int:
    """A charge Flutterwave's list shows succeeded (the cards pass's line) and no payment of ours
    has: recorded as the member's card payment with Flutterwave's id, so the line pairs with it and
    a card refund can name the transaction. Keyed `reconcile:card:<id>`: once."""
    line = await GatewayLine.select(GatewayLine.account, GatewayLine.payer).where(
        GatewayLine.id == item["line_id"]).first()
    tx_ref = (line or {}).get("account") or ""
    if tx_ref and await Payment.exists().where((Payment.method == "card") & (Payment.gateway_request == tx_ref)):
        raise RuleBroken(S_("A payment of ours has this charge's reference (%(tx_ref)s): check that payment, "
                            "it is not money we never recorded") % {"tx_ref": tx_ref}, field="action")
    currency = get_settings().currency
    amount = Money(item["g_amount"], currency)
    async with db.transaction():
        await lock_member(member_id)
        payment_id, created = await state.open_payment(
            {"member": member_id, "method": "card", "amount": amount.amount, "currency": currency,
             "reference": f"FLW {item['external_id']}"[:120], "gateway_ref": item["external_id"],
             "idempotency_key": f"reconcile:{item['key']}"[:80], "staff": staff_id,
             "note": f"From Flutterwave's list (tx_ref {tx_ref or 'none'}): {reason}"[:500]},
            reason="Card payment Flutterwave took and the portal never recorded (reconciliation)", staff_id=staff_id)
        if created:
            await complete_payment(payment_id, reason=f"Credited from the reconciliation page: {reason}"[:300],
                                   staff_id=staff_id)
    return payment_id


def _to_refund(item: dict, payment: dict | None) -> Money:
    """What the refund gives back: all that is left of the payment (M-Pesa reverses it whole), or
    the whole line when it is credited first."""
    currency = get_settings().currency
    if payment is None:
        return Money(item["g_amount"], currency)
    if payment["method"] == "mpesa":
        return Money(payment["amount"], payment["currency"])
    return Money(payment["amount"] - payment["refunded"], payment["currency"])


class ConfirmRefund(NeedsConfirmation):
    """A large refund asked from the page, not yet confirmed: the form comes back with its box."""

    def __init__(self, message: str, amount: Money):
        super().__init__(message, field="action")
        self.amount = amount


def _confirmed(text: str, amount: Money) -> bool:
    """The box ticked for this very amount (as every large-amount form: portal.lib.forms.confirmed_amount)."""
    try:
        return bool(text) and Money.parse(text, amount.currency) == amount
    except MoneyParseError:
        return False


async def settle(day: date, key: str, action: str, *, reason: str, staff_id: int, member: str = "",
                 confirmed: str = "") -> Settled:
    """Do `action` to the difference `key` of `day`, once. RuleBroken (with the field) on bad input;
    ConfirmRefund for a large refund whose box (`confirmed`: the amount it was shown for) is not ticked."""
    if action not in ACTIONS:
        raise RuleBroken("Choose what to do", field="action")
    reason = (reason or "").strip()
    if not reason:
        raise RuleBroken("Give the reason", field="reason")
    async with db.transaction():
        await c2b.lock_resolution(key)
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
            payment = None if payment_id is None else await Payment.select(
                Payment.method, Payment.amount, Payment.refunded, Payment.currency).where(Payment.id == payment_id).first()
            asked = _to_refund(item, payment)
            try:  # asked as the payment page's refund asks (portal.payments.limits), before anything is done
                check_confirmed(asked, _confirmed(confirmed, asked))
            except NeedsConfirmation as e:
                raise ConfirmRefund(str(e), asked) from None
            if payment_id is None:
                payment_id = await _credit(item, member, staff_id, reason)
            await start_refund(payment_id, None, refund_reason(reason), staff_id, confirmed=True)
        row = await _resolve(item["day"], item["channel"], key, action, reason, staff_id, member,
                             item["g_amount"] if item["g_amount"] is not None else item["p_amount"], payment_id)
    return Settled(row, True)


async def _resolve(day: date, channel: str, key: str, action: str, reason: str, staff_id: int, member: str,
                   amount, payment_id: int | None, **details) -> dict:
    """The one row that says how the difference `key` was settled, its audit, and (M-Pesa money left
    out of the counts) the alerts of its notification waiting on Unmatched M-Pesa. Caller holds the lock."""
    row = (await ReconcileResolution.insert(ReconcileResolution(
        day=day, channel=channel, key=key, action=ACTIONS[action], reason=reason, amount=amount,
        payment=payment_id, staff=staff_id)).returning(*ReconcileResolution.all_columns()))[0]
    await audit.record(f"reconcile.{ACTIONS[action]}", "reconcile_resolution", row["id"], staff_id=staff_id,
                       reason=reason, details={"day": str(day), "channel": channel, "key": key,
                                               "amount": str(amount), "payment": payment_id,
                                               "member": member.strip().upper() or None, **details})
    if key.startswith("mpesa:") and action in ("not_ours", "explained"):
        await GatewayLine.raw(
            "UPDATE staff_alert SET resolved = true, resolved_by = {}, resolved_at = now() WHERE NOT resolved "
            "AND callback IN (SELECT id FROM gateway_callback WHERE external_id = {} AND outcome = 'unmatched')",
            staff_id, key.removeprefix("mpesa:"))
    return row


async def not_ours_waiting(callback_id: int, *, reason: str, staff_id: int) -> Settled:
    """Unmatched M-Pesa's "Not ours": the same resolution as the reconciliation page's (key
    `mpesa:<code>`, the same lock), so the payment leaves this list and the day's counted totals at
    once, and a second click (or the other page) finds it settled."""
    reason = (reason or "").strip()
    if not reason:
        raise RuleBroken("Give the reason", field="reason")
    code = await GatewayCallback.select(GatewayCallback.external_id).where(GatewayCallback.id == callback_id).first()
    if code is None or not code["external_id"]:
        raise NotFound("M-Pesa payment")
    key = c2b.resolution_key(code["external_id"])
    async with db.transaction():
        await c2b.lock_resolution(key)
        done = await ReconcileResolution.select().where(ReconcileResolution.key == key).first()
        if done:
            return Settled(done, False)
        rows = await GatewayLine.raw(
            f"SELECT c.amount, (c.received_at AT TIME ZONE {{}})::date AS received, gl.day, gl.amount AS line_amount "
            f"FROM gateway_callback c LEFT JOIN gateway_line gl ON gl.channel = 'mpesa' AND gl.external_id = c.external_id "
            f"WHERE c.id = {{}} AND c.kind IN ('c2b_confirmation', 'c2b_pull', 'c2b_statement') "
            f"AND c.id IN (SELECT id FROM gateway_callback WHERE {c2b.UNMATCHED_WHERE})",
            get_settings().tz.key, callback_id)
        if not rows:
            raise RuleBroken(S_("This M-Pesa payment is not waiting to be matched"))
        r = rows[0]
        amount = r["line_amount"] if r["line_amount"] is not None else Decimal(r["amount"] or "0")
        row = await _resolve(r["day"] or r["received"], "mpesa_paybill", key, "not_ours", reason, staff_id, "",
                             amount, None, callback=callback_id)
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
