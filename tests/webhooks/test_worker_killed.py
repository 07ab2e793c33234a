"""A worker killed (SIGKILL, no clean-up) while a delivery is on the wire loses nothing: the
sweeper sends it again with the same webhook-id, and the receiver gets it (at least once)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from portal import webhooks
from tables.webhooks import WebhookDelivery
from tests.billing.helpers import pay
from tests.factories import make_member
from tests.fixtures import running_worker
from tests.webhooks.helpers import endpoint_for, wait_for_delivery

ROOT = Path(__file__).resolve().parents[2]


def _worker_process() -> subprocess.Popen:
    """`portal worker --queue bulk` in a process of its own, on the test database and queue."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-c", "from portal.cli import main; main(['worker', '--queue', 'bulk'])"],
                            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    proc.output = out
    return proc


def _output(proc) -> str:
    proc.output.seek(0)
    return proc.output.read().decode(errors="replace")[-3000:]


async def test_a_worker_killed_mid_delivery_loses_nothing(db, queue, settings, receiver, moved_clock):
    await endpoint_for(receiver, ["payment.completed"])
    receiver.hold_next = True  # the first request waits: the worker is killed while it does
    proc = _worker_process()
    try:
        member = await make_member()
        payment = (await pay(member, 1500)).payment  # commits the event, nudges the (other process's) worker
        got = await receiver.until(lambda g: len(g) >= 1, timeout=90)
        assert proc.poll() is None, _output(proc)
        row = await WebhookDelivery.select().first()
        assert row["status"] == "sending" and row["attempts"] == 1
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    receiver.release()  # its answer goes to a dead connection
    first = got[0]
    assert first.event["data"]["id"] == payment["id"] and first.answered == 0

    # Nobody finishes it: still `sending` (a crash leaves no trace but the row).
    assert (await WebhookDelivery.select().first())["status"] == "sending"
    async with running_worker(settings, queue):
        # Not before STUCK_AFTER: a slow receiver is not a dead worker.
        await webhooks.sweep()
        assert (await WebhookDelivery.select().first())["status"] == "sending"
        moved_clock.move(minutes=3)
        got = await receiver.until(lambda g: any(x.answered == 200 for x in g), timeout=60, between=webhooks.sweep)
    again = [g for g in got if g.answered == 200]
    assert again[0].msg_id == first.msg_id and again[0].body == first.body and again[0].verified
    row = await wait_for_delivery(lambda r: r["status"] == "delivered")
    assert row["attempts"] == 2
    print(f"\nworker killed mid-delivery: {len(got)} requests for 1 event, the same webhook-id "
          f"{first.msg_id} each time, delivered on attempt {row['attempts']}")
