"""Simulated Flutterwave v3 (gateways.md §2): Standard hosted checkout, verify, refunds, webhooks.

Written from gateways.md only; it shares no code with the portal's client.

Gateway API (Bearer `config.flutterwave_secret_key`; a missing or wrong key gets HTTP 401
`{"status":"error","message":"Invalid authorization key","data":null}`):

    POST /v3/payments                         -> 200 "Hosted Link", data.link
    GET  /v3/transactions/{id}/verify         -> 200 "Transaction fetched successfully", data
    GET  /v3/transactions?from=&to=&page=&status=   -> 200 "Transactions fetched", data + meta.page_info
    GET  /v3/refunds?from=&to=&page=               -> 200 "Refunds fetched", data + meta.page_info
                                              (settings.list_page_size a page, default 10)
    GET  /v3/transactions/verify_by_reference?tx_ref=...
                                              -> the same (newest successful charge for the ref)
    POST /v3/transactions/{id}/refund  {"amount"?, "comments"?}
                                              -> 200 "Transaction refund initiated", data

Errors use the v3 envelope `{"status":"error","message":...,"data":null}`: HTTP 400 for validation
("tx_ref is required", "amount is required", "Invalid amount", "Invalid currency",
"Invalid redirect_url", "customer.email is required", "Invalid customer email"), and
"No transaction was found for this id" with `settings.not_found_status` (default 400; the real
status is [U]) for unknown ids, non-numeric ids (a tx_ref passed to the id route) and unknown
refs. `currency` defaults to NGN when absent (gateways.md §2.2). Re-using a tx_ref is
undocumented, so `settings.duplicate_tx_ref` chooses: "reject_paid" (default: 400 "Duplicate
transaction reference" once that tx_ref has a successful charge; the hosted page also refuses
to charge it again), "reject" (any earlier checkout with the ref) or "allow".

Hosted checkout (for people, no JavaScript): GET /checkout/{id}. The customer picks a test card
(one button per card) or Cancel; a select on the page picks the webhook scenario. The browser is
sent (303) to redirect_url + status=successful|failed&tx_ref=…&transaction_id=… or
status=cancelled&tx_ref=… (no transaction_id). With `settings.failed_card = "retry"` a failed card
stays on the page with an error instead (whether Flutterwave redirects failures is [U]).
Without a redirect_url the page shows the result itself.

Test cards (gateways.md §2.7; full numbers are never stored, shown or sent: only first 6/last 4):

    button/key          card                     outcome     processor_response
    success             Mastercard 5531 88…2950  successful  Approved (PIN 3310, OTP 12345)
    visa_3ds            Visa 4187 42…4246        successful  Approved
    mastercard_3ds      Mastercard 5438 89…0229  successful  Approved
    verve               Verve 5061 46…4667       successful  Approved
    insufficient_funds  Mastercard 5258 58…6506  failed      Insufficient funds
    declined            Mastercard 5143 01…9965  failed      Declined (number: sandbox choice)

Webhook scenarios (combinable with "+", e.g. "duplicate+flat"). Chosen per checkout by the select
on the page, by the control API's "scenario", or preselected by tagging the customer email
`jane+fw-<scenario>[-<scenario>]@example.test`:

    normal          one v3 webhook {"event": "charge.completed", "data": {...}, "event.type": ...}
                    with header verif-hash: <config.flutterwave_secret_hash>, callback_delay
                    seconds after paying
    duplicate       the same webhook (identical bytes) twice
    late            sent settings.late_webhook_delay seconds later (the redirect comes first)
    none            no webhook
    wrong_hash      verif-hash carries a wrong value
    signature       no verif-hash; flutterwave-signature = base64(HMAC-SHA256(secret hash,
                    raw body)) [U]
    flat            legacy flat payload (id, txRef, flwRef, orderRef, appfee, entity{card6, ...})
    tampered        webhook and redirect (an extra amount= parameter) claim the requested
                    amount; verify reports the 10 % really charged (pitfall 19)
    wrong_currency  webhook claims the requested currency; verify reports NGN (USD if NGN asked)
    verify_503      the first settings.verify_503_count verify calls for the transaction wait
                    settings.delay_503 seconds (Flutterwave: 28 s), then answer 503 with
                    {"status":"error","message":"An error occurred. Please contact support",...}
    pending_first   the first settings.verify_pending_count verify calls answer status "pending"
                    (the charge is settling); resend the webhook to play Flutterwave's repeat
    overpaid        verify reports a sixth more than asked (3,500 for 3,000)

Failed charges also get a charge.completed webhook with data.status "failed" (dashboard checkbox:
settings.failed_webhooks). Refunds send a flat PascalCase refund webhook only when
settings.refund_webhooks is on (off by default, as on Flutterwave). settings.create_503_next makes
the next N POST /v3/payments create the checkout, wait delay_503 and answer 503 (pitfall 23).
Failed deliveries (anything but 200) are retried settings.webhook_retries times (default 0).

Control API for tests and demos (JSON, no auth):

    GET  /_sandbox/flutterwave                 overview page for people (HTML)
    GET  /_sandbox/flutterwave/checkouts       {"checkouts": [...]}
    GET  /_sandbox/flutterwave/transactions[?tx_ref=]
                                               {"transactions": [...]}
    POST /_sandbox/flutterwave/complete        {"checkout_id" or "tx_ref", "card": key|"cancel",
                                                "scenario"?}: same effect as the page ->
                                               {"status", "redirect_url", "transaction_id", ...}
    POST /_sandbox/flutterwave/transactions/{id}/webhook
                                               {"times": N, "scenario"?, "settled"?}: resend now
                                               (settled: a pending_first charge has settled first) ->
                                               {"attempts": [...]}
    GET  /_sandbox/flutterwave/webhooks[?tx_ref=&transaction_id=]
                                               {"attempts": [...]}: every delivery attempt
    GET  /_sandbox/flutterwave/settings        {"settings": {...}}
    POST /_sandbox/flutterwave/settings        patch knobs, e.g. {"late_webhook_delay": 0.5}
    POST /_sandbox/flutterwave/reset           forget everything, cancel pending webhooks
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Litestar, Request, Router, get, post
from litestar.params import FromPath
from litestar.response import Response

from portal.sandbox.flutterwave_model import (
    CURRENCIES,
    SCENARIOS,
    TEST_CARDS,
    Checkout,
    FlutterwaveState,
    ScenarioError,
    Transaction,
    num,
    parse_scenario,
    scenario_from_email,
    scenario_text,
)
from portal.sandbox.flutterwave_webhooks import (
    Outbox,
    resend_charge_webhook,
    schedule_charge_webhook,
    schedule_refund_webhook,
)

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ERROR_503 = "An error occurred. Please contact support"
NOT_FOUND = "No transaction was found for this id"


def _state(request: Request) -> FlutterwaveState:
    return request.app.state.flutterwave


def _envelope(status: str, message: str, data: Any, code: int) -> Response:
    return Response({"status": status, "message": message, "data": data}, status_code=code)


def _error(message: str, code: int = 400) -> Response:
    return _envelope("error", message, None, code)


def _unauthorized(request: Request) -> Response | None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or key.strip() != request.app.state.config.flutterwave_secret_key:
        return _error("Invalid authorization key", 401)
    return None


def _html(template: str, status: int = 200, **context: Any) -> Response:
    body = _templates.get_template(template).render(**context)
    return Response(body, status_code=status, media_type="text/html; charset=utf-8")


def _amount(value: Any) -> Decimal | None:
    """Major units, as a JSON number or numeric string, > 0, at most 2 decimals."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not d.is_finite() or d <= 0 or d.as_tuple().exponent < -2:
        return None
    return d


