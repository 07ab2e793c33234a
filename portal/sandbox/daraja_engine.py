"""What happens after a Daraja request is accepted: outcomes, callbacks, C2B round trips, Results.

Shared by the wire API (daraja_api), the people pages (daraja_pages) and the control API
(daraja_control) so that a payment made on the /paybill page goes through exactly the same
path as POST /mpesa/c2b/v2/simulate, and an Accept on /phone the same as the control API's.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any

import httpx
import msgspec

from portal.sandbox.daraja_state import (
    RESULT_DESCS,
    SCENARIOS,
    WRONG_PIN,
    AsyncRequest,
    C2BPayment,
    C2BRegistration,
    DarajaStore,
    Delivery,
    LedgerEntry,
    StkRequest,
    customer_first_name,
    hash_msisdn,
    make_conversation_id,
    make_receipt,
    make_request_id,
    mask_msisdn,
    now_eat,
    receipt_prefix,
    stamp,
)

log = logging.getLogger("portal.sandbox.daraja")

# Decimals go out as JSON numbers with their scale kept: Amount 3000.00 as in the official sample.
_encoder = msgspec.json.Encoder(decimal_format="number")

BUSINESS_NAME = "Sandbox Business"


# --------------------------------------------------------------------------------------------
# Background tasks and HTTP deliveries


def spawn(store: DarajaStore, coro: Coroutine, name: str | None = None) -> asyncio.Task:
    """Run `coro` in the background; tracked so shutdown/reset can cancel it."""
    task = asyncio.get_running_loop().create_task(coro, name=name)
    store.tasks.add(task)

    def _done(t: asyncio.Task) -> None:
        store.tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("daraja background task %s failed", t.get_name(), exc_info=t.exception())

    task.add_done_callback(_done)
    return task


async def cancel_all(store: DarajaStore) -> None:
    tasks = [t for t in store.tasks if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    store.tasks.clear()


async def deliver(
    store: DarajaStore, kind: str, ref: str, url: str, body: dict, timeout: float | None = None,
    raw: bytes | None = None,
) -> Delivery:
    """POST `body` as JSON to `url` (or `raw` as it is, `body` then only describing it); never
    raises, always records the attempt."""
    if raw is None:
        raw = _encoder.encode(body)
        body = json.loads(raw)
    d = Delivery(id=store.next_delivery_id(), kind=kind, ref=ref, url=url, body=body, raw=raw.decode())
    store.deliveries.append(d)
    try:
        assert store.http is not None, "daraja simulator not started"
        resp = await store.http.post(
            url,
            content=raw,
            headers={"Content-Type": "application/json"},
            timeout=timeout if timeout is not None else store.settings.callback_timeout,
        )
        d.status_code = resp.status_code
        d.response_body = resp.text[:4000]
        if not d.ok:
            log.warning("daraja %s to %s answered HTTP %s", kind, url, resp.status_code)
    except asyncio.CancelledError:
        d.error = "cancelled"
        raise
    except Exception as exc:  # unreachable host, bad URL, timeout...: log, record, carry on
        d.timed_out = isinstance(exc, httpx.TimeoutException)
        d.error = f"{type(exc).__name__}: {exc}"
        log.warning("daraja %s to %s failed: %s", kind, url, d.error)
    finally:
        d.finished_at = time.time()
    return d


# --------------------------------------------------------------------------------------------
# STK push outcomes


def result_desc(store: DarajaStore, code: int) -> str:
    desc = RESULT_DESCS.get(code, "The service request failed.")
    if code != 0 and store.settings.legacy_desc_prefix:
        desc = "[STK_CB - ]" + desc
    return desc


def stk_callback_body(store: DarajaStore, req: StkRequest) -> dict:
    cb: dict[str, Any] = {
        "MerchantRequestID": req.merchant_request_id,
        "CheckoutRequestID": req.checkout_request_id,
        "ResultCode": req.result_code,
        "ResultDesc": req.result_desc,
    }
    if req.result_code == 0:
        items: list[dict[str, Any]] = [
            {"Name": "Amount", "Value": Decimal(req.amount).quantize(Decimal("0.01"))},
            {"Name": "MpesaReceiptNumber", "Value": req.receipt},
        ]
        if store.settings.include_balance_item:
            items.append({"Name": "Balance"})  # no Value key, as in real traffic
        items += [
            {"Name": "TransactionDate", "Value": req.transaction_date},
            {"Name": "PhoneNumber", "Value": int(req.phone)},
        ]
        cb["CallbackMetadata"] = {"Item": items}
    return {"Body": {"stkCallback": cb}}


def product_mismatch(req: StkRequest) -> bool:
    """Paybill pushes must name the paybill itself as PartyB (else ResultCode 2028)."""
    return req.transaction_type == "CustomerPayBillOnline" and req.party_b != req.business_short_code


async def resolve_stk(store: DarajaStore, req: StkRequest, code: int, by: str) -> bool:
    """Settle a pending push exactly once; returns False if it was already settled."""
    async with store.lock:
        if req.state != "pending":
            return False
        if code == 0 and req.amount > store.settings.wallet_balance:
            code = 1
        now = now_eat()
        req.state = "resolved"
        req.result_code = code
        req.result_desc = result_desc(store, code)
        req.resolved_by = by
        req.resolved_at = time.time()
        if code == 0:
            req.receipt = store.unique(lambda: make_receipt(now))
            req.transaction_date = int(stamp(now))
            store.ledger[req.receipt] = LedgerEntry(
                receipt=req.receipt, short_code=req.business_short_code, msisdn=req.phone,
                amount=req.amount, completed_at=now, source="stk",
            )
            bal = store.balances.get(req.business_short_code, Decimal(0))
            store.balances[req.business_short_code] = bal + req.amount
        req.callback_body = stk_callback_body(store, req)
    return True


async def send_stk_callback(store: DarajaStore, req: StkRequest) -> Delivery:
    assert req.callback_body is not None
    req.callbacks_sent += 1
    return await deliver(store, "stk_callback", req.checkout_request_id, req.callback_url,
                         req.callback_body)


async def _callback_after(store: DarajaStore, req: StkRequest, delay: float, times: int = 1,
                          gap: float = 0.0) -> None:
    await asyncio.sleep(delay)
    for i in range(times):
        if i:
            await asyncio.sleep(gap)
        await send_stk_callback(store, req)


async def _broken_then_genuine(store: DarajaStore, req: StkRequest, delay: float) -> None:
    """The "malformed_first" delivery: the callback without its Amount, then the real one."""
    await asyncio.sleep(delay)
    assert req.callback_body is not None
    broken = copy.deepcopy(req.callback_body)
    meta = broken["Body"]["stkCallback"].get("CallbackMetadata") or {}
    meta["Item"] = [i for i in meta.get("Item", []) if i.get("Name") != "Amount"]
    await deliver(store, "stk_callback", req.checkout_request_id, req.callback_url, broken)
    await send_stk_callback(store, req)


NESTED_DEPTH = 50_000


async def _nested_then_genuine(store: DarajaStore, req: StkRequest, delay: float) -> None:
    """The "nested_first" delivery: 50,000 nested JSON arrays (deeper than an ordinary JSON
    reader goes), then the real callback."""
    await asyncio.sleep(delay)
    nested = b"[" * NESTED_DEPTH + b"]" * NESTED_DEPTH
    await deliver(store, "stk_callback", req.checkout_request_id, req.callback_url,
                  {"nested_arrays": NESTED_DEPTH}, raw=nested)
    await send_stk_callback(store, req)


def dispatch_callbacks(store: DarajaStore, req: StkRequest) -> None:
    """Schedule the callback(s) of a just-resolved push per its scenario's delivery mode."""
    s = store.settings
    mode = req.delivery
    name = f"stk-callback-{req.checkout_request_id}"
    if mode == "late":
        spawn(store, _callback_after(store, req, s.callback_delay + s.late_callback_delay), name)
    elif mode == "twice":
        spawn(store, _callback_after(store, req, s.callback_delay, 2, s.duplicate_callback_gap), name)
    elif mode == "malformed_first":
        spawn(store, _broken_then_genuine(store, req, s.callback_delay), name)
    elif mode == "nested_first":
        spawn(store, _nested_then_genuine(store, req, s.callback_delay), name)
    elif mode == "after_slow_response":
        spawn(store, _callback_after(store, req, s.slow_response_delay + s.callback_delay), name)
    elif mode in ("normal", "before_response"):
        spawn(store, _callback_after(store, req, s.callback_delay), name)
    # "none": nothing is ever sent
    dispatch_stk_c2b(store, req)


