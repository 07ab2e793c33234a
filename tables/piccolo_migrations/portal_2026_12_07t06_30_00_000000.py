"""API keys (stored hashed) and the first answers to idempotent API writes (tables/api.py)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-07T06:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "api_key and api_idempotency"

FORWARDS = [
    """CREATE TABLE api_key (
        id serial PRIMARY KEY,
        name varchar(80) NOT NULL,
        prefix varchar(24) NOT NULL,
        key_hash varchar(64) NOT NULL UNIQUE,
        scopes varchar(80) NOT NULL,
        location integer NULL REFERENCES location (id) ON DELETE RESTRICT,
        created_by integer NULL REFERENCES staff (id) ON DELETE RESTRICT,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz NULL,
        last_used_at timestamptz NULL
    )""",
    """CREATE TABLE api_idempotency (
        id serial PRIMARY KEY,
        api_key integer NOT NULL REFERENCES api_key (id) ON DELETE CASCADE,
        key varchar(200) NOT NULL,
        body_hash varchar(64) NOT NULL,
        status_code integer NOT NULL,
        response jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (api_key, key)
    )""",
]

BACKWARDS = ["DROP TABLE IF EXISTS api_idempotency", "DROP TABLE IF EXISTS api_key"]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