async def _json_body(request: Request) -> tuple[dict | None, Response | None]:
    raw = await request.body()
    if not raw.strip():
        return {}, None
    try:
        body = json.loads(raw)
    except ValueError:
        return None, _error("Invalid JSON body")
    if not isinstance(body, dict):
        return None, _error("Invalid JSON body")
    return body, None


def _parse_payment(body: dict) -> tuple[dict | None, str | None]:
    tx_ref = body.get("tx_ref")
    if not isinstance(tx_ref, str) or not tx_ref.strip():
        return None, "tx_ref is required"
    if body.get("amount") in (None, ""):
        return None, "amount is required"
    amount = _amount(body["amount"])
    if amount is None:
        return None, "Invalid amount"
    currency = body.get("currency", "NGN")  # gateways.md §2.2: NGN when omitted
    if currency not in CURRENCIES:
        return None, "Invalid currency"
    redirect_url = body.get("redirect_url")
    if redirect_url is not None:
        parts = urlsplit(redirect_url) if isinstance(redirect_url, str) else None
        if not parts or parts.scheme not in ("http", "https") or not parts.netloc:
            return None, "Invalid redirect_url"
    customer = body.get("customer")
    if not isinstance(customer, dict) or not customer.get("email"):
        return None, "customer.email is required"
    email = customer["email"]
    if not isinstance(email, str) or not _EMAIL.match(email):
        return None, "Invalid customer email"
    phone = customer.get("phonenumber", customer.get("phone_number"))  # spelling is [U]: take both
    name = customer.get("name")
    customizations = body.get("customizations")
    return {
        "tx_ref": tx_ref,
        "amount": amount,
        "currency": currency,
        "redirect_url": redirect_url,
        "email": email,
        "name": name if isinstance(name, str) and name.strip() else None,
        "phone": str(phone) if phone not in (None, "") else None,
        "customizations": customizations if isinstance(customizations, dict) else {},
        "payment_options": body.get("payment_options")
        if isinstance(body.get("payment_options"), str)
        else None,
        "meta": body.get("meta"),
    }, None


