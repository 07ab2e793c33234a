"""Pages more than one area shows: the member page (with its pay forms), the payment page (with
its M-Pesa status), and what they share. Handlers in web/ call these; nothing here is a route."""

from __future__ import annotations

import json
import secrets

import segno
from litestar.response import Template

from portal.billing import ledger
from portal.documents import store as document_store
from portal.lib.clock import today
from portal.lib.errors import NotFound
from portal.lib.money import Money
from portal.lib.phones import display_phone
from portal.members import members, memberships
from portal.members.visits import recent_visits
from portal.messages.queries import member_messages
from portal.payments import state
from portal.payments.cards.refunds import refunds_of
from portal.payments.mpesa.reversal import reversal_state
from portal.payments.service import METHOD_LABELS, payment_history
from portal.sales.packs import packs_with_sessions
from tables.billing import CreditNote, Invoice, Payment
from tables.locations import Location
from tables.members import Plan
from tables.statuses import IN_FLIGHT, OPEN_INVOICE


def new_idempotency_key() -> str:
    return secrets.token_urlsafe(18)


def _settled(events: list[dict]) -> dict | None:
    """What the payment settled and the balances right after, from its settlement event."""
    for event in events:
        if event["kind"] == state.SETTLEMENT:
            facts = event["details"]
            return state.settlement_facts(json.loads(facts) if isinstance(facts, str) else dict(facts))
    return None


async def payment_or_404(payment_id: int) -> dict:
    rows = await Payment.raw(
        "SELECT p.*, m.first_name || ' ' || m.last_name AS member_name, m.member_number, u.username AS staff_username, "
        "pp.payer AS payer_id, py.name AS payer_name "
        "FROM payment p LEFT JOIN member m ON m.id = p.member LEFT JOIN staff s ON s.id = p.staff "
        "LEFT JOIN payer_payment pp ON pp.payment = p.id LEFT JOIN payer py ON py.id = pp.payer "
        "LEFT JOIN piccolo_user u ON u.id = s.user WHERE p.id = {}", payment_id)
    if not rows:
        raise NotFound("payment")
    return rows[0]


async def _documents_for_payment(payment: dict) -> list[dict]:
    subject = f"payment:{payment['id']}"
    docs = []
    for kind, label in (("receipt", "Receipt (A4)"), ("receipt_80mm", "Receipt (80 mm printer)")):
        docs.append({"kind": kind, "subject": subject, "label": label, "ready": await document_store.find(kind, subject)})
    return docs


async def payment_page_response(payment_id: int, *, status: int = 200, refund_values: dict | None = None,
                                refund_errors: dict | None = None) -> Template:
    payment = await payment_or_404(payment_id)
    events = await payment_history(payment_id)
    notes = await CreditNote.select().where(CreditNote.payment == payment_id).order_by(CreditNote.id)
    live = {}
    if payment["method"] == "mpesa":
        live = await stk_context(payment_id)
        live.pop("payment")
        live.update(await reversal_state(payment_id))
    if payment["method"] == "card":
        live["card_refunds"] = await refunds_of(payment_id)
    return Template("payments/detail.html", status_code=status, context={
        "payment": payment, "events": events, "settled": _settled(events), "method_label": METHOD_LABELS[payment["method"]],
        "documents": await _documents_for_payment(payment) if payment["receipt_number"] else [],
        "credit_notes": notes, "refund_values": refund_values or {}, "refund_errors": refund_errors or {}, **live,
    })


def ask_to_confirm(amount: Money) -> dict:
    """What a form shown again for a large amount carries: its confirm box, for this amount."""
    return {"confirm": str(amount.amount), "confirm_text": amount.format()}


async def member_page(member_id: int, *, status: int = 200, created: bool = False, pay_values: dict | None = None,
                      pay_errors: dict | None = None, plan_values: dict | None = None,
                      plan_errors: dict | None = None, mpesa_values: dict | None = None,
                      mpesa_errors: dict | None = None, reused: dict | None = None) -> Template:
    """The member page: who, memberships, what they owe, invoices, payments, recent messages,
    and the two forms (record a payment, put on a plan). A fixed number of queries."""
    member = await members.member_with_hold(member_id)
    owed, credit = await ledger.member_balances(member_id)
    invoices = await Invoice.select().where(Invoice.member == member_id).order_by(Invoice.id, ascending=False).limit(50)
    payments = await Payment.select().where(Payment.member == member_id).order_by(Payment.id, ascending=False).limit(50)
    plans = await Plan.select().where(Plan.active == True).order_by(Plan.price)  # noqa: E712
    recent_messages, message_failures = await member_messages(member_id)
    open_invoices = [inv for inv in invoices if inv["status"] in OPEN_INVOICE]
    if pay_values is None:
        pay_values = {"method": "cash", "amount": f"{owed.amount:.2f}" if owed.amount > 0 else "",
                      "idempotency_key": new_idempotency_key()}
    if mpesa_values is None:
        whole = owed.amount.to_integral_value(rounding="ROUND_CEILING") if owed.amount > 0 else ""
        mpesa_values = {"phone": "0" + member["phone"][3:], "amount": str(whole), "idempotency_key": new_idempotency_key()}
    return Template("members/detail.html", status_code=status, context={
        "mpesa_values": mpesa_values, "mpesa_errors": mpesa_errors or {}, "reused": reused,
        "member": member, "memberships": await memberships.member_memberships(member_id), "plans": plans,
        "created": created, "owed": owed, "credit": credit, "invoices": invoices, "open_invoices": open_invoices,
        "payments": payments, "member_messages": recent_messages, "member_failures": message_failures,
        "pay_values": pay_values, "pay_errors": pay_errors or {},
        "desks": await Location.select(Location.id, Location.name).where(Location.active == True).order_by(  # noqa: E712
            Location.name),
        "plan_values": plan_values or {"start_date": today().isoformat()}, "plan_errors": plan_errors or {},
        "visits": await recent_visits(member_id),
        "session_packs": await packs_with_sessions(member_id),
    })


async def stk_context(payment_id: int) -> dict:
    payment = await Payment.select().where(Payment.id == payment_id).first()
    if payment is None:
        raise NotFound("payment")
    events = await mpesa_events(payment_id)
    documents = []
    if payment["receipt_number"]:
        for kind, label in (("receipt", "Receipt (A4)"), ("receipt_80mm", "Receipt (80 mm printer)")):
            subject = f"payment:{payment_id}"
            documents.append({"kind": kind, "subject": subject, "label": label,
                              "ready": await document_store.find(kind, subject)})
    last_reason = events[-1]["reason"] if events else ""
    return {"payment": payment, "in_flight": payment["status"] in IN_FLIGHT, "phone": display_phone(payment["phone"]),
            "reason": last_reason, "documents": documents}


async def mpesa_events(payment_id: int) -> list[dict]:
    return [e for e in await payment_history(payment_id) if e["kind"] == state.STATUS]


def qr_svg(url: str) -> str:
    return segno.make(url, error="m").svg_inline(scale=4, dark="#111", light="#fff")