def dispatch_stk_c2b(store: DarajaStore, req: StkRequest) -> None:
    """An STK payment to a paybill with a C2B ConfirmationURL is also confirmed over C2B."""
    if req.result_code != 0 or not store.settings.stk_also_c2b:
        return
    reg = store.registrations.get(req.business_short_code)
    if reg is None or not reg.confirmation_url:
        return
    assert req.receipt is not None
    pay = C2BPayment(
        trans_id=req.receipt, short_code=req.business_short_code,
        command_id=req.transaction_type, amount=req.amount, msisdn=req.phone,
        bill_ref_number=req.account_reference, via="stk", trans_time=str(req.transaction_date),
        state="completed",
    )
    store.c2b[pay.trans_id] = pay
    spawn(store, _confirm_later(store, pay, reg), f"stk-c2b-{pay.trans_id}")


async def _confirm_later(store: DarajaStore, pay: C2BPayment, reg: C2BRegistration) -> None:
    await asyncio.sleep(store.settings.callback_delay)
    await _send_confirmation(store, pay, reg)


async def _prompt_timeout(store: DarajaStore, req: StkRequest, after: float) -> None:
    await asyncio.sleep(after)
    if await resolve_stk(store, req, 1037, "timeout"):
        dispatch_callbacks(store, req)