@post("/v3/payments")
async def create_payment(request: Request) -> Response:
    if denied := _unauthorized(request):
        return denied
    body, bad = await _json_body(request)
    if bad:
        return bad
    fields, problem = _parse_payment(body)
    if problem:
        return _error(problem)
    state = _state(request)
    mode = state.settings.duplicate_tx_ref
    seen = any(c.tx_ref == fields["tx_ref"] for c in state.checkouts.values())
    if (mode == "reject" and seen) or (mode == "reject_paid" and state.paid_for(fields["tx_ref"])):
        return _error("Duplicate transaction reference")
    checkout = state.add_checkout(
        tx_ref=fields["tx_ref"],
        amount=fields["amount"],
        currency=fields["currency"],
        redirect_url=fields["redirect_url"],
        customer=state.customer_for(fields["email"], fields["name"], fields["phone"]),
        customizations=fields["customizations"],
        payment_options=fields["payment_options"],
        meta=fields["meta"],
        scenario=scenario_from_email(fields["email"]),
    )
    if state.settings.create_503_next > 0:
        # Pitfall 23: the link exists although the merchant only ever sees a 503.
        state.settings.create_503_next -= 1
        await asyncio.sleep(state.settings.delay_503)
        return _error(ERROR_503, 503)
    return _envelope(
        "success", "Hosted Link", {"link": f"{state.public_url}/checkout/{checkout.id}"}, 200
    )


# --- verify and refund ---------------------------------------------------------------------


def _lookup(state: FlutterwaveState, tx_id: str) -> Transaction | None:
    return state.transactions.get(int(tx_id)) if tx_id.isascii() and tx_id.isdigit() else None


async def _verified(state: FlutterwaveState, tx: Transaction) -> Response:
    if tx.verify_503_left > 0:
        tx.verify_503_left -= 1
        await asyncio.sleep(state.settings.delay_503)
        return _error(ERROR_503, 503)
    data = tx.verify_data()
    if tx.verify_pending_left > 0:  # still settling: Flutterwave says pending, then the truth
        tx.verify_pending_left -= 1
        data["status"] = "pending"
    return _envelope("success", "Transaction fetched successfully", data, 200)


@get("/v3/transactions/{tx_id:str}/verify")
async def verify(request: Request, tx_id: FromPath[str]) -> Response:
    if denied := _unauthorized(request):
        return denied
    state = _state(request)
    tx = _lookup(state, tx_id)
    if tx is None:
        return _error(NOT_FOUND, state.settings.not_found_status)
    return await _verified(state, tx)


@get("/v3/transactions/verify_by_reference")
async def verify_by_reference(request: Request) -> Response:
    if denied := _unauthorized(request):
        return denied
    state = _state(request)
    tx_ref = request.query_params.get("tx_ref")
    if not tx_ref:
        return _error("tx_ref is required")
    tx = state.find_by_ref(tx_ref)
    if tx is None:
        return _error(NOT_FOUND, state.settings.not_found_status)
    return await _verified(state, tx)


