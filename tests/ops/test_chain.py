"""A chain of gyms: the scale-out set-up (issue 18) proven on every CI run.

Two `portal run` web processes and two `portal worker` processes, real subprocesses on the server
PostgreSQL (this run's test database) and Redis (a database number of their own), with one gateway
sandbox. Driven at once through both web processes: desk payments whose idempotency keys are sent
to both, M-Pesa prompts whose callbacks are delivered to both, a day close racing payments, and the
cron jobs ticking in both workers. Then: every payment exactly once, the books agree, each cron
job ran once per tick, and SIGTERM lets a request and a job in flight finish before each process
exits 0.

Only on the server configuration (.ci/run's second pass: DATABASE_URL and QUEUE_URL=redis://):
the embedded PostgreSQL belongs to one `portal run`, and a queue on PostgreSQL is not the
set-up that runs several workers.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from portal.auth import create_staff
from portal.billing import closes
from portal.lib.clock import today
from portal.sandbox.app import create_sandbox_app
from portal.sandbox.config import SandboxConfig
from tables.billing import Invoice, Payment
from tables.closes import DayClose
from tables.ledger import LedgerEntry
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_location, make_member
from tests.support.servers import free_port, serve_in_thread

BIN = Path(sys.executable).parent
TOKEN = "chain-hook-token-5678"
TWICE = "254700000007"  # the sandbox's phone whose callback comes twice
SLOW = "254700000013"  # the sandbox's phone whose prompt answer is held (slow_response_delay)
SLOW_SECONDS = 3.0
EVERY_MINUTE = {"sweep_documents", "sweep_mpesa", "sweep_card_refunds", "sweep_card_checkouts", "sweep_messages"}

def _server_configuration() -> bool:
    database = os.environ.get("DATABASE_URL", "")  # the embedded server is reached by its socket
    return os.environ.get("QUEUE_URL", "").startswith(("redis://", "rediss://")) and "@/" not in database


pytestmark = [pytest.mark.chain, pytest.mark.skipif(
    not _server_configuration(),
    reason="the chain of gyms needs the server configuration: DATABASE_URL on a PostgreSQL server and "
           "QUEUE_URL=redis:// (.ci/run's second pass)")]


def _chain_redis() -> str:
    """The suite's Redis with the next database number: the chain's queues, flushed at the start,
    never the queue the rest of the suite uses."""
    parts = urlsplit(os.environ["QUEUE_URL"])
    number = int(parts.path.lstrip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(number + 1) % 16}"))


class Process:
    """A `portal` subprocess writing to a file (a pipe nobody reads would fill and block it)."""

    def __init__(self, name: str, args: list[str], env: dict, log: Path):
        self.name, self.log = name, log
        self._out = open(log, "wb")
        self.proc = subprocess.Popen([str(BIN / "portal"), *args], env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> None:
        assert self.proc.poll() is None, f"{self.name} exited {self.proc.returncode}:\n{self.text()}"

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    async def exited(self, timeout: float = 60) -> tuple[int, float]:
        t0 = time.monotonic()
        code = await asyncio.to_thread(self.proc.wait, timeout)
        self._out.close()
        return code, time.monotonic() - t0


async def _until(what: str, check, timeout: float, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(every)


async def _login(http: httpx.AsyncClient, web: str, username: str, password: str) -> None:
    await http.get(f"{web}/login")
    r = await http.post(f"{web}/login", data={"username": username, "password": password, "next": "/",
                                              "_csrf_token": http.cookies["portal_csrf"]})
    assert r.status_code == 303, r.text


async def _post(http: httpx.AsyncClient, url: str, data: dict) -> httpx.Response:
    return await http.post(url, data={**data, "_csrf_token": http.cookies["portal_csrf"]})


def _cron_runs(logs: str) -> list[tuple[str, int, int]]:
    """(function, tick, attempt) of every cron job a worker started, from SAQ's 'Processing
    Job<...>' lines (a cron job's key is cron:<function>). The tick is the minute the job started
    in (every cron here is at most once a minute, and a tick's job starts within seconds of it)."""
    runs = []
    for line in logs.splitlines():
        if "Processing Job<" not in line or "cron:" not in line:
            continue
        function = re.search(r"function: (\w+)", line).group(1)
        started = int(re.search(r"started: (\d+)", line).group(1))  # ms
        attempts = re.search(r"attempts: (\d+)", line)
        runs.append((function, started // 60_000 * 60, int(attempts.group(1)) if attempts else 1))
    return runs


async def test_two_web_processes_and_two_workers_keep_every_payment_once_and_stop_gracefully(db, tmp_path):
    import redis.asyncio as aioredis

    started = time.monotonic()
    chain_queue = _chain_redis()
    r = aioredis.from_url(chain_queue)
    await r.flushdb()
    await r.aclose()

    # The gym: one desk (its close counts the cash), a front-desk login and a manager.
    westlands = await make_location("WST", "Westlands")
    await create_staff("desk", "desk-password-1", "front_desk", first_name="Faith", location_id=westlands)
    await create_staff("boss", "boss-password-1", "manager", first_name="Juma", location_id=westlands)
    desk_members = [await make_member(phone=f"2547140000{i:02d}") for i in range(8)]
    desk_invoices = [await invoice_for(m, 1000) for m in desk_members]
    stk_members = [await make_member(phone=f"2547150000{i:02d}") for i in range(6)]
    stk_invoices = [await invoice_for(m, 700) for m in stk_members]
    racer = await make_member(phone="254716000001")
    await invoice_for(racer, 50000)

    config = SandboxConfig(callback_delay=0.0)
    web_ports = [free_port(), free_port()]
    webs = [f"http://127.0.0.1:{p}" for p in web_ports]
    with serve_in_thread(create_sandbox_app(config)) as sandbox:
        config.public_url = sandbox
        common = {**os.environ, "QUEUE_URL": chain_queue, "DEMO": "0", "SANDBOX": "0", "WORKER_IN_PROCESS": "0",
                  "DARAJA_BASE_URL": sandbox, "DARAJA_CONSUMER_KEY": config.daraja_consumer_key,
                  "DARAJA_CONSUMER_SECRET": config.daraja_consumer_secret, "DARAJA_PASSKEY": config.daraja_passkey,
                  "DARAJA_SHORTCODE": config.daraja_shortcode, "DARAJA_CALLBACK_TOKEN": TOKEN,
                  "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
        (tmp_path / "metrics").mkdir()
        # Each worker gives the gateways its own web process's callback URL: callbacks arrive at both.
        procs = [Process(f"web{i + 1}", ["run"], {**common, "PORT": str(web_ports[i]), "PUBLIC_BASE_URL": webs[i]},
                         tmp_path / f"web{i + 1}.log") for i in range(2)]
        # LOG_LEVEL=DEBUG: SAQ's "Processing Job<...>" lines, which the cron check reads, are debug chatter.
        procs += [Process(f"worker{i + 1}", ["worker"], {**common, "PUBLIC_BASE_URL": webs[i], "LOG_LEVEL": "DEBUG"},
                          tmp_path / f"worker{i + 1}.log") for i in range(2)]
        web1, web2, worker1, worker2 = procs
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                async def up():
                    for p in procs:
                        p.alive()
                    try:
                        healthy = all([(await http.get(f"{w}/healthz")).status_code == 200 for w in webs])
                    except httpx.HTTPError:
                        return False
                    return healthy and all("worker running" in w.text() for w in (worker1, worker2))

                await _until("two web processes and two workers up", up, 90, 0.2)
                both_up = time.time()
                ready = time.monotonic() - started

                desk = httpx.AsyncClient(timeout=30)
                boss = httpx.AsyncClient(timeout=30)
                # One login works on both: the session is in the database, not in a process.
                await _login(desk, webs[0], "desk", "desk-password-1")
                await _login(boss, webs[1], "boss", "boss-password-1")

                # 1. Desk payments: each form's key sent to both web processes at the same moment,
                # twice over (a double click on two tills behind one load balancer).
                async def pay_twice_everywhere(member: int, inv: dict, key: str):
                    form = {"idempotency_key": key, "method": "cash", "amount": "1000", "invoice": str(inv["id"])}
                    answers = await asyncio.gather(*[_post(desk, f"{w}/members/{member}/payments", form)
                                                     for w in webs for _ in range(2)])
                    assert {a.status_code for a in answers} == {303}, [a.text for a in answers]
                    assert len({a.headers["location"] for a in answers}) == 1
                await asyncio.gather(*[pay_twice_everywhere(m, inv, f"chain-desk-{m}")
                                       for m, inv in zip(desk_members, desk_invoices)])

                # 2. M-Pesa prompts, each key sent to both web processes; the sandbox answers each
                # prompt with its callback twice, to the web process of the worker that sent it.
                async def prompt(member: int, inv: dict, key: str) -> int:
                    form = {"idempotency_key": key, "phone": TWICE, "amount": "700", "invoice": str(inv["id"])}
                    answers = await asyncio.gather(*[_post(desk, f"{w}/members/{member}/mpesa", form) for w in webs])
                    assert [a.status_code for a in answers] == [303, 303], [a.text for a in answers]
                    assert answers[0].headers["location"] == answers[1].headers["location"]
                    return int(answers[0].headers["location"].rsplit("/", 1)[1])
                stk_payments = [await prompt(m, inv, f"chain-stk-{m}") for m, inv in zip(stk_members, stk_invoices)]

                async def all_completed():
                    rows = await Payment.select(Payment.status).where(Payment.id.is_in(stk_payments))
                    return all(row["status"] == "completed" for row in rows)
                await _until("every prompt paid", all_completed, 60, 0.2)
                # Then every callback the sandbox sent, delivered again to both web processes at once.
                async def both_copies_sent():  # the second copy follows the first by half a second
                    items = (await http.get(f"{sandbox}/_sandbox/daraja/callbacks?kind=stk_callback")).json()["items"]
                    return items if len(items) == 2 * len(stk_payments) and all(d["ok"] for d in items) else None
                sent = await _until("the sandbox's callbacks, each sent twice", both_copies_sent, 20, 0.2)
                replies = await asyncio.gather(*[
                    http.post(f"{w}/hooks/daraja/stk/{TOKEN}", content=d["raw"].encode(),
                              headers={"content-type": "application/json"}) for d in sent for w in webs])
                assert {a.status_code for a in replies} == {200}

                # 3. A close at the desk while payments are being taken on the other web process.
                page = await boss.get(f"{webs[1]}/close?location={westlands}")
                assert page.status_code == 200, page.text
                desk_staff = re.search(r'name="counted_(\d+)"', page.text).group(1)
                close_form = {"location": str(westlands), "date": today().isoformat(),
                              f"counted_{desk_staff}": str(1000 * len(desk_members)), "note": "Racing the tills"}
                racing = [_post(desk, f"{webs[i % 2]}/members/{racer}/payments",
                                {"idempotency_key": f"chain-race-{i}", "method": "cash", "amount": str(100 + i)})
                          for i in range(6)]
                closed, *raced = await asyncio.gather(_post(boss, f"{webs[1]}/close", close_form), *racing)
                assert closed.status_code == 303, closed.text
                assert {a.status_code for a in raced} == {303}, [a.text for a in raced]

                # 4. SIGTERM with work in flight (while the cron tick is awaited). A web process
                # mid-request (a slow client still sending its form) finishes it, then exits 0.
                body_sent = asyncio.Event()

                async def slow_body():
                    yield f"_csrf_token={desk.cookies['portal_csrf']}&method=cash&".encode()
                    body_sent.set()
                    await asyncio.sleep(1.5)
                    yield b"amount=1000&invoice=&idempotency_key=chain-slow-client&reference="
                slow = asyncio.create_task(desk.post(
                    f"{webs[1]}/members/{desk_members[0]}/payments", content=slow_body(),
                    headers={"content-type": "application/x-www-form-urlencoded"}))
                await body_sent.wait()
                await asyncio.sleep(0.3)
                web2.stop()
                answer = await slow
                assert answer.status_code == 303, answer.text
                code, _ = await web2.exited()
                assert code == 0, web2.text()
                assert await Payment.count().where(Payment.idempotency_key == "chain-slow-client") == 1

                # 5. Cron: a minute tick with both workers up, whose jobs have all run.
                # (A second after both were up: each worker's schedule loop starts with its first line.)
                first_tick = (int(both_up + 1) // 60 + 1) * 60

                async def tick_ran():
                    runs = _cron_runs(worker1.text() + worker2.text())
                    return {f for f, at, _ in runs if at == first_tick} >= EVERY_MINUTE
                await _until("a cron tick with both workers up", tick_ran, max(first_tick - time.time(), 0) + 45, 0.5)

                # A worker with a job in flight (a prompt whose gateway answers slowly) finishes it,
                # then exits 0. The other worker stops first, so the job is the last one's.
                worker1.stop()
                code, _ = await worker1.exited()
                assert code == 0, worker1.text()
                r = await http.post(f"{sandbox}/_sandbox/daraja/settings", json={"slow_response_delay": SLOW_SECONDS})
                assert r.status_code < 300, r.text
                answer = await _post(desk, f"{webs[0]}/members/{stk_members[0]}/mpesa",
                                     {"idempotency_key": "chain-slow-gateway", "phone": SLOW, "amount": "50"})
                assert answer.status_code == 303, answer.text
                slow_payment = int(answer.headers["location"].rsplit("/", 1)[1])

                async def prompt_at_the_gateway():
                    return (await http.get(f"{sandbox}/_sandbox/daraja/stk?phone={SLOW}")).json()["items"]
                await _until("the slow prompt reaching the gateway", prompt_at_the_gateway, 20)
                worker2.stop()
                code, took = await worker2.exited()
                assert code == 0, worker2.text()
                row = await Payment.select(Payment.status, Payment.gateway_ref).where(Payment.id == slow_payment).first()
                assert row["gateway_ref"], f"the prompt's job was cut off by SIGTERM: {row}\n{worker2.text()}"
                drained = worker2.text().split("stopping: waiting for", 1)
                assert len(drained) == 2 and "Finished Job<function: send_stk_push" in drained[1], worker2.text()

                await desk.aclose()
                await boss.aclose()
        finally:
            for p in procs:
                p.stop(signal.SIGINT)
            for p in procs:
                if p.proc.poll() is None:
                    try:
                        await p.exited(30)
                    except subprocess.TimeoutExpired:
                        p.proc.kill()
        web1_code = web1.proc.returncode
    assert web1_code == 0, web1.text()

    # Exactly once: one payment per desk form and per prompt, each credited once.
    for member, inv in zip(desk_members, desk_invoices):
        rows = await Payment.select(Payment.id, Payment.status).where(
            (Payment.member == member) & (Payment.idempotency_key != "chain-slow-client"))
        assert [r["status"] for r in rows] == ["completed"], rows
        credited = await LedgerEntry.count().where(
            (LedgerEntry.payment == rows[0]["id"]) & (LedgerEntry.kind == "payment_received"))
        assert credited == 1
        assert (await Invoice.select(Invoice.status).where(Invoice.id == inv["id"]).first())["status"] == "paid"
    for member, pid, inv in zip(stk_members, stk_payments, stk_invoices):
        completed = await Payment.select(Payment.id).where((Payment.member == member) & (Payment.status == "completed"))
        assert [r["id"] for r in completed] == [pid]
        credited = await LedgerEntry.count().where((LedgerEntry.payment == pid) & (LedgerEntry.kind == "payment_received"))
        assert credited == 1
        assert (await Invoice.select(Invoice.status).where(Invoice.id == inv["id"]).first())["status"] == "paid"

    # The close: its snapshot is what the ledger holds for the day; each racing payment counted
    # on the closed day or moved to the next, none lost.
    close = await closes.close_for(westlands, today())
    assert close and close["status"] == "closed"
    assert Decimal(close["expected"]["methods"]["cash"]) == Decimal((await closes.expected(westlands, today()))["methods"]["cash"])
    raced_ids = [r["id"] for r in await Payment.select(Payment.id).where(Payment.idempotency_key.like("chain-race-%"))]
    assert len(raced_ids) == 6
    days = [r["business_date"] for r in await LedgerEntry.select(LedgerEntry.business_date).where(
        LedgerEntry.payment.is_in(raced_ids) & (LedgerEntry.kind == "payment_received"))]
    assert len(days) == 6 and set(days) <= {today(), today() + timedelta(days=1)}, days
    assert await DayClose.count() == 1

    await assert_books_agree()

    # Each cron job once per tick, across both workers (ticks before both were up included).
    runs = _cron_runs(worker1.text() + worker2.text())
    twice = {k: n for k, n in Counter((f, at, attempt) for f, at, attempt in runs).items() if n > 1}
    assert not twice, f"cron jobs run more than once in a tick: {twice}"
    assert {f for f, at, _ in runs if at == first_tick} >= EVERY_MINUTE

    print(f"\nchain of gyms: 2 web + 2 workers up in {ready:.1f} s; whole test {time.monotonic() - started:.1f} s; "
          f"worker drained its job in {took:.1f} s after SIGTERM; {len(runs)} cron runs seen")
