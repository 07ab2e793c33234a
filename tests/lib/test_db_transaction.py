"""portal.lib.db.transaction() never leaks a connection, whenever its task is cancelled.

Piccolo's transaction takes a pool connection and sends BEGIN in __aenter__; a task cancelled
while BEGIN is on the wire (a worker stopping, a request dropped on a busy machine) never reached
__aexit__, so the connection stayed checked out, `idle in transaction` with BEGIN as its last
query, and closing the pool waited for it forever (seen as a test session that never ended)."""

from __future__ import annotations

import asyncio

from portal.lib import db as portal_db


async def _idle_in_transaction(engine) -> int:
    rows = await engine._run_in_new_connection(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
        "AND state = 'idle in transaction' AND pid <> pg_backend_pid()")
    return rows[0]["n"]


async def test_a_task_cancelled_at_any_point_of_a_transaction_leaves_no_connection_behind(db):
    from tables.locations import Location

    async def work():
        async with portal_db.transaction():
            await Location.select(Location.id).first()

    # Cancel after 0, 1, 2... turns of the event loop: each point of entering the transaction
    # (taking a connection, BEGIN sent, BEGIN answered), of the query and of COMMIT is hit.
    cancelled_at = []
    for turns in range(60):
        task = asyncio.create_task(work())
        for _ in range(turns):
            await asyncio.sleep(0)
        if not task.done():
            task.cancel()
            cancelled_at.append(turns)
        try:
            await task
        except asyncio.CancelledError:
            pass
        assert db.current_transaction.get() is None
    assert cancelled_at, "every transaction ended before it could be cancelled: nothing was tested"
    for _ in range(100):  # releases finish in the background
        if db.pool.get_idle_size() == db.pool.get_size() and await _idle_in_transaction(db) == 0:
            break
        await asyncio.sleep(0.05)
    assert (db.pool.get_idle_size(), await _idle_in_transaction(db)) == (db.pool.get_size(), 0)
    async with asyncio.timeout(30):  # and every connection can still be used
        await asyncio.gather(*(Location.select(Location.id).first() for _ in range(db.pool.get_size())))