@post("/v3/transactions/{tx_id:str}/refund")
async def refund(request: Request, tx_id: FromPath[str]) -> Response:
    if denied := _unauthorized(request):
        return denied
    state = _state(request)
    tx = _lookup(state, tx_id)
    if tx is None:
        return _error(NOT_FOUND, state.settings.not_found_status)
    body, bad = await _json_body(request)
    if bad:
        return bad
    amount = None
    if body.get("amount") not in (None, ""):
        amount = _amount(body["amount"])
        if amount is None:
            return _error("Invalid amount")
    if tx.status != "successful":
        return _error("Only successful transactions can be refunded")
    # No await between this check and add_refund: concurrent refunds cannot both pass it.
    remaining = tx.paid_amount - tx.refunded
    if remaining <= 0:
        return _error("Transaction has already been fully refunded")
    amount = amount or remaining
    if amount > remaining:
        return _error(
            f"Refund amount cannot be greater than the refundable amount ({num(remaining)})"
        )
    comments = body.get("comments")
    r = state.add_refund(tx, amount, comments if isinstance(comments, str) else None)
    if state.settings.refund_webhooks:
        schedule_refund_webhook(state, tx, r)
    return _envelope("success", "Transaction refund initiated", r.wire(), 200)


# --- hosted checkout -----------------------------------------------------------------------


class CheckoutError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Completion:
    status: str  # successful | failed | cancelled
    location: str | None  # where the browser goes next (None: no redirect_url, or retry)
    transaction: Transaction | None
    retry: bool = False