async def submit_stk(store: DarajaStore, req: StkRequest) -> None:
    """Arrange the outcome of a freshly accepted push.

    Returns once the push may be answered: for "callback_first" that is after the callback
    was POSTed and answered; otherwise at once.
    """
    scenario = SCENARIOS[req.scenario]
    if product_mismatch(req):
        code: int | None = 2028
    else:
        code = scenario.result_code
    if code is None:  # interactive: wait for the person on /phone, or time out
        timeout = store.settings.prompt_timeout
        req.expires_at = time.time() + timeout
        spawn(store, _prompt_timeout(store, req, timeout), f"stk-prompt-{req.checkout_request_id}")
        return
    await resolve_stk(store, req, code, "scenario")
    if scenario.delivery == "before_response":
        await send_stk_callback(store, req)
        dispatch_stk_c2b(store, req)
    else:
        dispatch_callbacks(store, req)


async def answer_prompt(store: DarajaStore, req: StkRequest, accept: bool, pin: str | None,
                        by: str) -> bool:
    """The customer answers the prompt: Accept with a PIN (0000 = wrong PIN) or Decline."""
    code = (2001 if (pin or "").strip() == WRONG_PIN else 0) if accept else 1032
    if await resolve_stk(store, req, code, by):
        dispatch_callbacks(store, req)
        return True
    return False


def query_result_code(req: StkRequest) -> int | None:
    override = SCENARIOS[req.scenario].query_result_code
    return override if override is not None else req.result_code


# --------------------------------------------------------------------------------------------
# C2B


def c2b_payload(store: DarajaStore, pay: C2BPayment, reg: C2BRegistration | None,
                org_balance: str) -> dict:
    empty = None if store.settings.c2b_empty_as_null else ""
    version = reg.version if reg else "v2"
    msisdn = hash_msisdn(pay.msisdn) if version == "v1" else mask_msisdn(pay.msisdn)
    return {
        "TransactionType": "Pay Bill" if pay.command_id == "CustomerPayBillOnline" else "Buy Goods",
        "TransID": pay.trans_id,
        "TransTime": pay.trans_time,
        "TransAmount": f"{pay.amount}.00",
        "BusinessShortCode": pay.short_code,
        "BillRefNumber": pay.bill_ref_number,
        "InvoiceNumber": empty,
        "OrgAccountBalance": org_balance,
        "ThirdPartyTransID": pay.third_party_trans_id or empty,
        "MSISDN": msisdn,
        "FirstName": customer_first_name(pay.msisdn),
        "MiddleName": "",
        "LastName": "",
    }


