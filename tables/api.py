"""API keys and the answers to idempotent API writes (portal/api/).

A key is stored as the sha256 of the whole key (it is 32 random bytes, so a plain hash is as
strong as a slow one); `prefix` is its first characters, shown to admins so they can tell keys
apart. Scopes are a comma-separated list of read, payments, members, admin.
"""

from piccolo.columns import JSONB, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from tables.locations import Location
from tables.staff import Staff


class ApiKey(Table, tablename="api_key"):
    name = Varchar(length=80)
    prefix = Varchar(length=24, help_text="The key's first characters, to tell keys apart")
    key_hash = Varchar(length=64, unique=True, help_text="sha256 of the key, hex")
    scopes = Varchar(length=80, help_text="Comma-separated: read, payments, members, admin")
    location = ForeignKey(references=Location, on_delete=OnDelete.restrict, null=True, default=None)
    created_by = ForeignKey(references=Staff, on_delete=OnDelete.restrict, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None)
    last_used_at = Timestamptz(null=True, default=None)


class ApiIdempotency(Table, tablename="api_idempotency"):
    """The first answer to a POST sent with an Idempotency-Key, per API key."""

    api_key = ForeignKey(references=ApiKey, on_delete=OnDelete.cascade, null=False)
    key = Varchar(length=200)
    body_hash = Varchar(length=64)
    status_code = Integer()
    response = JSONB(default={})
    created_at = Timestamptz(default=TimestamptzNow())
