"""Simulated Africa's Talking SMS (gateways.md §3): send, per-recipient statuses, delivery reports.

Written from gateways.md only; it shares no code with the portal's client.

    POST /version1/messaging   form-encoded: username, to (comma separated), message, from?,
                               bulkSMSMode?, enqueue?, keyword?, linkId?, retryDurationInHours?
                               headers: apiKey, Accept: application/json

* Wrong/missing `apiKey` or wrong `username` -> HTTP 401, text/plain
  `The supplied authentication is invalid` (gateways.md §3.1, pitfall 26).
* A missing username/to/message -> HTTP 400, text/plain `Request is missing required form field
  'to'` (sandbox choice; the doc does not give this error).
* Success -> HTTP **201** with `{"SMSMessageData": {"Message": "Sent to 1/1 Total Cost: KES 0.8000",
  "Recipients": [{"statusCode", "number", "status", "cost", "messageId"}]}}`, one entry per number
  in request order. Without `Accept: application/json` the same data comes back as XML
  (pitfall 25; the XML element names are a reconstruction). Recipients that were not accepted
  carry `"cost": "0"` and `"messageId": "None"`; with nobody accepted the summary reads
  `Sent to 0/N Total Cost: 0` (sandbox choice, [U]).
* Cost: KES 0.8000 per message part (config.at_cost_per_part). Parts as AT/GSM count them:
  GSM-7 text up to 160 septets is 1 part, longer is ceil(septets / 153) (the extension characters
  ^ { } \\ [ ] ~ | € and form feed take 2 septets); any other character makes it UCS-2: up to 70
  UTF-16 units is 1 part, longer ceil(units / 67).
* `from` defaults to AFRICASTKNG. With config.at_sender_ids set (comma separated), any other
  `from` is refused: every recipient gets 402 InvalidSenderId, or, with
  config.at_invalid_sender = "401", the whole request gets the 401 text.

Recipient numbers (statusCode table of gateways.md §3.1):

    number                          send statusCode / status       delivery reports (DLR)
    +2547XXXXXXXX, +2541XXXXXXXX    101 Success                    Success, retryCount 0
    other valid E.164 (+CC…)        101 Success                    Success (networkCode 99999)
    not E.164 (0712…, 2547…, junk)  403 InvalidPhoneNumber         none
    +254 + 9 other digits           403 InvalidPhoneNumber         none
    Kenyan fixed line +2542…–+2546… 404 UnsupportedNumberType      none
    +254700000CCC, CCC a statusCode of the table (100, 102, 401, 402, 403, 404, 405, 406, 407,
                   409, 500, 501, 502): that statusCode; 100/102 are accepted and get a Success DLR
    +254700000405                   405 InsufficientBalance        none
    +254700000901 … 909             101 Success                    Failed, failureReason:
                                      901 InsufficientCredit, 902 InvalidLinkId, 903 UserIsInactive,
                                      904 UserInBlackList, 905 UserAccountSuspended,
                                      906 NotNetworkSubscriber, 907 UserNotSubscribedToProduct,
                                      908 UserDoesNotExist, 909 DeliveryFailure (retryCount 2)
    +254700000910                   101 Success                    Rejected, UserInBlackList
    +254700000990                   101 Success                    Buffered (retryCount 0), then
                                                                   Success (retryCount 1)
    +254700000999                   101 Success                    none (the report never comes)

Delivery reports: config.callback_delay after the send (and between steps), a form-encoded POST
to config.at_delivery_report_url: id, status, phoneNumber, networkCode, failureReason (only for
Failed/Rejected), retryCount. networkCode from the prefix: 63902 Safaricom, 63903 Airtel,
63907 Telkom, 63999 Equitel, else 99999 (AT's sandbox simulator).

People: GET /sms is an inbox showing what each phone received, newest first (?phone= filters).

Control API (JSON, no auth):

    GET  /_sandbox/at/messages[?phone=]         {"messages": [...]} one entry per recipient, with
                                                the request as it arrived ("request": form, headers)
    GET  /_sandbox/at/deliveries[?message_id=]  {"deliveries": [...]} every DLR attempt
    POST /_sandbox/at/messages/{messageId}/dlr  resend the final DLR now (or {"status",
                                                "failureReason", "retryCount"} to override)
    GET  /_sandbox/at/settings                  {"settings": {...}}
    POST /_sandbox/at/settings                  patch: sender_ids (list), invalid_sender,
                                                delivery_report_url
    POST /_sandbox/at/reset                     forget everything, cancel pending reports
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import re
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Litestar, Request, Router, get, post
from litestar.params import FromPath
from litestar.response import Response

from portal.sandbox.config import SandboxConfig

log = logging.getLogger("portal.sandbox.africastalking")

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)

AUTH_FAILED = "The supplied authentication is invalid"
DEFAULT_SENDER = "AFRICASTKNG"

STATUSES = {
    100: "Processed",
    101: "Success",
    102: "Queued",
    401: "RiskHold",
    402: "InvalidSenderId",
    403: "InvalidPhoneNumber",
    404: "UnsupportedNumberType",
    405: "InsufficientBalance",
    406: "UserInBlacklist",
    407: "CouldNotRoute",
    409: "DoNotDisturbRejection",
    500: "InternalServerError",
    501: "GatewayError",
    502: "RejectedByGateway",
}
ACCEPTED = {100, 101, 102}
FAILURE_REASONS = {
    901: "InsufficientCredit",
    902: "InvalidLinkId",
    903: "UserIsInactive",
    904: "UserInBlackList",
    905: "UserAccountSuspended",
    906: "NotNetworkSubscriber",
    907: "UserNotSubscribedToProduct",
    908: "UserDoesNotExist",
    909: "DeliveryFailure",
}

# GSM 03.38 default alphabet and its extension table (escape + char = 2 septets).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_KE_MOBILE = re.compile(r"^\+254[17]\d{8}$")
_KE_FIXED = re.compile(r"^\+254[2-6]\d{7,8}$")
_MAGIC = re.compile(r"^\+254700000(\d{3})$")


def count_parts(text: str) -> tuple[str, int, int]:
    """(encoding, length in septets or UTF-16 units, number of parts)."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        septets = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        return "GSM-7", septets, 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return "UCS-2", units, 1 if units <= 70 else math.ceil(units / 67)


