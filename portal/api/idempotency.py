"""Idempotent API writes: a POST sent again with the same Idempotency-Key gets the first answer.

The key is claimed (a row, unique per API key and Idempotency-Key) in the same transaction as the
write, so two copies of a request arriving at once cannot both write: the second waits on the
first's row and then reads its answer. A write that fails rolls its claim back, so the client
may try again. The same key with another body is refused: it is a client bug, not a retry.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Awaitable, Callable

from portal.lib import db
from tables.api import ApiIdempotency

MAX_KEY_LENGTH = 200


class KeyReused(Exception):
    """The Idempotency-Key was used before with a different body."""


def body_hash(body) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def _plain(value):
    # Dates and times as the OpenAPI document says (RFC 3339: 2026-12-07T13:18:55+00:00, which
    # str() would write with a space), anything else (Decimal) as its string.
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


def as_json(value):
    """What the client is sent, as it will be stored: the first answer and its repeats are the same."""
    return json.loads(json.dumps(value, default=_plain))


CLAIM_SQL = """
INSERT INTO api_idempotency (api_key, key, body_hash, status_code, response) VALUES ({}, {}, {}, 0, '{{}}')
ON CONFLICT (api_key, key) DO NOTHING RETURNING id
"""


async def once(api_key_id: int, key: str | None, body, write: Callable[[], Awaitable[tuple[int, dict]]]) -> tuple[int, dict, bool]:
    """(status, response, replayed): `write()`'s answer, or the first answer to this key."""
    if key is None:
        status, response = await write()
        return status, as_json(response), False
    digest = body_hash(body)
    async with db.transaction():
        claimed = await ApiIdempotency.raw(CLAIM_SQL, api_key_id, key, digest)
        if not claimed:
            row = (await ApiIdempotency.raw(
                "SELECT body_hash, status_code, response FROM api_idempotency WHERE api_key = {} AND key = {}",
                api_key_id, key))[0]
            if row["body_hash"] != digest:
                raise KeyReused()
            response = row["response"]
            return row["status_code"], json.loads(response) if isinstance(response, str) else response, True
        status, response = await write()
        response = as_json(response)
        await ApiIdempotency.raw("UPDATE api_idempotency SET status_code = {}, response = {}::jsonb WHERE id = {}",
                                 status, json.dumps(response), claimed[0]["id"])
        return status, response, False