def _with_query(url: str, params: dict[str, Any]) -> str:
    """Append params the way Flutterwave does: '?' or, if the URL already has a query, '&'."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def complete_checkout(
    state: FlutterwaveState, checkout: Checkout, outcome: str, scenario: frozenset[str], ip: str
) -> Completion:
    """The customer pays with test card `outcome` (or "cancel"): the page and control API."""
    if checkout.status != "open":
        raise CheckoutError(409, f"This payment is already {checkout.status}")
    tx = None
    if outcome == "cancel":
        checkout.status = "cancelled"
        params: dict[str, Any] = {"status": "cancelled", "tx_ref": checkout.tx_ref}
    else:
        card = TEST_CARDS.get(outcome)
        if card is None:
            raise CheckoutError(
                400, f"Unknown test card {outcome!r}; use one of {', '.join(TEST_CARDS)} or cancel"
            )
        if state.settings.duplicate_tx_ref != "allow" and state.paid_for(checkout.tx_ref):
            raise CheckoutError(409, "Duplicate transaction reference: this tx_ref is already paid")
        tx = state.charge(checkout, card, scenario, ip)
        schedule_charge_webhook(state, tx)
        if tx.status == "failed" and state.settings.failed_card == "retry":
            return Completion("failed", None, tx, retry=True)
        checkout.status = tx.status
        params = {"status": tx.status, "tx_ref": checkout.tx_ref, "transaction_id": tx.id}
        if "tampered" in scenario:
            params["amount"] = num(checkout.amount)
    location = _with_query(checkout.redirect_url, params) if checkout.redirect_url else None
    checkout.last_redirect = location
    return Completion(checkout.status, location, tx)


def _checkout_page(
    state: FlutterwaveState,
    checkout: Checkout,
    status: int = 200,
    error: str | None = None,
    scenario: frozenset[str] | None = None,
) -> Response:
    return _html(
        "flutterwave/checkout.html",
        status,
        checkout=checkout,
        amount=f"{checkout.amount:,.2f}",
        cards=TEST_CARDS.values(),
        scenarios=SCENARIOS,
        selected=scenario if scenario is not None else checkout.scenario,
        error=error,
        title=checkout.customizations.get("title") or "Flutterwave Checkout (sandbox)",
    )


def _done_page(checkout: Checkout, status: int = 200, message: str | None = None) -> Response:
    return _html(
        "flutterwave/done.html",
        status,
        checkout=checkout,
        amount=f"{checkout.amount:,.2f}",
        message=message,
    )


@get("/checkout/{checkout_id:str}")
async def checkout_page(request: Request, checkout_id: FromPath[str]) -> Response:
    state = _state(request)
    checkout = state.checkouts.get(checkout_id)
    if checkout is None:
        return _html("flutterwave/missing.html", 404)
    if checkout.status != "open":
        return _done_page(checkout)
    return _checkout_page(state, checkout)


@post("/checkout/{checkout_id:str}")
async def checkout_submit(request: Request, checkout_id: FromPath[str]) -> Response:
    state = _state(request)
    checkout = state.checkouts.get(checkout_id)
    if checkout is None:
        return _html("flutterwave/missing.html", 404)
    form = await request.form()
    outcome = "cancel" if form.get("action") == "cancel" else (form.get("card") or "")
    try:
        scenario = parse_scenario(form.get("scenario"))
        done = complete_checkout(state, checkout, outcome, scenario, _client_ip(request))
    except ScenarioError as e:
        return _checkout_page(state, checkout, 400, str(e))
    except CheckoutError as e:
        if checkout.status != "open":
            return _done_page(checkout, e.status, e.message)
        return _checkout_page(state, checkout, e.status, e.message)
    if done.retry:
        reason = done.transaction.card.processor_response
        return _checkout_page(
            state, checkout, 200, f"Payment failed: {reason}. Try another card.", scenario
        )
    if done.location:
        return Response(b"", status_code=303, headers={"Location": done.location})
    return _done_page(checkout)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "127.0.0.1"


# --- control API ---------------------------------------------------------------------------


def _bad(message: str, code: int = 400) -> Response:
    return Response({"error": message}, status_code=code)


@get("/_sandbox/flutterwave")
async def overview(request: Request) -> Response:
    state = _state(request)
    return _html(
        "flutterwave/overview.html",
        state=state,
        cards=TEST_CARDS.values(),
        scenarios=SCENARIOS,
        settings=state.settings_view(),
        checkouts=list(reversed(state.checkouts.values()))[:50],
        transactions=list(reversed(state.transactions.values()))[:50],
        attempts=list(reversed(state.attempts))[:50],
        scenario_text=scenario_text,
        num=num,
    )


@get("/_sandbox/flutterwave/checkouts")
async def list_checkouts(request: Request) -> Response:
    state = _state(request)
    return Response({"checkouts": [c.summary(state.public_url) for c in state.checkouts.values()]})


@get("/_sandbox/flutterwave/transactions")
async def list_transactions(request: Request) -> Response:
    tx_ref = request.query_params.get("tx_ref")
    txs = [t for t in _state(request).transactions.values() if tx_ref is None or t.tx_ref == tx_ref]
    return Response({"transactions": [t.summary() for t in txs]})


@post("/_sandbox/flutterwave/complete", status_code=200)
async def control_complete(request: Request) -> Response:
    state = _state(request)
    body, bad = await _json_body(request)
    if bad:
        return _bad("body must be a JSON object")
    checkout = state.checkouts.get(body.get("checkout_id") or "")
    if checkout is None and body.get("tx_ref"):
        candidates = [c for c in state.checkouts.values() if c.tx_ref == body["tx_ref"]]
        open_ones = [c for c in candidates if c.status == "open"]
        checkout = (open_ones or candidates or [None])[-1]
    if checkout is None:
        return _bad("no such checkout (give checkout_id or tx_ref)", 404)
    try:
        scenario = parse_scenario(body.get("scenario")) if "scenario" in body else checkout.scenario
        done = complete_checkout(
            state, checkout, body.get("card") or "success", scenario, "127.0.0.1"
        )
    except (ScenarioError, CheckoutError) as e:
        return _bad(str(e), getattr(e, "status", 400))
    return Response(
        {
            "checkout_id": checkout.id,
            "tx_ref": checkout.tx_ref,
            "status": done.status,
            "transaction_id": done.transaction.id if done.transaction else None,
            "redirect_url": done.location,
            "retry": done.retry,
            "scenario": scenario_text(scenario),
        }
    )


@post("/_sandbox/flutterwave/transactions/{tx_id:int}/webhook", status_code=200)
async def control_resend(request: Request, tx_id: FromPath[int]) -> Response:
    state = _state(request)
    tx = state.transactions.get(tx_id)
    if tx is None:
        return _bad("no such transaction", 404)
    body, bad = await _json_body(request)
    if bad:
        return _bad("body must be a JSON object")
    times = body.get("times", 1)
    if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= 20:
        return _bad("times must be an integer from 1 to 20")
    settled = body.get("settled", False)
    if not isinstance(settled, bool):
        return _bad("settled must be true or false")
    try:
        scenario = parse_scenario(body["scenario"]) if "scenario" in body else tx.scenario
    except ScenarioError as e:
        return _bad(str(e))
    if settled:  # the charge has settled now: verify tells the truth from here on
        tx.verify_pending_left = 0
    attempts = await resend_charge_webhook(state, tx, times, scenario)
    return Response({"attempts": [a.summary() for a in attempts]})


@get("/_sandbox/flutterwave/webhooks")
async def list_webhooks(request: Request) -> Response:
    q = request.query_params
    tx_ref, tx_id = q.get("tx_ref"), q.get("transaction_id")
    attempts = [
        a
        for a in _state(request).attempts
        if (tx_ref is None or a.tx_ref == tx_ref)
        and (tx_id is None or str(a.transaction_id) == tx_id)
    ]
    return Response({"attempts": [a.summary() for a in attempts]})


@get("/_sandbox/flutterwave/settings")
async def get_settings(request: Request) -> Response:
    state = _state(request)
    return Response({"settings": state.settings_view()})


@post("/_sandbox/flutterwave/settings", status_code=200)
async def patch_settings(request: Request) -> Response:
    state = _state(request)
    body, bad = await _json_body(request)
    if bad:
        return _bad("body must be a JSON object")
    try:
        state.settings.update(body)
    except (TypeError, ValueError) as e:
        return _bad(str(e))
    return Response({"settings": state.settings_view()})


@post("/_sandbox/flutterwave/reset", status_code=200)
async def reset(request: Request) -> Response:
    state = _state(request)
    await state.outbox.cancel_all()
    state.reset()
    return Response({"reset": True})


# --- lists: transactions and refunds of a period, page by page ------------------------------


def _period(request: Request) -> tuple[str, str, int] | Response:
    """from/to (YYYY-MM-DD, inclusive, compared with created_at's UTC date) and page (from 1)."""
    q = request.query_params
    start, end = q.get("from") or "0000-01-01", q.get("to") or "9999-12-31"
    for value in (start, end):
        try:
            date.fromisoformat(value)
        except ValueError:
            return _error("Invalid date format, use YYYY-MM-DD")
    page = q.get("page") or "1"
    if not page.isdigit() or int(page) < 1:
        return _error("Invalid page")
    return start, end, int(page)


def _page_of(state: FlutterwaveState, items: list, page: int, message: str) -> Response:
    size = max(1, state.settings.list_page_size)
    total_pages = max(1, -(-len(items) // size))
    body = {"status": "success", "message": message,
            "meta": {"page_info": {"total": len(items), "current_page": page, "total_pages": total_pages}},
            "data": items[(page - 1) * size:page * size]}
    return Response(body, status_code=200)


def _list_item(tx: Transaction) -> dict:
    """A transaction as GET /v3/transactions lists it (the verify data, flattened customer)."""
    data = tx.verify_data()
    customer = data.pop("customer")
    data.pop("meta", None)
    data["card"] = {k: v for k, v in data["card"].items() if k != "token"}
    return {**data, "customer_name": customer["name"], "customer_email": customer["email"]}


@get("/v3/transactions")
async def list_transactions_api(request: Request) -> Response:
    """GET /v3/transactions?from=&to=&page=&status= (Flutterwave-Node-v3 transactions.md
    "Get all transactions": meta.page_info {total, current_page, total_pages}), newest first."""
    if denied := _unauthorized(request):
        return denied
    period = _period(request)
    if isinstance(period, Response):
        return period
    start, end, page = period
    state = _state(request)
    status = request.query_params.get("status")
    items = [_list_item(t) for t in sorted(state.transactions.values(), key=lambda t: t.id, reverse=True)
             if start <= t.created_at[:10] <= end and (not status or t.status == status)]
    return _page_of(state, items, page, "Transactions fetched")


@get("/v3/refunds")
async def list_refunds_api(request: Request) -> Response:
    """GET /v3/refunds?from=&to=&page= ([S]: v3 reference "Get all refunds"), newest first: every
    refund, made through the API or (as here, over the control API) on Flutterwave's dashboard."""
    if denied := _unauthorized(request):
        return denied
    period = _period(request)
    if isinstance(period, Response):
        return period
    start, end, page = period
    state = _state(request)
    refunds = sorted((r for t in state.transactions.values() for r in t.refunds), key=lambda r: r.id, reverse=True)
    items = [r.wire() for r in refunds if start <= r.created_at[:10] <= end]
    return _page_of(state, items, page, "Refunds fetched")


router = Router(
    path="/",
    route_handlers=[
        list_transactions_api,
        list_refunds_api,
        create_payment,
        verify,
        verify_by_reference,
        refund,
        checkout_page,
        checkout_submit,
        overview,
        list_checkouts,
        list_transactions,
        control_complete,
        control_resend,
        list_webhooks,
        get_settings,
        patch_settings,
        reset,
    ],
)


async def on_startup(app: Litestar) -> None:
    state = FlutterwaveState(app.state.config)
    state.outbox = Outbox()
    app.state.flutterwave = state


async def on_shutdown(app: Litestar) -> None:
    state = getattr(app.state, "flutterwave", None)
    if state is not None and state.outbox is not None:
        await state.outbox.close()
