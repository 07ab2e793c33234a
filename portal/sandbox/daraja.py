"""Simulator of Safaricom M-Pesa Daraja, written from ../shared/gateways.md §1, §4 and §5.

It shares no code with the portal's Daraja client: the portal reaches it only over HTTP, on the
real paths, so a mistake in either side shows up as a failed exchange.

Modules
-------
daraja_state    records, scenario table, runtime settings, ID formats (the in-memory store)
daraja_engine   outcomes, callbacks, C2B validation/confirmation round trips, async Results
daraja_api      the wire API (/oauth, /mpesa/...)
daraja_pages    pages for people: / (index), /phone (simulated handset), /paybill
daraja_control  JSON control API for tests: /_sandbox/daraja/...
daraja_pull     Pull Transactions (/pulltransactions/v1/...), lost confirmations, statement CSV export

Wire API
--------
GET  /oauth/v1/generate?grant_type=client_credentials   Basic consumer key:secret
POST /mpesa/stkpush/v1/processrequest                   STK push (M-Pesa Express)
POST /mpesa/stkpushquery/v1/query                       STK query
POST /mpesa/c2b/v1/registerurl, /mpesa/c2b/v2/registerurl
POST /mpesa/c2b/v1/simulate,    /mpesa/c2b/v2/simulate  (sandbox-only API)
POST /mpesa/transactionstatus/v1/query                  Result to ResultURL
POST /mpesa/reversal/v1/request                         Result to ResultURL

Errors use the Daraja envelope {"requestId", "errorCode", "errorMessage"}:
  OAuth: not Basic / wrong key or secret -> 400 400.008.01 "Invalid Authentication passed";
         grant_type other than client_credentials -> 400 400.008.02 "Invalid grant type passed".
  No "Authorization: Bearer ..." -> 404 404.001.04 "Invalid Authentication Header";
  unknown or expired token -> 404 404.001.03 "Invalid Access Token" (setting
  invalid_token_style="per_api" answers 400 400.003.01 on C2B and Transaction Status instead).
  Missing Content-Type: application/json -> 400.002.02 "Bad Request - Invalid <first field>"
  (BusinessShortCode for STK, as in the FAQ); body not a JSON object -> 400.002.05.
  Any field missing/malformed -> 400 400.002.02 "Bad Request - Invalid <Field>".
  STK: BusinessShortCode other than the configured one -> 500 500.001.1001 "Merchant does not
  exist"; Password != base64(shortcode+passkey+Timestamp) -> 500 500.001.1001 "Wrong
  credentials"; a push to a PhoneNumber whose prompt is still open -> 500 500.001.1001 "Unable
  to lock subscriber, a transaction is already in process for the current subscriber".
  STK query while unresolved -> 500 500.001.1001 "The transaction is being processed" with
  requestId = CheckoutRequestID; unknown CheckoutRequestID -> 400.002.02 Invalid
  CheckoutRequestID. GET on a POST API -> 405 405.001; unknown /mpesa path -> 404 404.001.01.
  C2B register: URLs containing mpesa, m-pesa, safaricom, exe, exec, cmd, sql or query (any
  case) -> 400.002.02 "Bad Request - Invalid ConfirmationURL" (or ValidationURL).

STK outcome scenarios
---------------------
The scenario of a push is chosen, first match wins, by: a binding made through the control
API (POST /_sandbox/daraja/scenarios), the magic PhoneNumber, the magic Amount, else the
default_scenario setting ("interactive" unless SANDBOX_DARAJA_DEFAULT_SCENARIO says otherwise).

  PhoneNumber   scenario            outcome
  254708374149  success             ResultCode 0 (Safaricom's documented test MSISDN)
  254700000001  success             ResultCode 0, CallbackMetadata Amount/MpesaReceiptNumber/
                                    Balance(no Value)/TransactionDate/PhoneNumber
  254700000002  cancelled           1032 "Request cancelled by user"
  254700000003  timeout             1037 "DS timeout user cannot be reached"
  254700000004  wrong_pin           2001 "The initiator information is invalid."
  254700000005  insufficient_funds  1 "The balance is insufficient for the transaction."
  254700000006  late_callback       0; STK Query is final at once, the callback comes
                                    late_callback_delay s (default 5) after callback_delay
  254700000007  callback_twice      0; the identical callback is POSTed twice
                                    (duplicate_callback_gap s apart, default 0.5)
  254700000008  callback_first      0; the callback is POSTed and answered *before* the
                                    processrequest HTTP response is sent
  254700000009  no_callback         0; no callback ever: only STK Query tells
  254700000010  interactive         waits for Accept/Decline on /phone (or the control API);
                                    PIN 0000 = wrong PIN 2001; Decline = 1032; no answer
                                    within prompt_timeout s -> 1037
  254700000011  expired             1019 "Transaction has expired"
  254700000012  query_contradicts   callback ResultCode 0 but STK Query says "1032" (the real
                                    sandbox's habit, pitfall 14)
  254700000013  slow_response       0; the processrequest answer is held slow_response_delay s
                                    (default 35, past a 30 s read timeout) though the prompt
                                    reached the phone; the callback follows the late answer
  254700000014  malformed_first     0; a broken copy of the callback (no Amount) is POSTed first,
                                    then the genuine one
  254700000015  nested_first        0; 50,000 nested JSON arrays are POSTed first, then the
                                    genuine callback
  any other     interactive (default_scenario)

  Amount 1032 -> cancelled, 1037 -> timeout, 2001 -> wrong_pin, 1019 -> expired (only for
  numbers that are neither magic nor bound). Any payment above wallet_balance (KES 150,000)
  fails with ResultCode 1 when the customer would have paid. A CustomerPayBillOnline push whose
  PartyB differs from BusinessShortCode fails with 2028 (product assignment).

Timing: scripted scenarios resolve the moment the push is accepted (STK Query is final at
once); the callback follows callback_delay s later (0 in tests). Interactive prompts resolve
when answered (or time out), the callback again callback_delay s later. ResultCode is a number
in callbacks, a string in STK Query. An STK payment to a shortcode with C2B URLs registered is
also confirmed over C2B (same receipt as TransID), as real M-Pesa does (pitfall 3).

C2B: registrations are kept per ShortCode with the version of the register API used (v1 ->
MSISDN sent as SHA-256 hex, v2 -> masked "2547 ***** 149"). Simulate (API or /paybill page)
POSTs the validation payload if a ValidationURL is registered: {"ResultCode": "0"} accepts (an
optional ThirdPartyTransID is echoed in the confirmation), any other ResultCode rejects (no
confirmation), no answer within c2b_validation_timeout s (8), an error status or an unreachable
URL applies ResponseType (Completed -> confirm, Cancelled -> drop). Then the confirmation is
POSTed with OrgAccountBalance = the shortcode's new balance. TransAmount is "3000.00".

Transaction Status / Reversal: acknowledged at once; after callback_delay the Result goes to
ResultURL (async_result_mode "queue_timeout" sends a timeout body to QueueTimeOutURL instead,
"queue_timeout_then_result" sends the timeout body and then, once it was answered, the Result,
"none" sends nothing). Unknown receipt -> status ResultCode "R000002"; reversal "R000002"
"The OriginalTransactionID is invalid."; already reversed -> "R000001".

Quiet prompts (bind a phone with POST /_sandbox/daraja/scenarios): scenario "quiet" (paid) and
"quiet_cancelled" (1032) send no callback and STK Query answers "being processed" for ever.
Transaction Status without a TransactionID finds the push by OriginalConversationID (its
MerchantRequestID, or its CheckoutRequestID): paid -> Completed with ReceiptNo/Amount; failed ->
the prompt's ResultCode; unknown or unresolved -> "R000002". Settings status_result_delay (s) and
status_result_times (N) make Transaction Status Results late and repeated.

Control API (JSON) under /_sandbox/daraja
-----------------------------------------
GET  /stk[?phone=&state=]            STK pushes and their state
GET  /stk/{CheckoutRequestID}
POST /stk/{id}/accept {"pin": "1234"}   answer an open prompt (pin "0000" = wrong PIN)
POST /stk/{id}/decline
POST /stk/{id}/resend {"times": N}   POST the stored callback N more times, now
GET  /callbacks[?kind=&ref=]         every delivery attempt (status, error, body, raw bytes)
GET  /c2b                            registrations, C2B payments, shortcode balances
GET  /async                          Transaction Status / Reversal requests and their Results
GET  /ledger                         receipts the simulated M-Pesa knows
GET  /scenarios, POST /scenarios {"phone": ..., "scenario": ...|null}
GET  /settings, POST /settings {...} runtime knobs (see daraja_state.Settings)
POST /tokens/expire                  expire every access token now
POST /reset                          cancel pending work, forget everything, restore settings

State lives in this process's memory (run the sandbox with a single worker).
"""

from __future__ import annotations

import logging

import httpx
from litestar import Litestar, Router

from portal.sandbox import daraja_api, daraja_control, daraja_pages, daraja_pull
from portal.sandbox.daraja_engine import cancel_all
from portal.sandbox.daraja_state import DarajaStore, Settings

log = logging.getLogger("portal.sandbox.daraja")

router = Router(
    path="/",
    route_handlers=[
        *daraja_api.route_handlers,
        *daraja_control.route_handlers,
        *daraja_pages.route_handlers,
        *daraja_pull.route_handlers,
    ],
)


async def on_startup(app: Litestar) -> None:
    config = app.state.config
    store = DarajaStore(config=config, settings=Settings.from_config(config))
    # trust_env=False: callbacks go straight to the URLs given, never through a proxy.
    store.http = httpx.AsyncClient(trust_env=False)
    app.state.daraja = store


async def on_shutdown(app: Litestar) -> None:
    store: DarajaStore | None = getattr(app.state, "daraja", None)
    if store is None:
        return
    await cancel_all(store)
    if store.http is not None:
        await store.http.aclose()