def start_c2b_payment(store: DarajaStore, short_code: str, command_id: str, amount: int,
                      msisdn: str, bill_ref_number: str, via: str) -> C2BPayment:
    """A customer pays the shortcode (simulate API or /paybill page): start the round trip."""
    now = now_eat()
    pay = C2BPayment(
        trans_id=store.unique(lambda: make_receipt(now)), short_code=short_code,
        command_id=command_id, amount=amount, msisdn=msisdn,
        bill_ref_number=bill_ref_number if command_id == "CustomerPayBillOnline" else "",
        via=via, trans_time=stamp(now),
    )
    store.c2b[pay.trans_id] = pay
    spawn(store, _c2b_flow(store, pay), f"c2b-{pay.trans_id}")
    return pay


def _validation_verdict(d: Delivery) -> tuple[str, str | None, str]:
    """(accepted|rejected|timeout|unreachable, ResultCode, ThirdPartyTransID)."""
    if d.error is not None:
        return ("timeout" if d.timed_out else "unreachable"), None, ""
    if not d.ok:
        return "unreachable", None, ""
    try:
        answer = json.loads(d.response_body or "")
        code = answer["ResultCode"]
    except (ValueError, KeyError, TypeError):
        return "unreachable", None, ""
    tp = answer.get("ThirdPartyTransID") or ""
    if str(code) == "0":
        return "accepted", "0", str(tp)
    return "rejected", str(code), ""


async def _c2b_flow(store: DarajaStore, pay: C2BPayment) -> None:
    s = store.settings
    await asyncio.sleep(s.callback_delay)
    reg = store.registrations.get(pay.short_code)
    if reg is not None and reg.validation_url and s.c2b_external_validation:
        d = await deliver(store, "c2b_validation", pay.trans_id, reg.validation_url,
                          c2b_payload(store, pay, reg, ""), timeout=s.c2b_validation_timeout)
        verdict, code, third_party = _validation_verdict(d)
        pay.validation = verdict
        pay.validation_result_code = code
        if verdict == "rejected":
            pay.state = "rejected"
            return
        if verdict == "accepted":
            pay.third_party_trans_id = third_party
        elif reg.response_type == "Cancelled":
            pay.state = "cancelled"
            pay.note = f"ValidationURL {verdict}; ResponseType Cancelled applied"
            return
        else:
            pay.note = f"ValidationURL {verdict}; ResponseType Completed applied"
    async with store.lock:
        pay.state = "completed"
        store.balances[pay.short_code] = store.balances.get(pay.short_code, Decimal(0)) + pay.amount
        store.ledger[pay.trans_id] = LedgerEntry(
            receipt=pay.trans_id, short_code=pay.short_code, msisdn=pay.msisdn, amount=pay.amount,
            completed_at=now_eat(), source="c2b",
        )
    if reg is None or not reg.confirmation_url:
        pay.note = (pay.note + "; " if pay.note else "") + "no URLs registered for this shortcode"
        return
    lost = store.__dict__.get("confirmation_lost")  # the "confirmation lost" scenario (daraja_pull)
    if lost is not None and lost(pay):
        return
    await _send_confirmation(store, pay, reg)


async def _send_confirmation(store: DarajaStore, pay: C2BPayment, reg: C2BRegistration) -> None:
    balance = f"{store.balances.get(pay.short_code, Decimal(0)):.2f}"
    await deliver(store, "c2b_confirmation", pay.trans_id, reg.confirmation_url,
                  c2b_payload(store, pay, reg, balance))
    pay.notified = True


# --------------------------------------------------------------------------------------------
# Transaction Status and Reversal (asynchronous Results)


def start_async(store: DarajaStore, kind: str, body: dict) -> AsyncRequest:
    ar = AsyncRequest(
        kind=kind, originator_conversation_id=make_request_id(),
        conversation_id=store.unique(make_conversation_id), body=body,
        result_url=body["ResultURL"], queue_timeout_url=body["QueueTimeOutURL"],
    )
    store.async_requests[ar.conversation_id] = ar
    spawn(store, _async_flow(store, ar), f"{kind}-{ar.conversation_id}")
    return ar


