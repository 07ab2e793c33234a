"""Daraja's Pull Transactions API (docs/reconciliation-formats.md §1): register the Paybill once,
then ask for its C2B transactions of a time window (Daraja keeps 48 hours), page by page.

Kept apart from portal/gateways/daraja.py (which it uses for the token, the POST and the error
envelope) so that the two can change independently. The wire is read liberally: the documented
success code is "1000" (older answers and the register call also say "0"), `Response` is a list of
pages (a list of lists) in the documented sample and a flat list in some captures, and `msisdn`
and `amount` come as numbers or strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from portal.gateways.daraja import (
    GATEWAY,
    NAIROBI,
    DarajaClient,
    DarajaFieldError,
    check_callback_url,
)
from portal.gateways.http import GatewayError

REGISTER_PATH = "/pulltransactions/v1/register"
QUERY_PATH = "/pulltransactions/v1/query"
SUCCESS_CODES = {"0", "1000", "00"}
MAX_PAGES = 200  # 200 pages of (documented) up to 1,000 records: far more than a Paybill takes in 48 h


@dataclass(frozen=True)
class PullRecord:
    """One transaction as Pull Transactions lists it; `raw` is the object exactly as sent."""

    transaction_id: str
    raw: dict


@dataclass(frozen=True)
class PullPage:
    records: list[PullRecord]
    offset: int


def daraja_datetime(moment: datetime) -> str:
    """StartDate / EndDate: "YYYY-MM-DD HH:MM:SS", Nairobi time."""
    return moment.astimezone(NAIROBI).strftime("%Y-%m-%d %H:%M:%S")


def _code(data: dict, *names: str) -> str:
    for name in names:
        value = data.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return ""


def _records(data: dict, response, action: str) -> list[PullRecord]:
    items = data.get("Response")
    if items is None:
        return []
    if not isinstance(items, list):
        raise GatewayError(f"{action}: Response is not a list", gateway=GATEWAY, retryable=False,
                           status=response.status_code)
    flat = []
    for item in items:
        flat.extend(item if isinstance(item, list) else [item])
    found = []
    for item in flat:
        tid = item.get("transactionId") if isinstance(item, dict) else None
        if isinstance(tid, str) and tid.strip():
            found.append(PullRecord(tid.strip().upper(), item))
    return found


async def register(client: DarajaClient, nominated_number: str, callback_url: str) -> str:
    """Register our Paybill for Pull Transactions (once; Safaricom asks for a nominated phone
    that receives its notices). Returns Daraja's description."""
    short_code = client._merchant()[0]
    if not nominated_number.isdigit() or len(nominated_number) != 12:
        raise DarajaFieldError("nominated_number", "must be the 12-digit number 2547XXXXXXXX")
    payload = {"ShortCode": short_code, "RequestType": "Pull", "NominatedNumber": nominated_number,
               "CallBackURL": check_callback_url(callback_url, "callback_url", require_https=client.live)}
    response = await client._post(REGISTER_PATH, payload, "Pull register")
    if response.status_code != 200:
        raise client._error(response, "Pull register")
    data = client._json(response, "Pull register")
    code = _code(data, "ResponseStatus", "ResponseCode")
    if code not in SUCCESS_CODES:
        raise GatewayError(f"Pull register not accepted: {data.get('ResponseDescription') or code or 'no code'}",
                           gateway=GATEWAY, retryable=False, status=response.status_code, code=code,
                           body=response.text)
    return str(data.get("ResponseDescription") or "Success")


async def query_page(client: DarajaClient, start: datetime, end: datetime, offset: int) -> PullPage:
    """One page of the window's transactions, `offset` records in."""
    payload = {"ShortCode": client._merchant()[0], "StartDate": daraja_datetime(start),
               "EndDate": daraja_datetime(end), "OffSetValue": str(offset)}
    response = await client._post(QUERY_PATH, payload, "Pull query")
    if response.status_code != 200:
        raise client._error(response, "Pull query")
    data = client._json(response, "Pull query")
    code = _code(data, "ResponseCode", "ResponseStatus")
    if code and code not in SUCCESS_CODES:
        raise GatewayError(f"Pull query not accepted: {data.get('ResponseMessage') or code}", gateway=GATEWAY,
                           retryable=False, status=response.status_code, code=code, body=response.text)
    return PullPage(_records(data, response, "Pull query"), offset)


async def query_all(client: DarajaClient, start: datetime, end: datetime):
    """Every page of the window, in order, until one comes back empty."""
    offset = 0
    for _ in range(MAX_PAGES):
        page = await query_page(client, start, end, offset)
        if not page.records:
            return
        yield page
        offset += len(page.records)
    raise GatewayError(f"Pull query: more than {MAX_PAGES} pages", gateway=GATEWAY, retryable=False)


def record_amount(raw: dict) -> Decimal:
    """`amount` as sent ("1", "3000.00" or a number). ValueError when it is not one."""
    value = raw.get("amount")
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise ValueError(f"amount {value!r} is not an amount")
    try:
        return Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        raise ValueError(f"amount {value!r} is not an amount") from None
