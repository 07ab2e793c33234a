"""Test control API of the Daraja simulator, under /_sandbox/daraja (JSON in, JSON out).

Not part of Daraja: lets tests and the demo look inside the simulator and drive it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from litestar import Request, get, post
from litestar.enums import MediaType
from litestar.params import FromPath
from litestar.response import Response

from portal.sandbox.daraja_engine import answer_prompt, cancel_all, send_stk_callback
from portal.sandbox.daraja_state import MAGIC_AMOUNTS, MAGIC_PHONES, SCENARIOS, DarajaStore

BASE = "/_sandbox/daraja"


def _store(request: Request) -> DarajaStore:
    return request.app.state.daraja


def _json(content: Any, status: int = 200) -> Response:
    return Response(content=content, status_code=status, media_type=MediaType.JSON)


def _problem(status: int, detail: str) -> Response:
    return _json({"error": detail}, status)


async def _body(request: Request) -> dict:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


@get(f"{BASE}/stk")
async def list_stk(request: Request) -> Response:
    """All STK pushes, oldest first; ?phone=2547... and ?state=pending|resolved filter."""
    store = _store(request)
    phone = request.query_params.get("phone")
    state = request.query_params.get("state")
    items = [r.as_dict() for r in store.stk.values()
             if (not phone or r.phone == phone) and (not state or r.state == state)]
    return _json({"items": items})


@get(f"{BASE}/stk/{{checkout_request_id:str}}")
async def get_stk(request: Request, checkout_request_id: FromPath[str]) -> Response:
    req = _store(request).stk.get(checkout_request_id)
    if req is None:
        return _problem(404, "unknown CheckoutRequestID")
    return _json(req.as_dict())


async def _answer(request: Request, checkout_request_id: str, accept: bool) -> Response:
    store = _store(request)
    req = store.stk.get(checkout_request_id)
    if req is None:
        return _problem(404, "unknown CheckoutRequestID")
    try:
        body = await _body(request)
    except ValueError as exc:
        return _problem(400, str(exc))
    pin = str(body.get("pin", "1234"))
    if not await answer_prompt(store, req, accept, pin, "control"):
        return _problem(409, f"not pending (state {req.state}, ResultCode {req.result_code})")
    return _json(req.as_dict())


@post(f"{BASE}/stk/{{checkout_request_id:str}}/accept")
async def accept_stk(request: Request, checkout_request_id: FromPath[str]) -> Response:
    """Body {"pin": "1234"} (optional; "0000" = wrong PIN -> 2001)."""
    return await _answer(request, checkout_request_id, True)


@post(f"{BASE}/stk/{{checkout_request_id:str}}/decline")
async def decline_stk(request: Request, checkout_request_id: FromPath[str]) -> Response:
    return await _answer(request, checkout_request_id, False)


@post(f"{BASE}/stk/{{checkout_request_id:str}}/resend")
async def resend_stk(request: Request, checkout_request_id: FromPath[str]) -> Response:
    """Body {"times": N}: POST the stored callback N more times now; returns the attempts."""
    store = _store(request)
    req = store.stk.get(checkout_request_id)
    if req is None:
        return _problem(404, "unknown CheckoutRequestID")
    if req.callback_body is None:
        return _problem(409, "still pending: there is no callback to resend")
    try:
        times = int((await _body(request)).get("times", 1))
    except (ValueError, TypeError) as exc:
        return _problem(400, str(exc))
    if not 1 <= times <= 50:
        return _problem(400, "times must be 1..50")
    attempts = [(await send_stk_callback(store, req)).as_dict() for _ in range(times)]
    return _json({"attempts": attempts})


@get(f"{BASE}/callbacks")
async def list_callbacks(request: Request) -> Response:
    """Every POST the simulator made; ?kind=stk_callback|c2b_validation|c2b_confirmation|result|
    queue_timeout and ?ref=<CheckoutRequestID|TransID|ConversationID> filter."""
    store = _store(request)
    kind = request.query_params.get("kind")
    ref = request.query_params.get("ref")
    items = [d.as_dict() for d in store.deliveries
             if (not kind or d.kind == kind) and (not ref or d.ref == ref)]
    return _json({"items": items})


@get(f"{BASE}/c2b")
async def list_c2b(request: Request) -> Response:
    store = _store(request)
    return _json({
        "registrations": [vars(r) for r in store.registrations.values()],
        "payments": [p.as_dict() for p in store.c2b.values()],
        "balances": {k: f"{v:.2f}" for k, v in store.balances.items()},
    })


@get(f"{BASE}/async")
async def list_async(request: Request) -> Response:
    """Transaction Status and Reversal requests with the Result each produced."""
    return _json({"items": [a.as_dict() for a in _store(request).async_requests.values()]})


@get(f"{BASE}/ledger")
async def list_ledger(request: Request) -> Response:
    return _json({"items": [e.as_dict() for e in _store(request).ledger.values()]})


@get(f"{BASE}/scenarios")
async def list_scenarios(request: Request) -> Response:
    store = _store(request)
    return _json({
        "scenarios": {n: {"result_code": s.result_code, "delivery": s.delivery,
                          "summary": s.summary} for n, s in SCENARIOS.items()},
        "magic_phones": MAGIC_PHONES,
        "magic_amounts": {str(k): v for k, v in MAGIC_AMOUNTS.items()},
        "bindings": dict(store.phone_bindings),
        "default": store.settings.default_scenario,
    })


@post(f"{BASE}/scenarios")
async def bind_scenario(request: Request) -> Response:
    """Body {"phone": "2547...", "scenario": "cancelled"} (scenario null removes the binding)."""
    store = _store(request)
    try:
        body = await _body(request)
    except ValueError as exc:
        return _problem(400, str(exc))
    phone = str(body.get("phone", ""))
    scenario = body.get("scenario")
    if not phone:
        return _problem(400, "phone is required")
    if scenario is None:
        store.phone_bindings.pop(phone, None)
    elif scenario not in SCENARIOS:
        return _problem(400, f"scenario must be one of {sorted(SCENARIOS)}")
    else:
        store.phone_bindings[phone] = scenario
    return _json({"bindings": dict(store.phone_bindings)})


@get(f"{BASE}/settings")
async def get_settings(request: Request) -> Response:
    return _json(_store(request).settings.as_dict())


@post(f"{BASE}/settings")
async def patch_settings(request: Request) -> Response:
    """Body: any subset of the settings, e.g. {"late_callback_delay": 0.3}."""
    store = _store(request)
    try:
        body = await _body(request)
    except ValueError as exc:
        return _problem(400, str(exc))
    errors = store.settings.update(body)
    if errors:
        return _json({"errors": errors}, 400)
    return _json(store.settings.as_dict())


@post(f"{BASE}/tokens/expire")
async def expire_tokens(request: Request) -> Response:
    store = _store(request)
    now = time.monotonic()
    for token in store.tokens:
        store.tokens[token] = min(store.tokens[token], now)
    return _json({"expired": len(store.tokens)})


@post(f"{BASE}/reset")
async def reset(request: Request) -> Response:
    """Cancel pending work and forget everything (tokens, pushes, registrations, settings)."""
    store = _store(request)
    await cancel_all(store)
    store.clear()
    return _json({"reset": True})


route_handlers = [
    list_stk, get_stk, accept_stk, decline_stk, resend_stk, list_callbacks, list_c2b, list_async,
    list_ledger, list_scenarios, bind_scenario, get_settings, patch_settings, expire_tokens, reset,
]
