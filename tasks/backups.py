"""The nightly backup job: a thin wrapper around portal.backups (the same code as `portal backup`)."""

from __future__ import annotations

import asyncio

from piccolo.engine import engine_finder

from portal import backups
from portal.settings import get_settings


async def run_backup(ctx) -> dict:
    """At BACKUP_TIME: dump the database into BACKUP_DIR (and BACKUP_COPY_DIR), apply retention.
    pg_dump is a subprocess; it runs in a thread so the worker's other jobs carry on."""
    result = await asyncio.to_thread(backups.backup, get_settings(), engine_finder().config["dsn"])
    return {"file": result.dump.name, "bytes": result.bytes, "seconds": round(result.seconds, 1)}