def _envelope(ar: AsyncRequest, code: Any, desc: str, transaction_id: str,
              params: list[dict] | None, reference_item: dict) -> dict:
    result: dict[str, Any] = {
        "ResultType": 0,
        "ResultCode": code,
        "ResultDesc": desc,
        "OriginatorConversationID": ar.originator_conversation_id,
        "ConversationID": ar.conversation_id,
        "TransactionID": transaction_id,
    }
    if params is not None:
        result["ResultParameters"] = {"ResultParameter": params}
    result["ReferenceData"] = {"ReferenceItem": reference_item}
    return {"Result": result}


def _null_transaction_id() -> str:
    return receipt_prefix(now_eat()) + "0000000"


def _known_shortcodes(store: DarajaStore) -> set[str]:
    return ({store.config.daraja_shortcode} | set(store.registrations)
            | {e.short_code for e in store.ledger.values()})


def _initiator_ok(store: DarajaStore, ar: AsyncRequest) -> bool:
    return not store.settings.initiator or ar.body.get("Initiator") == store.settings.initiator


def status_result(store: DarajaStore, ar: AsyncRequest) -> dict:
    b = ar.body
    ref = {"Key": "Occasion", "Value": b.get("Occasion") or ""}
    if not _initiator_ok(store, ar):
        return _envelope(ar, 2001, RESULT_DESCS[2001], _null_transaction_id(), None, ref)
    party_a = str(b["PartyA"])
    if party_a not in _known_shortcodes(store) and str(b.get("IdentifierType")) != "1":
        return _envelope(ar, "SFC_IC0003", "The operator does not exist.", _null_transaction_id(),
                         None, ref)
    receipt = str(b.get("TransactionID") or "")
    if not receipt and b.get("OriginalConversationID"):
        prompt = prompt_by_conversation(store, str(b["OriginalConversationID"]))
        if prompt is None or prompt.state != "resolved":
            return _envelope(ar, "R000002", "The transaction ID is invalid.", _null_transaction_id(),
                             None, ref)
        if prompt.result_code != 0:
            return _envelope(ar, prompt.result_code, prompt.result_desc or result_desc(store, prompt.result_code),
                             _null_transaction_id(), None, ref)
        receipt = prompt.receipt or ""
    entry = store.ledger.get(receipt)
    if entry is None or party_a not in (entry.short_code, entry.msisdn):
        return _envelope(ar, "R000002", "The transaction ID is invalid.", _null_transaction_id(),
                         None, ref)
    t = int(stamp(entry.completed_at))
    params = [
        {"Key": "ReceiptNo", "Value": entry.receipt},
        {"Key": "TransactionStatus", "Value": "Completed"},
        {"Key": "Amount", "Value": entry.amount},
        {"Key": "InitiatedTime", "Value": t},
        {"Key": "FinalisedTime", "Value": t},
        {"Key": "DebitPartyName", "Value": f"{entry.msisdn} - {customer_first_name(entry.msisdn)}"},
        {"Key": "CreditPartyName", "Value": f"{entry.short_code} - {BUSINESS_NAME}"},
        {"Key": "DebitAccountType", "Value": "MMF Account"},
        {"Key": "DebitPartyCharges"},
        {"Key": "ReasonType", "Value": "Pay Bill Online" if entry.source == "stk" else "Pay Bill"},
        {"Key": "TransactionReason"},
    ]
    return _envelope(ar, 0, RESULT_DESCS[0], entry.receipt, params, ref)


REVERSAL_QUEUE_REF = "https://internalsandbox.safaricom.co.ke/mpesa/reversalresults/v1/submit"


