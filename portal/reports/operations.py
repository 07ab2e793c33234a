"""What an operator watches, read from the database and the queues at the moment they ask: how far
behind callback processing is, failed messages, payments still waiting by age, the queues' depth.

Each figure is one query over a small, indexed set of rows (callbacks not yet processed, by the
partial index on received_at; payments in flight and failed messages, by their status index), so
a scrape costs the same at any size of gym.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

from portal.callbacks.store import MAX_ATTEMPTS
from portal.lib import queue
from tables.gateway import GatewayCallback
from tables.messages import Message
from tables.statuses import IN_FLIGHT_SQL, sql_list

GATEWAYS = ("daraja", "flutterwave", "africastalking")
# Upper bounds (seconds) of the age buckets of payments still waiting for their outcome.
PENDING_AGES = (("under_5m", 300), ("5m_to_30m", 1800), ("30m_to_2h", 7200), ("2h_to_1d", 86400), ("over_1d", None))
FAILED_MESSAGES = (Message.Status.failed.value, Message.Status.bounced.value)
QUEUE_STATES = ("queued", "active")

# Rows the sweeper still owes a try: not acted on, and not given up on (those wait for staff, with
# an alert, and would otherwise hold the lag up forever). Rejected and malformed rows are kept for
# the record, never processed.
WAITING = "processed_at IS NULL AND outcome IN ('stored', 'error') AND attempts < {max_attempts}"

CALLBACKS_SQL = (f"SELECT gateway, count(*) AS waiting, extract(epoch FROM now() - min(received_at)) AS oldest "
                 f"FROM gateway_callback WHERE {WAITING.format(max_attempts=MAX_ATTEMPTS)} GROUP BY gateway")
OLDEST_SQL = (f"SELECT extract(epoch FROM now() - min(received_at)) AS oldest "
              f"FROM gateway_callback WHERE {WAITING.format(max_attempts=MAX_ATTEMPTS)}")
_AGE_CASE = " ".join(f"WHEN created_at > now() - make_interval(secs => {limit}) THEN '{name}'"
                     for name, limit in PENDING_AGES if limit is not None)
PENDING_SQL = (f"SELECT CASE {_AGE_CASE} ELSE '{PENDING_AGES[-1][0]}' END AS age, count(*) AS n "
               f"FROM payment WHERE status IN {IN_FLIGHT_SQL} GROUP BY 1")
MESSAGES_SQL = f"SELECT channel, count(*) AS n FROM message WHERE status IN {sql_list(FAILED_MESSAGES)} GROUP BY channel"


@dataclass
class Figures:
    callbacks_waiting: dict[str, int] = field(default_factory=dict)  # gateway -> rows
    oldest_callback_seconds: dict[str, float] = field(default_factory=dict)  # gateway -> age (0: none)
    pending_payments: dict[str, int] = field(default_factory=dict)  # age bucket -> payments
    failed_messages: dict[str, int] = field(default_factory=dict)  # channel -> messages
    queue_jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (queue, state) -> jobs


async def oldest_callback_age() -> float:
    """Seconds since the oldest callback still owed processing arrived; 0 when none is."""
    rows = await engine_finder().run_querystring(QueryString(OLDEST_SQL))
    return float(rows[0]["oldest"] or 0) if rows else 0.0


async def _queue_jobs() -> dict[tuple[str, str], int]:
    queues = queue.get_queue().by_name
    keys = [(name, state) for name in queues for state in QUEUE_STATES]
    counts = await asyncio.gather(*(queues[name].count(state) for name, state in keys))
    return dict(zip(keys, counts))


async def figures() -> Figures:
    """Three queries on the database and two counts per queue, whatever the data size."""
    callbacks, pending, messages, jobs = await asyncio.gather(
        GatewayCallback.raw(CALLBACKS_SQL), GatewayCallback.raw(PENDING_SQL), GatewayCallback.raw(MESSAGES_SQL),
        _queue_jobs())
    out = Figures(queue_jobs=jobs)
    out.callbacks_waiting = {g: 0 for g in GATEWAYS}
    out.oldest_callback_seconds = {g: 0.0 for g in GATEWAYS}
    for row in callbacks:
        out.callbacks_waiting[row["gateway"]] = row["waiting"]
        out.oldest_callback_seconds[row["gateway"]] = float(row["oldest"])
    out.pending_payments = {name: 0 for name, _ in PENDING_AGES}
    out.pending_payments.update({row["age"]: row["n"] for row in pending})
    out.failed_messages = {"email": 0, "sms": 0}
    out.failed_messages.update({row["channel"]: row["n"] for row in messages})
    return out
