"""Simulator of Daraja's Pull Transactions API and of the M-Pesa org portal's statement export,
written from docs/reconciliation-formats.md (which cites its sources). Shares no code with the
portal's client (portal/gateways/daraja_pull.py) nor its statement reader (portal/reconcile).

Wire API
--------
POST /pulltransactions/v1/register  {"ShortCode", "RequestType": "Pull", "NominatedNumber", "CallBackURL"}
     -> {"ResponseRefID", "ResponseStatus": "1000", "ResponseDescription": "Success"}   [U] envelope
POST /pulltransactions/v1/query     {"ShortCode", "StartDate", "EndDate", "OffSetValue"}
     StartDate/EndDate "YYYY-MM-DD HH:MM:SS" in Nairobi time; OffSetValue = records to skip.
     -> {"ResponseRefID", "ResponseCode": "1000", "ResponseMessage": "Success",
         "Response": [[{"transactionId", "trxDate", "msisdn", "sender", "transactiontype",
                        "billreference", "amount", "organizationname"}, ...]]}
     A shortcode not registered for Pull -> 400 {"errorCode": "400.002.02", "errorMessage": "Bad
     Request - ShortCode not registered for Pull"} [U]. Only the last 48 hours are kept; a page
     holds pull_page_size records (default 1000 [U]); past the end the Response is [[]].

The book is the simulator's own ledger of money that reached the shortcode (Paybill payments and
STK payments), the one Transaction Status and Reversal read.

Control (not Daraja) under /_sandbox/daraja
-------------------------------------------
POST /c2b/lose {"next": N}          the next N Paybill confirmations are never POSTed (the money
                                    still reaches the shortcode: Pull and the statement show it)
POST /c2b/{TransID}/confirm         POST a withheld confirmation now (the "late real confirmation")
POST /pull/settings {"page_size": N}
POST /pull/age {"receipt": ..., "hours": N}   the payment completed N hours earlier (48 h: no longer kept)
GET  /pull                          registrations, withheld confirmations
GET  /statement.csv?start=YYYY-MM-DD&end=YYYY-MM-DD
                                    the org portal's statement CSV of the shortcode for those days
                                    (Nairobi dates, both included), a reversal as its own line
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from litestar import Request, get, post
from litestar.enums import MediaType
from litestar.params import FromPath
from litestar.response import Response

from portal.sandbox.daraja_api import begin, daraja_error, invalid, ok
from portal.sandbox.daraja_engine import _send_confirmation
from portal.sandbox.daraja_state import (
    EAT,
    DarajaStore,
    customer_first_name,
    make_request_id,
    now_eat,
)

BASE = "/_sandbox/daraja"
KEEP = timedelta(hours=48)
ORGANIZATION = "Sandbox Gym Ltd"
STATEMENT_COLUMNS = ["Receipt No.", "Completion Time", "Initiation Time", "Details", "Transaction Status",
                     "Paid In", "Withdrawn", "Balance", "Balance Confirmed", "Reason Type", "Other Party Info",
                     "Linked Transaction ID", "A/C No."]


@dataclass
class PullState:
    registrations: dict[str, dict] = field(default_factory=dict)  # shortcode -> register body
    lose_next: int = 0
    withheld: dict[str, object] = field(default_factory=dict)  # TransID -> C2BPayment never confirmed
    page_size: int = 1000


def pull_state(store: DarajaStore) -> PullState:
    state = store.__dict__.get("_pull")
    if state is None:
        state = store.__dict__["_pull"] = PullState()
        # The engine asks this before it POSTs a Paybill confirmation (it cannot import this module).
        store.__dict__["confirmation_lost"] = lambda pay: confirmation_lost(store, pay)
    return state


def confirmation_lost(store: DarajaStore, pay) -> bool:
    """Called by the engine before it POSTs a Paybill confirmation: True when the scenario says
    this one is lost (the payment itself completed: the ledger has it)."""
    state = pull_state(store)
    if state.lose_next <= 0:
        return False
    state.lose_next -= 1
    state.withheld[pay.trans_id] = pay
    pay.note = (pay.note + "; " if pay.note else "") + "confirmation lost (scenario)"
    return True


def _json(content, status: int = 200) -> Response:
    return Response(content=content, status_code=status, media_type=MediaType.JSON)


def _account_of(store: DarajaStore, receipt: str) -> str:
    pay = store.c2b.get(receipt)
    return pay.bill_ref_number if pay is not None else ""


def _parse_date(value, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(name)
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=EAT)
    except ValueError:
        raise ValueError(name) from None


@post("/pulltransactions/v1/register")
async def pull_register(request: Request) -> Response:
    started = await begin(request, "c2b", "ShortCode")
    if isinstance(started, Response):
        return started
    store, data = started
    short_code = str(data.get("ShortCode") or "").strip()
    if not short_code.isdigit() or not 5 <= len(short_code) <= 7:
        return invalid("ShortCode")
    if data.get("RequestType") != "Pull":
        return invalid("RequestType")
    nominated = str(data.get("NominatedNumber") or "").strip()
    if not nominated.isdigit() or len(nominated) not in (10, 12):
        return invalid("NominatedNumber")
    url = data.get("CallBackURL")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return invalid("CallBackURL")
    pull_state(store).registrations[short_code] = {"NominatedNumber": nominated, "CallBackURL": url}
    return ok({"ResponseRefID": make_request_id(), "ResponseStatus": "1000", "ResponseDescription": "Success"})


@post("/pulltransactions/v1/query")
async def pull_query(request: Request) -> Response:
    started = await begin(request, "c2b", "ShortCode")
    if isinstance(started, Response):
        return started
    store, data = started
    state = pull_state(store)
    short_code = str(data.get("ShortCode") or "").strip()
    if short_code not in state.registrations:
        return daraja_error(400, "400.002.02", "Bad Request - ShortCode not registered for Pull")
    try:
        start = _parse_date(data.get("StartDate"), "StartDate")
        end = _parse_date(data.get("EndDate"), "EndDate")
    except ValueError as e:
        return invalid(str(e))
    try:
        offset = int(str(data.get("OffSetValue", "0")).strip())
        if offset < 0:
            raise ValueError
    except ValueError:
        return invalid("OffSetValue")
    oldest = now_eat() - KEEP
    entries = sorted((e for e in store.ledger.values()
                      if e.short_code == short_code and e.completed_at >= oldest and start <= e.completed_at <= end),
                     key=lambda e: (e.completed_at, e.receipt))
    page = entries[offset:offset + state.page_size]
    records = [{
        "transactionId": e.receipt,
        "trxDate": e.completed_at.isoformat(timespec="milliseconds"),
        "msisdn": int(e.msisdn),
        "sender": customer_first_name(e.msisdn),
        "transactiontype": "c2b-pay-bill-debit",
        "billreference": _account_of(store, e.receipt),
        "amount": str(e.amount),
        "organizationname": ORGANIZATION,
    } for e in page]
    return ok({"ResponseRefID": make_request_id(), "ResponseCode": "1000", "ResponseMessage": "Success",
               "Response": [records]})


@post(f"{BASE}/c2b/lose")
async def lose_confirmations(request: Request) -> Response:
    data = json.loads(await request.body() or b"{}")
    n = data.get("next") if isinstance(data, dict) else None
    if not isinstance(n, int) or n < 0:
        return _json({"error": "next: a whole number"}, 400)
    pull_state(request.app.state.daraja).lose_next = n
    return _json({"lose_next": n})


@post(f"{BASE}/c2b/{{trans_id:str}}/confirm")
async def confirm_withheld(request: Request, trans_id: FromPath[str]) -> Response:
    store = request.app.state.daraja
    pay = pull_state(store).withheld.pop(trans_id, None)
    reg = store.registrations.get(pay.short_code) if pay is not None else None
    if pay is None or reg is None:
        return _json({"error": f"no withheld confirmation {trans_id}"}, 404)
    await _send_confirmation(store, pay, reg)
    return _json({"posted": trans_id})


@post(f"{BASE}/pull/settings")
async def pull_settings(request: Request) -> Response:
    data = json.loads(await request.body() or b"{}")
    size = data.get("page_size") if isinstance(data, dict) else None
    if not isinstance(size, int) or size < 1:
        return _json({"error": "page_size: a whole number of at least 1"}, 400)
    pull_state(request.app.state.daraja).page_size = size
    return _json({"page_size": size})


@post(f"{BASE}/pull/age")
async def age_entry(request: Request) -> Response:
    """Move a receipt's completion back by `hours` (to show what Daraja no longer keeps)."""
    data = json.loads(await request.body() or b"{}")
    store = request.app.state.daraja
    entry = store.ledger.get(str(data.get("receipt"))) if isinstance(data, dict) else None
    hours = data.get("hours") if isinstance(data, dict) else None
    if entry is None or not isinstance(hours, (int, float)):
        return _json({"error": "receipt (known) and hours (a number)"}, 400)
    entry.completed_at -= timedelta(hours=hours)
    return _json({"receipt": entry.receipt, "completed_at": entry.completed_at.isoformat()})


