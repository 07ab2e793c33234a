"""The cards daily pass: Flutterwave's own list of the day against the portal's books.

    cards_daily_pass(day)  (SAQ cron, tasks.reconcile; or by hand)
      GET /v3/transactions?from=day&to=day, every page:
        a successful charge whose payment (by tx_ref) is not completed: no webhook or redirect
            reached us (or the card check gave up before the money came). Verified by id, as a
            webhook is, and credited through apply_verified (the exactly-once path): a webhook
            or redirect after that, or the pass run again, finds it completed and changes nothing
        a successful charge for no payment of ours: listed for staff (alert), never credited
      GET /v3/refunds?from=day&to=day, every page:
        a refund the portal did not ask for (made on Flutterwave's dashboard): listed for staff
            (alert). No money is moved by the pass: which invoice or credit it reverses is a
            person's call (there is no rule that would say it)

Each finding is one row of reconcile_finding (unique per Flutterwave id and kind), so a second run
adds no row, no alert and no money. Dates are Flutterwave's `from`/`to` (YYYY-MM-DD; which time
zone Flutterwave reads them in is [U]: the cron passes over yesterday and today).
"""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal, InvalidOperation

from portal.callbacks.store import alert
from portal.documents.requests import request_receipts
from portal.gateways.flutterwave import FlutterwaveClient, list_refunds, list_transactions
from portal.gateways.http import GatewayError
from portal.lib import db
from portal.payments import state
from portal.payments.cards.checkout import apply_verified
from portal.reconcile import book
from portal.settings import get_settings
from tables.billing import Payment
from tables.gateway import GatewayRequest
from tables.reconcile import ReconcileFinding

log = logging.getLogger(__name__)

SOURCE = "flutterwave"
MAX_PAGES = 500  # 10 a page: 5,000 card transactions a day is far beyond a gym
DONE = (state.COMPLETED, state.PARTIALLY_REFUNDED, state.REFUNDED)


async def _record_finding(kind: str, external_id: str, day: date, *, payment_id: int | None = None,
                          amount="", currency: str = "", note: str = "") -> bool:
    """True when this is new (the caller alerts once); False when a pass found it before."""
    rows = await ReconcileFinding.raw(
        "INSERT INTO reconcile_finding (source, kind, external_id, day, payment, amount, currency, note) "
        "VALUES ({}, {}, {}, {}, {}, {}, {}, {}) ON CONFLICT (source, kind, external_id) DO NOTHING RETURNING id",
        SOURCE, kind, external_id, day, payment_id, str(amount)[:20], currency[:3], note[:2000])
    return bool(rows)


async def _pages(fetch, client, day: date):
    start = end = day.isoformat()
    page, pages = 1, 1
    while page <= pages and page <= MAX_PAGES:
        result = await fetch(client, start, end, page)
        pages = result.total_pages
        for item in result.items:
            yield item
        if not result.items:
            break
        page += 1


async def _charge(client, item: dict, day: date, counts: dict) -> None:
    counts["transactions"] += 1
    if str(item.get("status", "")).lower() != "successful":
        return
    tx_id, tx_ref = item.get("id"), str(item.get("tx_ref") or "")
    try:
        charged = Decimal(str(item.get("amount")))
    except (InvalidOperation, ValueError):
        charged = None
    if tx_id is not None and charged is not None and charged.is_finite():
        await book.record([book.Line("card", str(tx_id), day, charged, "card_pass", tx_ref,
                                     str(item.get("customer_email") or ""))])
    payment = await Payment.select().where((Payment.method == "card") & (Payment.gateway_request == tx_ref)).first() \
        if tx_ref else None
    if payment is None:
        if await _record_finding("card_unknown", str(tx_id), day, amount=item.get("amount", ""),
                                 currency=str(item.get("currency") or ""), note=f"tx_ref {tx_ref}"):
            counts["unknown"] += 1
            await alert("card_unknown", f"Flutterwave card payment {tx_id} ({item.get('currency')} {item.get('amount')}, "
                        f"tx_ref {tx_ref or 'none'}, {item.get('customer_email') or 'no email'}) succeeded on {day}, "
                        "but the portal has no payment for it. Nothing was credited: find whose it is")
        return
    if payment["status"] in DONE:
        return
    # Money the webhook and redirect never told us of: verified by id (the truth, never the list).
    verified = await client.verify(tx_id)
    async with db.transaction():
        outcome, note = await apply_verified(payment, verified, source=f"card daily pass {day}")
        if outcome == "applied" and verified.successful:
            await _record_finding("card_credited", str(verified.id), day, payment_id=payment["id"],
                                  amount=verified.amount.amount, currency=verified.amount.currency, note=note)
    if outcome == "applied" and verified.successful:
        counts["credited"] += 1
        try:
            await request_receipts(payment["id"])
        except RuntimeError:  # no queue in this process: the documents sweeper makes them
            pass


async def _refund(item: dict, day: date, counts: dict) -> None:
    counts["refunds"] += 1
    refund_id = str(item.get("id") or "")
    if not refund_id:
        return
    ours = await GatewayRequest.exists().where((GatewayRequest.gateway == "flutterwave") & (GatewayRequest.kind == "refund")
                                              & (GatewayRequest.conversation_id == refund_id))
    if ours:
        return
    tx_id = str(item.get("tx_id") or "")
    payment = await Payment.select(Payment.id, Payment.receipt_number).where(
        (Payment.method == "card") & (Payment.gateway_ref == tx_id)).first() if tx_id else None
    amount = item.get("amount_refunded", "")
    if await _record_finding("refund_unrecorded", refund_id, day, payment_id=payment["id"] if payment else None,
                             amount=amount, currency=get_settings().currency,
                             note=f"Flutterwave transaction {tx_id}; status {item.get('status')}"):
        counts["refunds_unrecorded"] += 1
        whose = f"card payment {payment['receipt_number'] or payment['id']}" if payment else "a transaction the portal has no payment for"
        await alert("card_refund_unrecorded", f"Flutterwave refunded {Decimal(str(amount or 0)):,.2f} of transaction {tx_id} "
                    f"({whose}) on {day} (refund {refund_id}), but the portal did not ask for it: the books still count "
                    "that money. Record the refund on the payment if it stands", payment_id=payment["id"] if payment else None)


async def cards_daily_pass(day: date, client=None) -> dict:
    """Flutterwave's charges and refunds of `day` against the portal's. Returns what it did."""
    counts = {"day": day.isoformat(), "transactions": 0, "credited": 0, "unknown": 0, "refunds": 0,
              "refunds_unrecorded": 0}
    own = client is None
    client = client or FlutterwaveClient(get_settings())
    try:
        async for item in _pages(list_transactions, client, day):
            try:
                await _charge(client, item, day, counts)
            except GatewayError as e:  # one transaction verify failing must not hide the rest
                log.warning("cards daily pass: transaction %s not checked: %s", item.get("id"), e)
                counts.setdefault("errors", 0)
                counts["errors"] += 1
        async for item in _pages(list_refunds, client, day):
            await _refund(item, day, counts)
    finally:
        if own:
            await client.aclose()
    return counts
