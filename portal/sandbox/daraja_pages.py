"""Pages for people: the sandbox index (/), the simulated phone (/phone) and a Paybill (/paybill).

Server-rendered HTML from templates/daraja/, plain forms (POST + redirect), no external assets.
Pages poll a tiny JSON fingerprint and reload themselves when something changed.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, get, post
from litestar.enums import MediaType
from litestar.params import FromPath
from litestar.response import Redirect, Response

from portal.sandbox import daraja_control
from portal.sandbox.daraja_api import Invalid, validate_simulate
from portal.sandbox.daraja_engine import answer_prompt, start_c2b_payment
from portal.sandbox.daraja_state import (
    EAT,
    MAGIC_AMOUNTS,
    MAGIC_PHONES,
    SCENARIOS,
    WRONG_PIN,
    DarajaStore,
)

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates" / "daraja"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["kes"] = lambda amount: f"{int(amount):,}"
_env.filters["clock"] = lambda ts: datetime.fromtimestamp(ts, EAT).strftime("%H:%M:%S") if ts else ""

# Paths of the machine APIs: the index lists every other parameterless GET page of the app.
_API_PREFIXES = ("/_sandbox", "/oauth", "/mpesa", "/v3", "/version1", "/healthz", "/phone/",
                 "/paybill/", "/schema")


def _store(request: Request) -> DarajaStore:
    return request.app.state.daraja


def _html(template: str, status: int = 200, **context) -> Response:
    return Response(content=_env.get_template(template).render(**context), status_code=status,
                    media_type=MediaType.HTML)


def normalise_msisdn(text: str) -> str | None:
    """07.., 01.., +2547.., 2547.. (spaces/dashes allowed) -> 2547XXXXXXXX / 2541XXXXXXXX."""
    digits = re.sub(r"[\s\-()]", "", text or "")
    if digits.startswith("+"):
        digits = digits[1:]
    if re.fullmatch(r"0[17][0-9]{8}", digits):
        digits = "254" + digits[1:]
    elif re.fullmatch(r"[17][0-9]{8}", digits):
        digits = "254" + digits
    return digits if re.fullmatch(r"254[17][0-9]{8}", digits) else None


def _fingerprint(parts) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# Index


@get("/")
async def index(request: Request) -> Response:
    store = _store(request)
    others = sorted({
        r.path for r in request.app.routes
        if "GET" in getattr(r, "methods", ()) and "{" not in r.path
        and r.path not in ("/", "/phone", "/paybill") and not r.path.startswith(_API_PREFIXES)
    })
    return _html(
        "index.html", title="Gateway sandbox", scenarios=SCENARIOS, magic_phones=MAGIC_PHONES,
        magic_amounts=MAGIC_AMOUNTS, settings=store.settings, config=store.config,
        wrong_pin=WRONG_PIN, control_routes=[(r.http_methods, r.paths) for r in
                                             daraja_control.route_handlers],
        other_pages=others,
    )


# --------------------------------------------------------------------------------------------
# Simulated phone


def _phone_view(store: DarajaStore, msisdn: str) -> dict:
    pending = [r for r in store.stk.values() if r.phone == msisdn and r.state == "pending"]
    history = [r for r in store.stk.values() if r.phone == msisdn and r.state != "pending"]
    paid_in = [p for p in store.c2b.values() if p.msisdn == msisdn and p.via != "stk"]
    return {"pending": pending, "history": list(reversed(history)),
            "paybill": list(reversed(paid_in))}


def _phone_fingerprint(store: DarajaStore, msisdn: str | None) -> str:
    if not msisdn:
        return _fingerprint(sorted({r.phone for r in store.stk.values() if r.state == "pending"}))
    return _fingerprint(
        [(r.checkout_request_id, r.state, r.callbacks_sent) for r in store.stk.values()
         if r.phone == msisdn]
        + [(p.trans_id, p.state) for p in store.c2b.values() if p.msisdn == msisdn]
    )


@get("/phone")
async def phone_page(request: Request) -> Response:
    store = _store(request)
    raw = request.query_params.get("msisdn", "")
    msisdn = normalise_msisdn(raw) if raw else None
    error = request.query_params.get("error", "")
    if raw and msisdn is None:
        error = f"{raw!r} is not a Safaricom number (07XX, 01XX or 2547/2541 + 8 digits)."
    view = _phone_view(store, msisdn) if msisdn else None
    ringing = sorted({r.phone for r in store.stk.values() if r.state == "pending"})
    recent = list(dict.fromkeys(r.phone for r in reversed(store.stk.values())))[:8]
    state_url = "/phone/state?" + urlencode({"msisdn": msisdn or ""})
    return _html(
        "phone.html", title=f"Phone {msisdn}" if msisdn else "Simulated phone", msisdn=msisdn,
        raw=raw, error=error, view=view, ringing=ringing, recent=recent,
        magic_phones=MAGIC_PHONES, wrong_pin=WRONG_PIN, state_url=state_url,
        fingerprint=_phone_fingerprint(store, msisdn),
    )


@get("/phone/state")
async def phone_state(request: Request) -> Response:
    msisdn = normalise_msisdn(request.query_params.get("msisdn", ""))
    return Response(content={"v": _phone_fingerprint(_store(request), msisdn)},
                    media_type=MediaType.JSON)


def _back_to_phone(msisdn: str, error: str = "") -> Redirect:
    query = {"msisdn": msisdn}
    if error:
        query["error"] = error
    return Redirect(path="/phone?" + urlencode(query), status_code=303)


async def _answer_from_page(request: Request, checkout_request_id: str, accept: bool):
    store = _store(request)
    req = store.stk.get(checkout_request_id)
    if req is None:
        return _html("message.html", status=404, title="Unknown prompt",
                     message="That prompt does not exist (the sandbox may have been reset).")
    form = await request.form()
    pin = str(form.get("pin", "")).strip()
    if accept and not re.fullmatch(r"[0-9]{4,6}", pin):
        return _back_to_phone(req.phone, "Enter your M-PESA PIN (4 digits) to accept.")
    if not await answer_prompt(store, req, accept, pin, "phone"):
        return _back_to_phone(req.phone, "That prompt is no longer open.")
    return _back_to_phone(req.phone)


@post("/phone/prompts/{checkout_request_id:str}/accept")
async def phone_accept(request: Request, checkout_request_id: FromPath[str]) -> Response:
    return await _answer_from_page(request, checkout_request_id, True)


@post("/phone/prompts/{checkout_request_id:str}/decline")
async def phone_decline(request: Request, checkout_request_id: FromPath[str]) -> Response:
    return await _answer_from_page(request, checkout_request_id, False)


# --------------------------------------------------------------------------------------------
# Paybill


def _paybill_fingerprint(store: DarajaStore) -> str:
    return _fingerprint([(p.trans_id, p.state, p.notified) for p in store.c2b.values()])


def _paybill_page(store: DarajaStore, status: int = 200, error: str = "", form: dict | None = None,
                  sent: str = "") -> Response:
    regs = list(store.registrations.values())
    default_shortcode = regs[-1].short_code if regs else store.config.daraja_shortcode
    form = form or {}
    form.setdefault("shortcode", default_shortcode)
    payments = [p for p in reversed(store.c2b.values())][:20]
    return _html(
        "paybill.html", status=status, title="Pay Bill", error=error, form=form, sent=sent,
        sent_payment=store.c2b.get(sent), registrations=regs, payments=payments,
        state_url="/paybill/state", fingerprint=_paybill_fingerprint(store),
    )


@get("/paybill")
async def paybill_page(request: Request) -> Response:
    store = _store(request)
    q = request.query_params
    form = {"phone": q.get("msisdn", ""), "amount": q.get("amount", ""),
            "account": q.get("account", "")}
    if q.get("shortcode"):
        form["shortcode"] = q["shortcode"]
    return _paybill_page(store, form=form, sent=q.get("sent", ""))


@get("/paybill/state")
async def paybill_state(request: Request) -> Response:
    return Response(content={"v": _paybill_fingerprint(_store(request))},
                    media_type=MediaType.JSON)


_FIELD_LABELS = {"ShortCode": "Business number", "Amount": "Amount", "Msisdn": "Phone number",
                 "BillRefNumber": "Account number", "CommandID": "Payment type"}


@post("/paybill")
async def paybill_submit(request: Request) -> Response:
    store = _store(request)
    f = await request.form()
    form = {k: str(f.get(k, "")).strip() for k in ("phone", "amount", "account", "shortcode")}
    msisdn = normalise_msisdn(form["phone"]) or form["phone"]
    data = {"ShortCode": form["shortcode"], "CommandID": "CustomerPayBillOnline",
            "Amount": form["amount"], "Msisdn": msisdn, "BillRefNumber": form["account"]}
    try:
        shortcode, command, amount, msisdn, bill_ref = validate_simulate(store, data)
    except Invalid as exc:
        limit = f" (1 to {store.settings.max_amount:,}, whole shillings)" if exc.field == "Amount" else ""
        return _paybill_page(store, 400, f"Invalid {_FIELD_LABELS[exc.field]}{limit}.", form)
    pay = start_c2b_payment(store, shortcode, command, amount, msisdn, bill_ref, "paybill-page")
    return Redirect(path="/paybill?" + urlencode({"sent": pay.trans_id}), status_code=303)


route_handlers = [index, phone_page, phone_state, phone_accept, phone_decline, paybill_page,
                  paybill_state, paybill_submit]