def network_code(number: str) -> str:
    if not number.startswith("+254") or len(number) != 13:
        return "99999"
    p = int(number[4:7])
    if (
        700 <= p <= 729
        or p in (740, 741, 742, 743, 745, 746, 748, 757, 758, 759, 768, 769)
        or 790 <= p <= 799
        or 110 <= p <= 115
    ):
        return "63902"
    if 730 <= p <= 739 or 750 <= p <= 756 or p == 762 or 780 <= p <= 789 or 100 <= p <= 102:
        return "63903"
    if 770 <= p <= 779:
        return "63907"
    if 763 <= p <= 766:
        return "63999"
    return "99999"


DlrStep = tuple[str, str | None, int]  # (status, failureReason, retryCount)


def route(number: str) -> tuple[int, list[DlrStep]]:
    """Send statusCode and the delivery reports that follow, from the number alone."""
    magic = _MAGIC.match(number)
    if magic:
        code = int(magic.group(1))
        if code in STATUSES:
            return code, [("Success", None, 0)] if code in ACCEPTED else []
        if code in FAILURE_REASONS:
            return 101, [("Failed", FAILURE_REASONS[code], 2 if code == 909 else 0)]
        if code == 910:
            return 101, [("Rejected", "UserInBlackList", 0)]
        if code == 990:
            return 101, [("Buffered", None, 0), ("Success", None, 1)]
        if code == 999:
            return 101, []
    if not _E164.match(number):
        return 403, []
    if number.startswith("+254"):
        if _KE_MOBILE.match(number):
            return 101, [("Success", None, 0)]
        return (404 if _KE_FIXED.match(number) else 403), []
    return 101, [("Success", None, 0)]


