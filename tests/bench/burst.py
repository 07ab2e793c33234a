"""A burst of M-Pesa STK callbacks over real HTTP: N distinct prompts, each answered once by
Daraja, posted over 32 connections at once to `portal run` (tests/bench/server.py), then checked
exactly once (each callback applied once, each payment completed once with one M-Pesa credit,
every ledger entry of theirs summing to zero).

The prompts are recorded here as the desk records them (portal.payments.mpesa.stk.start_stk_push,
then the worker's "prompt sent" with its CheckoutRequestID), on distinct members picked across the
table. They stay in the data set as the completed payments they become (a few hundred among
hundreds of thousands: the pages' figures move by that much between runs).

- absorbed a second: callbacks answered / wall time from the first sent to the last answered;
- gateway answer: each POST's wall time as Daraja would wait for it (median, p95);
- applied a second: callbacks / (last processed_at - first received_at), from the rows themselves,
  so it holds whether the hook acts before answering or a job does it after.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass

import httpx

from tests.bench.pages import p95

CONNECTIONS = 32


@dataclass
class Burst:
    size: str
    callbacks: int
    connections: int
    seconds: float
    answer_ms: list[float]
    applied_seconds: float
    queries_per_callback: str = ""
    resent: int = 0  # sent again after the connection was closed under it

    @property
    def absorbed_per_second(self) -> float:
        return self.callbacks / self.seconds

    @property
    def applied_per_second(self) -> float:
        return self.callbacks / self.applied_seconds if self.applied_seconds else float("inf")


def stk_body(checkout: str, amount: int, receipt: str, phone: str) -> bytes:
    """Daraja's success callback (gateways.md), amounts as JSON numbers as Daraja sends them."""
    cb = {"MerchantRequestID": "m-" + checkout, "CheckoutRequestID": checkout, "ResultCode": 0,
          "ResultDesc": "The service request is processed successfully.",
          "CallbackMetadata": {"Item": [
              {"Name": "Amount", "Value": amount}, {"Name": "MpesaReceiptNumber", "Value": receipt},
              {"Name": "Balance"}, {"Name": "TransactionDate", "Value": 20261126101500},
              {"Name": "PhoneNumber", "Value": int(phone)}]}}
    return json.dumps({"Body": {"stkCallback": cb}}).encode()


def _receipt(n: int) -> str:
    """Ten characters, capitals and digits, unique per (run, callback)."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return ("BN" + out.rjust(8, "0"))[-10:]


async def prompts(count: int, tag: int) -> list[tuple[int, str, bytes]]:
    """`count` M-Pesa prompts in flight on distinct members: (payment id, checkout id, callback body)."""
    from portal.lib import db as portal_db
    from portal.lib.money import Money
    from portal.payments import state
    from portal.payments.mpesa import stk
    from tables.billing import Payment
    from tables.members import Member

    members = await Member.raw(
        "SELECT id FROM member WHERE member_number <> 'WALKIN' ORDER BY md5(id::text || {}) LIMIT {}", str(tag), count)
    out = []
    for i, m in enumerate(members):
        checkout = f"ws_CO_BENCH{tag}_{i:05d}"
        phone = f"25471{(tag * 1000 + i) % 10_000_000:07d}"  # 0710…: Safaricom
        recorded = await stk.start_stk_push(member_id=m["id"], phone=phone, amount=Money(1000),
                                            idempotency_key=f"bench-{tag}-{i}")
        pid = recorded.payment["id"]
        async with portal_db.transaction():
            await state.transition(pid, state.PROCESSING, reason="Prompt sent", values={Payment.gateway_ref: checkout})
        out.append((pid, checkout, stk_body(checkout, 1000, _receipt(tag * 1000 + i), phone)))
    return out


async def burst(base: str, hook: str, size: str, count: int) -> tuple[Burst, list[int]]:
    """Send one success callback for each of `count` fresh prompts over CONNECTIONS connections;
    wait until every one is acted on. Returns the figures and the payments' ids."""
    from tables.gateway import GatewayCallback

    tag = int(time.time()) % 1_000_000
    flight = await prompts(count, tag)
    answers: list[float] = []
    resent = 0
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    gate = asyncio.Semaphore(CONNECTIONS)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as http:
        # Open the connections first: a gateway's connections are already up on a busy morning.
        await asyncio.gather(*[http.get("/healthz") for _ in range(CONNECTIONS)])

        async def post(body: bytes) -> None:
            nonlocal resent
            async with gate:
                started = time.perf_counter()
                try:
                    r = await http.post(hook, content=body, headers={"content-type": "application/json"})
                except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
                    # The server closed a kept-alive connection as this was sent (uvicorn's idle
                    # time-out on a starved machine): Daraja sends again, and so do we (a repeat
                    # is the same callback: still applied once).
                    resent += 1
                    r = await http.post(hook, content=body, headers={"content-type": "application/json"})
                answers.append((time.perf_counter() - started) * 1000)
                assert r.status_code == 200 and r.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}, r.text

        started = time.perf_counter()
        await asyncio.gather(*[post(body) for _, _, body in flight])
        seconds = time.perf_counter() - started

    checkouts = [c for _, c, _ in flight]
    deadline = time.monotonic() + 300
    while True:
        rows = await GatewayCallback.raw(
            "SELECT count(*) FILTER (WHERE processed_at IS NOT NULL) AS done, "
            "extract(epoch FROM max(processed_at) - min(received_at)) AS span "
            "FROM gateway_callback WHERE gateway = 'daraja' AND kind = 'stk' AND external_id = ANY({})", checkouts)
        if rows[0]["done"] == count or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert rows[0]["done"] == count, f"{rows[0]['done']} of {count} callbacks acted on within 300 s"
    return (Burst(size, count, CONNECTIONS, seconds, answers, float(rows[0]["span"] or 0), resent=resent),
            [p for p, _, _ in flight])


async def exactly_once(payment_ids: list[int], checkouts_count: int) -> None:
    """Each callback applied once; each payment completed once, with one M-Pesa credit of its
    amount; every ledger entry touching them sums to zero, and so do all legs there are."""
    from tables.billing import Payment

    rows = await Payment.raw("""
        SELECT count(*) AS n,
               count(*) FILTER (WHERE p.status = 'completed') AS completed,
               sum((SELECT count(*) FROM payment_event e WHERE e.payment = p.id AND e.old_status = 'processing'
                                                       AND e.new_status = 'completed')) AS events,
               sum((SELECT count(*) FROM gateway_callback c WHERE c.payment = p.id AND c.outcome = 'applied')) AS applied,
               sum((SELECT count(*) FROM ledger_entry le JOIN ledger_leg l ON l.entry = le.id
                    WHERE le.payment = p.id AND l.account = 'mpesa' AND l.amount > 0)) AS credits,
               sum((SELECT coalesce(sum(l.amount), 0) FROM ledger_entry le JOIN ledger_leg l ON l.entry = le.id
                    WHERE le.payment = p.id)) AS legs
        FROM payment p WHERE p.id = ANY({})""", payment_ids)
    r = rows[0]
    assert r["n"] == r["completed"] == r["events"] == r["applied"] == r["credits"] == checkouts_count, r
    assert r["legs"] == 0, r
    total = await Payment.raw("SELECT coalesce(sum(amount), 0) AS s FROM ledger_leg")
    assert total[0]["s"] == 0, total


def summary(b: Burst) -> dict:
    return {"absorbed/s": b.absorbed_per_second, "answer p50 ms": statistics.median(b.answer_ms),
            "answer p95 ms": p95(b.answer_ms), "applied/s": b.applied_per_second}
