"""Prompts and sweepers keep their pace whatever else is queued, and a prompt is never sent after
its time: a real worker on the real queues, the portal over HTTP, the Daraja sandbox."""

import asyncio
import time
from datetime import date, timedelta

import httpx

from portal.documents.requests import request_document
from tables.billing import Document, Payment, PaymentEvent
from tests.billing.helpers import invoice_for
from tests.factories import make_member
from tests.fixtures import running_worker
from tests.support.live import PHONES, wait_for_status

BACKLOG = 300
SWEEPERS = ("sweep_mpesa", "sweep_card_checkouts", "sweep_card_refunds", "sweep_messages", "sweep_documents")


async def _ask(alice, member: int, phone: str, amount: str = "3000") -> int:
    r = await alice.post(f"/members/{member}/mpesa", {"phone": phone, "amount": amount, "idempotency_key": f"k-{phone}"})
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


async def _queue_statements(count: int) -> None:
    """`count` real PDF jobs (one member's statement over as many periods), as a busy day or a
    fresh demo leaves them."""
    member = await make_member("Backlog", "Member")
    for i in range(count):
        start = date(2024, 1, 1) + timedelta(days=i)
        await request_document("statement", f"statement:{member}:{start}:{start + timedelta(days=30)}")


async def _statements_made() -> int:
    return await Document.count().where(Document.kind == "statement")


async def _next_minute_in(lead: float) -> float:
    """Wait until the next whole minute (when the minute sweepers are due) is `lead` s away."""
    now = time.time()
    boundary = (now // 60 + 1) * 60
    if boundary - now < lead:
        boundary += 60
    await asyncio.sleep(boundary - lead - now)
    return boundary


async def _ran_since(queue, name: str, boundary: float) -> bool:
    """The cron job `name` due at `boundary` has run: it is complete, or already queued again
    for the minute after (which SAQ does only once it has finished)."""
    job = await queue.job(f"cron:{name}")
    if job is None:
        return False
    return job.scheduled > boundary or (job.status == "complete" and job.completed >= boundary * 1000)


async def test_a_prompt_goes_out_and_the_sweepers_run_on_time_behind_hundreds_of_pdfs(live, worker, alice, queue):
    member = await make_member()
    await invoice_for(member, 3000)
    boundary = await _next_minute_in(15)
    await _queue_statements(BACKLOG)

    asked = time.monotonic()
    pid = await _ask(alice, member, PHONES["success"])
    await wait_for_status(pid, {"processing", "completed"}, timeout=60)
    waited = time.monotonic() - asked
    made = await _statements_made()
    assert waited < 10, f"the prompt went out {waited:.1f} s after it was asked for ({made} of {BACKLOG} PDFs made)"
    assert made < BACKLOG  # it did not just wait for the PDFs

    # The minute sweepers run at the minute, not when the PDFs are done.
    while time.time() < boundary + 10 and not all([await _ran_since(queue, s, boundary) for s in SWEEPERS]):
        await asyncio.sleep(0.2)
    late = [s for s in SWEEPERS if not await _ran_since(queue, s, boundary)]
    made = await _statements_made()
    assert late == [], f"{late} had not run 10 s after they were due ({made} of {BACKLOG} PDFs made)"
    assert made < BACKLOG
    # ...and the PDFs are still being made.
    await wait_for_status(pid, {"completed"})


async def test_four_prompts_stuck_on_gateway_time_outs_do_not_hold_up_a_fifth(live, worker, alice):
    slow = [f"25471100000{i}" for i in range(1, 5)]
    async with httpx.AsyncClient(base_url=f"{live.sandbox}/_sandbox/daraja") as sandbox:
        # Daraja holds its answer to each of these pushes for 15 s (as when it times out on us).
        assert (await sandbox.post("/settings", json={"slow_response_delay": 15})).status_code < 300
        for phone in slow:
            assert (await sandbox.post("/scenarios", json={"phone": phone, "scenario": "slow_response"})).status_code < 300
        stuck = [await _ask(alice, await make_member(), phone) for phone in slow]
        for _ in range(200):  # all four are with Daraja, waiting for its answer
            if len((await sandbox.get("/stk")).json()["items"]) == len(slow):
                break
            await asyncio.sleep(0.05)
        assert len((await sandbox.get("/stk")).json()["items"]) == len(slow)

    asked = time.monotonic()
    pid = await _ask(alice, await make_member(), PHONES["success"])
    await wait_for_status(pid, {"processing", "completed"}, timeout=60)
    waited = time.monotonic() - asked
    assert waited < 8, f"the prompt went out {waited:.1f} s after it was asked for"
    await wait_for_status(pid, {"completed"})
    for payment_id in stuck:  # the slow ones still go through once Daraja answers
        await wait_for_status(payment_id, {"completed"}, timeout=40)


async def test_a_prompt_whose_time_ran_out_in_the_queue_is_never_sent(live, alice, queue, settings):
    member = await make_member()
    await invoice_for(member, 3000)
    now = time.time()
    if 60 - now % 60 < 25:  # the M-Pesa sweeper, due at the minute, would expire it first (a busy machine may take a while to start the worker)
        await asyncio.sleep(60 - now % 60 + 0.5)
    pid = await _ask(alice, member, PHONES["success"])  # no worker yet: the push waits in the queue
    # Time passes before a worker gets to it: the prompt's time is up.
    await Payment.update({Payment.expires_at: Payment.created_at}).where(Payment.id == pid)

    async with running_worker(settings, queue):
        await wait_for_status(pid, {"expired"})
        for _ in range(100):  # the send job itself said no (not a sweeper before it)
            job = await queue.job(f"stk:{pid}")
            if job.status == "complete":
                break
            await asyncio.sleep(0.05)
        assert job.result == "expired"
    event = await PaymentEvent.select().where(PaymentEvent.payment == pid).order_by(PaymentEvent.id, ascending=False).first()
    assert (event["old_status"], event["new_status"]) == ("pending", "expired")
    assert event["reason"] == ("Not sent: the request expired before the prompt could go out. "
                               "Nothing reached the phone; retry to ask again")
    pushes = httpx.get(f"{live.sandbox}/_sandbox/daraja/stk", params={"phone": PHONES["success"]}).json()["items"]
    assert pushes == []
    page = await alice.get(f"/payments/{pid}/status", htmx=True)
    assert "Not sent: the request expired" in page.text and 'data-testid="retry"' in page.text