def now_iso() -> str:
    t = datetime.now(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


@dataclass
class DlrAttempt:
    id: int
    message_id: str
    url: str
    form: dict[str, str]
    sent_at: str
    status_code: int | None = None
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "message_id": self.message_id,
            "url": self.url,
            "form": self.form,
            "sent_at": self.sent_at,
            "status_code": self.status_code,
            "error": self.error,
        }


@dataclass
class Sms:
    """One recipient of one send request."""

    message_id: str | None
    number: str
    text: str
    sender: str
    status_code: int
    cost: Decimal
    encoding: str
    length: int
    parts: int
    network_code: str
    created_at: str
    dlr_plan: list[DlrStep]
    dlr_status: str | None = None
    failure_reason: str | None = None
    deliveries: list[DlrAttempt] = field(default_factory=list)
    # The request as it arrived (form fields, and the headers the doc names), for tests that
    # check a client sends exactly the documented request.
    request_form: dict[str, str] = field(default_factory=dict)
    request_headers: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return STATUSES[self.status_code]

    @property
    def cost_text(self) -> str:
        return f"KES {self.cost:.4f}" if self.status_code in ACCEPTED else "0"

    def recipient(self) -> dict[str, Any]:
        return {
            "statusCode": self.status_code,
            "number": self.number,
            "status": self.status,
            "cost": self.cost_text,
            "messageId": self.message_id or "None",
        }

    def summary(self) -> dict[str, Any]:
        return {
            **self.recipient(),
            "message": self.text,
            "from": self.sender,
            "encoding": self.encoding,
            "length": self.length,
            "parts": self.parts,
            "networkCode": self.network_code,
            "created_at": self.created_at,
            "dlr_status": self.dlr_status,
            "failureReason": self.failure_reason,
            "deliveries": [d.summary() for d in self.deliveries],
            "request": {"form": self.request_form, "headers": self.request_headers},
        }


@dataclass
class Settings:
    sender_ids: list[str]
    invalid_sender: str  # recipient | 401
    delivery_report_url: str | None  # None: follow config.at_delivery_report_url

    @classmethod
    def from_config(cls, c: SandboxConfig) -> Settings:
        ids = [s.strip() for s in c.at_sender_ids.split(",") if s.strip()]
        return cls(ids, c.at_invalid_sender, None)

    def update(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            if name == "sender_ids":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError("sender_ids must be a list of strings")
            elif name == "invalid_sender":
                if value not in ("recipient", "401"):
                    raise ValueError("invalid_sender must be 'recipient' or '401'")
            elif name == "delivery_report_url":
                if value is not None and not isinstance(value, str):
                    raise ValueError("delivery_report_url must be a string or null")
            else:
                raise ValueError(f"unknown setting {name!r}")
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sender_ids": self.sender_ids,
            "invalid_sender": self.invalid_sender,
            "delivery_report_url": self.delivery_report_url,
        }


