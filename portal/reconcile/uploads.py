"""A large statement uploaded on the web, imported by the worker while the manager watches its
progress (the CLI has its bar; the page polls the upload's row with htmx).

    upload (web)     a file of up to IN_REQUEST lines is imported in the request, as before. A
                     larger one is kept as a statement_upload row (`waiting`) and the job
                     `import_statement_upload` queued after commit; the manager is sent to its page
    the job          claims the row (`running`: one job only) and runs statements.import_statement
                     (checked whole first, then one transaction: all or nothing), writing its
                     progress on the row from its own connection every PROGRESS_SECONDS (lines
                     read, then lines matched, of the total), so the page sees it while the
                     import's transaction is still open; then `done` with the statement, or
                     `refused` with the line and column that are wrong (nothing stored), or
                     `failed`; the file is dropped
    the page         /reconcile/mpesa/uploads/{id}: the bar, polled every second (htmx); when done,
                     the statement's page

Importing the same file twice still changes nothing: the import finds the statement by its hash.
A row left `waiting` (the queue lost its job) is queued again by the page's poll after a minute.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from portal.lib import db, queue
from portal.lib.clock import now
from portal.reconcile.statement import StatementError
from portal.reconcile.statements import import_statement
from tables.reconcile import MpesaStatement

log = logging.getLogger(__name__)

IN_REQUEST = 2_000  # lines imported within the request (a day's statement); more go to the worker
PROGRESS_SECONDS = 0.5
REQUEUE_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class Upload:
    id: int
    filename: str
    state: str  # waiting | running | done | refused | failed
    phase: str  # reading | matching (running)
    done: int
    total: int
    statement: int | None
    new: bool | None
    error: str
    created_at: object
    finished_at: object

    @property
    def percent(self) -> int:
        if self.state == "done":
            return 100
        return int(self.done * 100 / self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.state in ("done", "refused", "failed")


def in_request(data: bytes) -> bool:
    """Small enough to import while the manager waits for the answer (a day's statement)."""
    return data.count(b"\n") <= IN_REQUEST


async def start(data: bytes, *, filename: str, staff_id: int | None) -> int:
    """Keep the file for the worker and queue its import. Returns the upload's id."""
    async with db.transaction():
        rows = await MpesaStatement.raw(
            "INSERT INTO statement_upload (filename, data, staff, total) VALUES ({}, {}, {}, {}) RETURNING id",
            filename[:200], data, staff_id, data.count(b"\n"))
        upload_id = rows[0]["id"]
        await db.after_commit(lambda: _enqueue(upload_id))
    return upload_id


async def _enqueue(upload_id: int) -> None:
    await queue.enqueue("import_statement_upload", key=f"statement-upload:{upload_id}", timeout=600, retries=1,
                        upload_id=upload_id)


async def upload(upload_id: int) -> Upload | None:
    rows = await MpesaStatement.raw(
        "SELECT id, filename, state, phase, done, total, statement, new, error, created_at, finished_at "
        "FROM statement_upload WHERE id = {}", upload_id)
    return Upload(**rows[0]) if rows else None


async def nudge(row: Upload) -> None:
    """The page's poll: a row still waiting a minute after the upload lost its job; queue it again
    (the job's claim makes a second one do nothing)."""
    if row.state == "waiting" and now() - row.created_at > REQUEUE_AFTER:
        try:
            await _enqueue(row.id)
        except RuntimeError:  # no queue in this process
            pass


async def run(upload_id: int) -> str:
    """The job: import the kept file once, telling its progress on the row as it goes."""
    claimed = await MpesaStatement.raw(
        "UPDATE statement_upload SET state = 'running', started_at = now() WHERE id = {} AND state = 'waiting' "
        "RETURNING data, filename, staff", upload_id)
    if not claimed:
        return "nothing to do"
    row = claimed[0]
    latest: dict[str, tuple] = {}

    def reading(done: int, total: int) -> None:  # called from the reading's thread: one assignment
        latest["now"] = ("reading", done, total)

    def matching(done: int, total: int) -> None:
        latest["now"] = ("matching", done, total)

    async def tell() -> None:
        # Its own connection (this task holds no transaction): the import's is open till the end.
        told = None
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            now_ = latest.get("now")
            if now_ is not None and now_ != told:
                told = now_
                await MpesaStatement.raw("UPDATE statement_upload SET phase = {}, done = {}, total = {} WHERE id = {}",
                                         *told, upload_id)

    teller = asyncio.create_task(tell())
    try:
        imported = await import_statement(bytes(row["data"]), filename=row["filename"], staff_id=row["staff"],
                                          progress=matching, reading=reading)
    except StatementError as e:
        await _finish(upload_id, "refused", error=str(e))
        return "refused"
    except Exception as e:
        await _finish(upload_id, "failed", error=f"The import failed, nothing was changed: {e}"[:2000])
        raise
    finally:
        teller.cancel()
        try:
            await teller
        except (asyncio.CancelledError, Exception):  # noqa: S110 (a progress write cut short tells nothing)
            pass
    await _finish(upload_id, "done", statement=imported.statement_id, new=imported.new)
    log.info("statement upload %s imported as statement %s", upload_id, imported.statement_id)
    return "done"


async def _finish(upload_id: int, state: str, *, error: str = "", statement: int | None = None,
                  new: bool | None = None) -> None:
    await MpesaStatement.raw(
        "UPDATE statement_upload SET state = {}, error = {}, statement = {}, new = {}, "
        "done = CASE WHEN {} = 'done' THEN total ELSE done END, "
        "data = ''::bytea, finished_at = now() WHERE id = {}", state, error, statement, new, state, upload_id)