@get(f"{BASE}/pull")
async def pull_info(request: Request) -> Response:
    state = pull_state(request.app.state.daraja)
    return _json({"registrations": state.registrations, "lose_next": state.lose_next,
                  "withheld": sorted(state.withheld), "page_size": state.page_size})


def _money(amount: Decimal | int) -> str:
    return f"{Decimal(amount):,.2f}"


def statement_rows(store: DarajaStore, start: date, end: date) -> list[list[str]]:
    """The org portal's lines for the shortcode's book: newest first (as the portal lists them),
    a payment as Paid In, a reversal as its own Withdrawn line linked to the payment it reverses."""
    events = []
    for e in store.ledger.values():
        events.append((e.completed_at, e.receipt, "in", e))
        if e.reversed_by:
            events.append((e.completed_at + timedelta(seconds=1), e.reversed_by, "out", e))
    events.sort(key=lambda ev: (ev[0], ev[1]))
    balance, rows = Decimal(0), []
    for at, receipt, way, e in events:
        amount = Decimal(e.amount)
        balance += amount if way == "in" else -amount
        if not start <= at.astimezone(EAT).date() <= end:
            continue
        name = customer_first_name(e.msisdn)
        account = _account_of(store, e.receipt)
        when = at.astimezone(EAT).strftime("%Y-%m-%d %H:%M:%S")
        if way == "in":
            rows.append([receipt, when, when, f"Pay Bill from {e.msisdn} - {name} Acc. {account}", "Completed",
                         _money(amount), "", _money(balance), "true", "Pay Bill Online", f"{e.msisdn} - {name}", "",
                         account])
        else:
            rows.append([receipt, when, when, f"Pay Bill Online Reversal of {e.receipt}", "Completed", "",
                         "-" + _money(amount), _money(balance), "true", "Pay Bill Online Reversal",
                         f"{e.msisdn} - {name}", e.receipt, account])
    rows.reverse()
    return rows


@get(f"{BASE}/statement.csv")
async def statement_export(request: Request) -> Response:
    store = request.app.state.daraja
    try:
        start = date.fromisoformat(request.query_params.get("start", ""))
        end = date.fromisoformat(request.query_params.get("end", ""))
    except ValueError:
        return _json({"error": "start and end: YYYY-MM-DD"}, 400)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    short_code = store.config.daraja_shortcode if hasattr(store.config, "daraja_shortcode") else ""
    w.writerow(["Organisation Name:", ORGANIZATION])
    w.writerow(["Short Code:", short_code])
    w.writerow(["Time Period:", f"{start.isoformat()} 00:00:00 - {end.isoformat()} 23:59:59"])
    w.writerow([])
    w.writerow(STATEMENT_COLUMNS)
    w.writerows(statement_rows(store, start, end))
    return Response(content=out.getvalue(), media_type="text/csv",
                    headers={"content-disposition": f'attachment; filename="ORG_statement_{start}_{end}.csv"'})


route_handlers = [pull_register, pull_query, lose_confirmations, confirm_withheld, pull_settings, age_entry, pull_info,
                  statement_export]