class AtState:
    """Everything the simulator knows, on app.state.africastalking. Handlers never await between
    reading and changing it, so no lock is needed on the single event loop."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._attempt_ids = itertools.count(1)
        self.client = httpx.AsyncClient(
            timeout=10.0, trust_env=False
        )  # callbacks are local: no proxies
        self.tasks: set[asyncio.Task] = set()
        self.reset()

    def reset(self) -> None:
        self.settings = Settings.from_config(self.config)
        self.messages: list[Sms] = []
        self.by_id: dict[str, Sms] = {}
        self.deliveries: list[DlrAttempt] = []

    @property
    def delivery_report_url(self) -> str:
        s = self.settings.delivery_report_url
        return self.config.at_delivery_report_url if s is None else s

    def settings_view(self) -> dict[str, Any]:
        return {**self.settings.as_dict(), "delivery_report_url": self.delivery_report_url}

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def cancel_all(self) -> None:
        tasks = list(self.tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def add(self, sms: Sms) -> None:
        self.messages.append(sms)
        if sms.message_id:
            self.by_id[sms.message_id] = sms

    async def post_dlr(self, sms: Sms, step: DlrStep) -> DlrAttempt:
        status, reason, retries = step
        form = {
            "id": sms.message_id,
            "status": status,
            "phoneNumber": sms.number,
            "networkCode": sms.network_code,
        }
        if reason:
            form["failureReason"] = reason
        form["retryCount"] = str(retries)
        sms.dlr_status, sms.failure_reason = status, reason
        url = self.delivery_report_url
        attempt = DlrAttempt(next(self._attempt_ids), sms.message_id, url, form, now_iso())
        self.deliveries.append(attempt)
        sms.deliveries.append(attempt)
        if not url:
            attempt.error = "no delivery report URL configured"
            return attempt
        try:
            r = await self.client.post(url, data=form)
            attempt.status_code = r.status_code
        except asyncio.CancelledError:
            attempt.error = "cancelled"
            raise
        except Exception as e:  # noqa: BLE001 - whatever the portal's end does, carry on
            attempt.error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            log.info("delivery report to %s failed: %s", url, attempt.error)
        return attempt

    def schedule_dlrs(self, sms: Sms) -> None:
        if not sms.dlr_plan:
            return

        async def deliver() -> None:
            for step in sms.dlr_plan:
                await asyncio.sleep(self.config.callback_delay)
                await self.post_dlr(sms, step)

        self.spawn(deliver())


def _state(request: Request) -> AtState:
    return request.app.state.africastalking


def _text(body: str, status: int) -> Response:
    return Response(body, status_code=status, media_type="text/plain")


def _xml(data: dict[str, Any]) -> str:
    d = data["SMSMessageData"]
    recipients = "".join(
        "<Recipient>"
        + "".join(
            f"<{k}>{escape(str(r[k]))}</{k}>"
            for k in ("number", "cost", "status", "statusCode", "messageId")
        )
        + "</Recipient>"
        for r in d["Recipients"]
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<AfricasTalkingResponse><SMSMessageData>'
        f"<Message>{escape(d['Message'])}</Message><Recipients>{recipients}</Recipients>"
        "</SMSMessageData></AfricasTalkingResponse>"
    )


@post("/version1/messaging")
async def send_sms(request: Request) -> Response:
    state = _state(request)
    config = state.config
    if request.headers.get("apikey") != config.at_api_key:
        return _text(AUTH_FAILED, 401)
    form = await request.form()
    for name in ("username", "to", "message"):
        if not (form.get(name) or "").strip():
            return _text(f"Request is missing required form field '{name}'", 400)
    if form.get("username") != config.at_username:
        return _text(AUTH_FAILED, 401)
    sender = (form.get("from") or "").strip() or DEFAULT_SENDER
    bad_sender = (
        bool(state.settings.sender_ids)
        and sender != DEFAULT_SENDER
        and sender not in state.settings.sender_ids
    )
    if bad_sender and state.settings.invalid_sender == "401":
        return _text(AUTH_FAILED, 401)
    numbers = [n.strip() for n in form.get("to").split(",") if n.strip()]
    if not numbers:
        return _text("Request is missing required form field 'to'", 400)
    text = form.get("message")
    encoding, length, parts = count_parts(text)
    sent: list[Sms] = []
    for number in numbers:
        code, plan = route(number)
        if bad_sender:
            code, plan = 402, []
        accepted = code in ACCEPTED
        sms = Sms(
            message_id=f"ATXid_{secrets.token_hex(16)}" if accepted else None,
            number=number,
            text=text,
            sender=sender,
            status_code=code,
            cost=config.at_cost_per_part * parts if accepted else Decimal(0),
            encoding=encoding,
            length=length,
            parts=parts,
            network_code=network_code(number),
            created_at=now_iso(),
            dlr_plan=plan,
            request_form={k: v for k, v in form.items()},
            request_headers={k: request.headers[k] for k in ("apikey", "accept", "content-type") if k in request.headers},
        )
        state.add(sms)
        sent.append(sms)
        if accepted:
            state.schedule_dlrs(sms)
    ok = [s for s in sent if s.status_code in ACCEPTED]
    total = sum((s.cost for s in ok), Decimal(0))
    cost = f"KES {total:.4f}" if ok else "0"
    data = {
        "SMSMessageData": {
            "Message": f"Sent to {len(ok)}/{len(sent)} Total Cost: {cost}",
            "Recipients": [s.recipient() for s in sent],
        }
    }
    if "application/json" not in request.headers.get("accept", "").lower():
        return Response(_xml(data), status_code=201, media_type="application/xml")
    return Response(data, status_code=201)


def _normal_phone(raw: str | None) -> str | None:
    """'+2547…' arrives as ' 2547…' when a query string is not encoded: accept both."""
    if not raw or not raw.strip():
        return None
    raw = raw.strip()
    return raw if raw.startswith("+") else f"+{raw}" if raw.isdigit() else raw


@get("/sms")
async def inbox(request: Request) -> Response:
    state = _state(request)
    phone = _normal_phone(request.query_params.get("phone"))
    phones: dict[str, list[Sms]] = {}
    for sms in reversed(state.messages):
        if phone is None or sms.number == phone:
            phones.setdefault(sms.number, []).append(sms)
    body = _templates.get_template("africastalking/inbox.html").render(phones=phones, phone=phone)
    return Response(body, media_type="text/html; charset=utf-8")


@get("/_sandbox/at/messages")
async def list_messages(request: Request) -> Response:
    phone = _normal_phone(request.query_params.get("phone"))
    msgs = [m for m in _state(request).messages if phone is None or m.number == phone]
    return Response({"messages": [m.summary() for m in msgs]})


@get("/_sandbox/at/deliveries")
async def list_deliveries(request: Request) -> Response:
    mid = request.query_params.get("message_id")
    return Response(
        {
            "deliveries": [
                d.summary()
                for d in _state(request).deliveries
                if mid is None or d.message_id == mid
            ]
        }
    )


@post("/_sandbox/at/messages/{message_id:str}/dlr", status_code=200)
async def resend_dlr(request: Request, message_id: FromPath[str]) -> Response:
    state = _state(request)
    sms = state.by_id.get(message_id)
    if sms is None:
        return Response({"error": "no such messageId"}, status_code=404)
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return Response({"error": "body must be a JSON object"}, status_code=400)
    final = sms.dlr_plan[-1] if sms.dlr_plan else ("Success", None, 0)
    status = body.get("status", final[0])
    reason = body.get("failureReason", final[1] if status == final[0] else None)
    retries = body.get("retryCount", final[2])
    if (
        not isinstance(status, str)
        or not isinstance(retries, int)
        or (reason is not None and not isinstance(reason, str))
    ):
        return Response(
            {"error": "status and failureReason must be strings, retryCount an integer"},
            status_code=400,
        )
    attempt = await state.post_dlr(sms, (status, reason, retries))
    return Response({"delivery": attempt.summary()})


@get("/_sandbox/at/settings")
async def get_settings(request: Request) -> Response:
    state = _state(request)
    return Response({"settings": state.settings_view()})


@post("/_sandbox/at/settings", status_code=200)
async def patch_settings(request: Request) -> Response:
    state = _state(request)
    try:
        body = json.loads(await request.body())
        if not isinstance(body, dict):
            raise TypeError("body must be a JSON object")
        state.settings.update(body)
    except (TypeError, ValueError) as e:
        return Response({"error": str(e)}, status_code=400)
    return Response({"settings": state.settings_view()})


@post("/_sandbox/at/reset", status_code=200)
async def reset(request: Request) -> Response:
    state = _state(request)
    await state.cancel_all()
    state.reset()
    return Response({"reset": True})


router = Router(
    path="/",
    route_handlers=[
        send_sms,
        inbox,
        list_messages,
        list_deliveries,
        resend_dlr,
        get_settings,
        patch_settings,
        reset,
    ],
)


async def on_startup(app: Litestar) -> None:
    app.state.africastalking = AtState(app.state.config)


async def on_shutdown(app: Litestar) -> None:
    state = getattr(app.state, "africastalking", None)
    if state is not None:
        await state.cancel_all()
        await state.client.aclose()
