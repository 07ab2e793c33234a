"""Money the portal learns of other than by its confirmation: a Pull Transactions record or a
statement line. Each is stored raw in the callbacks store (kind `c2b_pull` / `c2b_statement`,
keyed by its receipt code) and then read as the C2B confirmation it stands for and acted on by the
SAME processor as a confirmation (portal.payments.mpesa.c2b.process_c2b_confirmation): the member
lock, the receipt lock, the STK twin check and the `c2b:<TransID>` idempotency key make it credit
once whichever of confirmation, pull, statement or staff comes first; the others are duplicates.

Phones: only a full 2547XXXXXXXX number is passed on as MSISDN (Pull sends the payer's number as a
number; a statement's "Other Party Info" starts with it when it is not masked). Hashed or masked
numbers are passed as they came and `C2BConfirmation.phone` ignores them (the hook for hashed and
masked phone matching is there: portal.payments.mpesa.c2b.find_member).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal

from portal.callbacks.store import loads
from portal.gateways.daraja import NAIROBI

PULL = "c2b_pull"
STATEMENT = "c2b_statement"
KINDS = (PULL, STATEMENT)

_FULL_PHONE = re.compile(r"(?:\+?254|0)?(7\d{8}|1\d{8})")
_LEADING_NUMBER = re.compile(r"\s*(\+?\d[\d*]{8,14})\s*(?:-\s*(.*))?$")


def _phone(value) -> str:
    """2547XXXXXXXX when `value` is a full Kenyan mobile number, else what was sent, as text."""
    text = str(value).strip() if value is not None else ""
    m = _FULL_PHONE.fullmatch(text)
    return "254" + m.group(1) if m else text


def _trans_time(value: str) -> str:
    """trxDate "2020-08-05T10:13:00.000+03:00" as TransTime "20200805101300" (Nairobi)."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(NAIROBI)
    return moment.strftime("%Y%m%d%H%M%S")


def trx_day(value, tz) -> date | None:
    """The business day of a Pull record's trxDate (None when it cannot be read)."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo is None else moment.astimezone(tz)).date()


def pull_as_confirmation(item: dict, short_code: str = "") -> dict:
    """A Pull Transactions record in the shape of a C2B confirmation (all strings)."""
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    amount = item.get("amount")
    return {
        "TransactionType": "Pay Bill", "TransID": item.get("transactionId"),
        "TransTime": _trans_time(item.get("trxDate", "")),
        "TransAmount": str(amount).replace(",", "") if amount is not None else None,
        "BusinessShortCode": short_code, "BillRefNumber": str(item.get("billreference") or ""),
        "InvoiceNumber": "", "OrgAccountBalance": "", "ThirdPartyTransID": "",
        "MSISDN": _phone(item.get("msisdn")), "FirstName": str(item.get("sender") or "")[:40],
        "MiddleName": "", "LastName": "",
    }


def statement_as_confirmation(line: dict) -> dict:
    """A statement line (kept as {"line": n, "cells": {column: text}}) as a C2B confirmation."""
    if not isinstance(line, dict) or not isinstance(line.get("cells"), dict):
        raise ValueError("not a statement line")
    cells = line["cells"]
    party = _LEADING_NUMBER.match(cells.get("Other Party Info", "") or "")
    msisdn, name = (_phone(party.group(1)), (party.group(2) or "").strip()) if party else ("", "")
    when = cells.get("Completion Time", "")
    return {
        "TransactionType": "Pay Bill", "TransID": cells.get("Receipt No.", ""),
        "TransTime": re.sub(r"\D", "", when)[:14] if re.match(r"\d{4}-", when) else "",
        "TransAmount": (cells.get("Paid In", "") or "").replace(",", "").strip() or None,
        "BusinessShortCode": "", "BillRefNumber": (cells.get("A/C No.", "") or "").strip(),
        "InvoiceNumber": "", "OrgAccountBalance": "", "ThirdPartyTransID": "",
        "MSISDN": msisdn, "FirstName": name[:40], "MiddleName": "", "LastName": "",
    }


def read_pull(body: str) -> dict:
    data = loads(body)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return pull_as_confirmation(data.get("record"), str(data.get("short_code") or ""))


def read_statement(body: str) -> dict:
    return statement_as_confirmation(loads(body))


def pull_body(record: dict, short_code: str) -> bytes:
    """What is stored for a Pull record: the record exactly as Daraja sent it, and our shortcode."""
    return json.dumps({"short_code": short_code, "record": record}, default=str, sort_keys=True).encode()


def statement_body(line_no: int, cells: dict[str, str]) -> bytes:
    return json.dumps({"line": line_no, "cells": cells}, sort_keys=True).encode()


READERS = {PULL: read_pull, STATEMENT: read_statement}


def as_confirmation(kind: str, body: str) -> dict:
    return READERS[kind](body)


def amount_of(confirmation: dict) -> Decimal | None:
    try:
        return Decimal(confirmation["TransAmount"])
    except Exception:  # noqa: BLE001 - shown as "?" where it cannot be read
        return None