async def reversal_result(store: DarajaStore, ar: AsyncRequest) -> dict:
    b = ar.body
    ref = {"Key": "QueueTimeoutURL", "Value": REVERSAL_QUEUE_REF}
    if not _initiator_ok(store, ar):
        return _envelope(ar, 2001, RESULT_DESCS[2001], _null_transaction_id(), None, ref)
    async with store.lock:
        entry = store.ledger.get(str(b["TransactionID"]))
        if entry is None:
            return _envelope(ar, "R000002", "The OriginalTransactionID is invalid.",
                             _null_transaction_id(), None, ref)
        if entry.reversed_by:
            return _envelope(ar, "R000001", "The transaction has already been reversed.",
                             _null_transaction_id(), None, ref)
        balance = store.balances.get(entry.short_code, Decimal(0))
        if balance < entry.amount:
            return _envelope(ar, 1, "The balance is insufficient for the transaction.",
                             _null_transaction_id(), None, ref)
        now = now_eat()
        receipt = store.unique(lambda: make_receipt(now))
        entry.reversed_by = receipt
        balance -= entry.amount
        store.balances[entry.short_code] = balance
    bal = f"{balance:.2f}"
    params = [
        {"Key": "DebitAccountBalance", "Value": f"Utility Account|KES|{bal}|{bal}|0.00|0.00"},
        {"Key": "Amount", "Value": Decimal(entry.amount).quantize(Decimal("0.01"))},
        {"Key": "TransCompletedTime", "Value": int(stamp(now))},
        {"Key": "OriginalTransactionID", "Value": entry.receipt},
        {"Key": "Charge", "Value": Decimal("0.00")},
        {"Key": "CreditPartyPublicName",
         "Value": f"{entry.msisdn} - {customer_first_name(entry.msisdn)}"},
        {"Key": "DebitPartyPublicName", "Value": f"{entry.short_code} - {BUSINESS_NAME}"},
    ]
    return _envelope(ar, 0, RESULT_DESCS[0], receipt, params, ref)


def queue_timeout_body(ar: AsyncRequest) -> dict:
    """Shape is [U] in gateways.md: the Result envelope, ResultType 1, no ResultParameters."""
    return {"Result": {
        "ResultType": 1,
        "ResultCode": 1037,
        "ResultDesc": "The request was not processed in time (queue timeout).",
        "OriginatorConversationID": ar.originator_conversation_id,
        "ConversationID": ar.conversation_id,
        "TransactionID": "",
    }}


async def _async_flow(store: DarajaStore, ar: AsyncRequest) -> None:
    await asyncio.sleep(store.settings.callback_delay)
    mode = store.settings.async_result_mode
    if mode == "none":
        ar.state = "done"
        return
    if mode in ("queue_timeout", "queue_timeout_then_result"):
        await _post_async(store, ar, "queue_timeout", ar.queue_timeout_url, queue_timeout_body(ar))
        if mode == "queue_timeout":
            return
    # The Result; after a time-out too: Daraja gave up waiting, yet M-Pesa did the work.
    body = await reversal_result(store, ar) if ar.kind == "reversal" else status_result(store, ar)
    if ar.kind != "reversal":
        await repeat_status_result(store, ar, body)
        return
    await _post_async(store, ar, "result", ar.result_url, body)


async def _post_async(store: DarajaStore, ar: AsyncRequest, kind: str, url: str, body: dict) -> None:
    ar.result_body, ar.result_code = body, body["Result"]["ResultCode"]
    ar.state, ar.posted_to = "done", url
    await deliver(store, kind, ar.conversation_id, url, body)


# --------------------------------------------------------------------------------------------
# Transaction Status of STK prompts (quiet prompts: no callback, STK Query never final)


def prompt_by_conversation(store: DarajaStore, conversation_id: str) -> StkRequest | None:
    """The STK push a Transaction Status OriginalConversationID names: its MerchantRequestID (or,
    leniently, its CheckoutRequestID)."""
    found = store.stk.get(conversation_id)
    if found is not None:
        return found
    return next((r for r in store.stk.values() if r.merchant_request_id == conversation_id), None)


async def repeat_status_result(store: DarajaStore, ar: AsyncRequest, body: dict) -> None:
    """A Transaction Status Result, late by status_result_delay and sent status_result_times times."""
    s = store.settings
    if s.status_result_delay:
        await asyncio.sleep(s.status_result_delay)
    for i in range(max(1, s.status_result_times)):
        if i:
            await asyncio.sleep(s.duplicate_callback_gap)
        await _post_async(store, ar, "result", ar.result_url, body)
