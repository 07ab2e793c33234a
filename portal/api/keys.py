"""API keys: made by admins (portal/web/api_keys.py), shown once, stored as their sha256.

A key is `ptf_live_` and 32 random bytes (url-safe base64): the prefix makes a leaked key easy
to recognise (secret scanners, and portal/lib/logsafe.py, which redacts anything that looks like
one), and with 256 random bits a fast hash is enough: nobody can guess their way back from it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from portal import audit
from portal.lib.clock import now
from portal.lib.errors import NotFound
from tables.api import ApiKey

KEY_PREFIX = "ptf_live_"
KEY_RE = re.compile(r"^ptf_live_[A-Za-z0-9_-]{43}$")
SCOPES = {
    "read": "Read members, memberships, plans, invoices, payments and receipts, dues, renewals, analytics and access status",
    "members": "Create and update members, put them on plans (which invoices them)",
    "payments": "Start, verify and refund payments; void invoices",
    "admin": "Everything, including managing the API itself",
}
SHOWN_PREFIX = 14  # characters of the key kept in clear to tell keys apart: ptf_live_ and 5 more


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ApiCaller:
    """Who is calling the API: the key's row, without its hash."""

    key_id: int
    name: str
    scopes: frozenset[str]
    location_id: int | None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def scope_problem(scopes: list[str]) -> str | None:
    if not scopes:
        return "Choose at least one scope"
    if any(s not in SCOPES for s in scopes):
        return "Choose scopes from the list"
    return None


async def create_key(name: str, scopes: list[str], location_id: int | None, staff_id: int | None) -> tuple[int, str]:
    """A new key: (its id, the key itself, which is never stored and cannot be shown again)."""
    key = new_key()
    ordered = [s for s in SCOPES if s in scopes]
    row = ApiKey(name=name, prefix=key[:SHOWN_PREFIX], key_hash=hash_key(key), scopes=",".join(ordered),
                 location=location_id, created_by=staff_id)
    await row.save()
    await audit.record("api_key.created", "api_key", row.id, staff_id=staff_id,
                       details={"name": name, "scopes": ordered, "location": location_id})
    return row.id, key


async def revoke_key(key_id: int, staff_id: int | None) -> None:
    changed = await ApiKey.update({ApiKey.revoked_at: now()}).where(
        (ApiKey.id == key_id) & ApiKey.revoked_at.is_null()).returning(ApiKey.id)
    if not changed:
        if not await ApiKey.exists().where(ApiKey.id == key_id):
            raise NotFound("api key")
        return  # revoked already: nothing to record twice
    await audit.record("api_key.revoked", "api_key", key_id, staff_id=staff_id)


async def list_keys() -> list[dict]:
    return await ApiKey.raw(
        "SELECT k.id, k.name, k.prefix, k.scopes, k.created_at, k.revoked_at, k.last_used_at, l.name AS location_name "
        "FROM api_key k LEFT JOIN location l ON l.id = k.location ORDER BY k.revoked_at IS NOT NULL, k.id DESC")


# One statement: finds a live key by its hash and notes that it was used, writing at most once a
# minute. An UPDATE that sets a column to its own value still writes a new row version and makes
# the request's commit wait for the WAL flush, so the update only touches a key whose note is stale
# (on a busy disk that flush was most of an API request's time: make bench at 20k/500k).
AUTH_SQL = """
WITH k AS (SELECT id, name, scopes, location, last_used_at FROM api_key WHERE key_hash = {} AND revoked_at IS NULL),
touched AS (UPDATE api_key SET last_used_at = now() FROM k
            WHERE api_key.id = k.id AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute'))
SELECT id, name, scopes, location FROM k
"""


async def caller_for(key: str) -> ApiCaller | None:
    """The caller a bearer key belongs to, or None (unknown, malformed or revoked)."""
    if not KEY_RE.match(key):
        return None
    rows = await ApiKey.raw(AUTH_SQL, hash_key(key))
    if not rows:
        return None
    r = rows[0]
    return ApiCaller(key_id=r["id"], name=r["name"], scopes=frozenset(r["scopes"].split(",")), location_id=r["location"])


def retry_after_seconds(next_at: datetime) -> int:
    return max(1, int((next_at - now()).total_seconds() + 0.999))
