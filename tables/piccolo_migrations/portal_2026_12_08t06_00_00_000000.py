"""Members' phones as Safaricom hashes them: C2B v1 confirmations carry the payer's MSISDN as the
SHA-256 hex digest of "2547XXXXXXXX" (gateways.md §1.8, official C2B FAQ). `member.phone_hash` is
that digest of the member's phone (stored form 2547/2541 + 8 digits; NULL for anything else),
kept by a trigger on every insert and update, so no path that writes a phone (the member form,
the API, demo data in bulk, a restore) can leave it stale; the existing rows are back-filled.
Indexed: a hashed confirmation finds its member in one index look-up; the last three digits
of the phone are indexed too (what a v2 masked MSISDN shows: the Unmatched page's candidates).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-08T06:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "member.phone_hash: SHA-256 of the phone, for C2B v1 hashed MSISDNs"

FORWARDS = [
    "ALTER TABLE member ADD COLUMN IF NOT EXISTS phone_hash varchar(64) NULL DEFAULT NULL",
    """CREATE OR REPLACE FUNCTION member_phone_hash() RETURNS trigger AS $$
    BEGIN
        NEW.phone_hash := CASE WHEN NEW.phone ~ '^254[17][0-9]{8}$'
                               THEN encode(sha256(convert_to(NEW.phone, 'UTF8')), 'hex') END;
        RETURN NEW;
    END;
    $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS member_phone_hash ON member",
    """CREATE TRIGGER member_phone_hash BEFORE INSERT OR UPDATE ON member
    FOR EACH ROW EXECUTE FUNCTION member_phone_hash()""",
    "UPDATE member SET phone_hash = CASE WHEN phone ~ '^254[17][0-9]{8}$' "
    "THEN encode(sha256(convert_to(phone, 'UTF8')), 'hex') END",
    "CREATE INDEX IF NOT EXISTS member_phone_hash ON member (phone_hash)",
    # A v2 masked MSISDN shows the last three digits: the members it may be, found by index.
    "CREATE INDEX IF NOT EXISTS member_phone_last3 ON member (right(phone, 3))",
]

BACKWARDS = [
    "DROP INDEX IF EXISTS member_phone_last3",
    "DROP INDEX IF EXISTS member_phone_hash",
    "DROP TRIGGER IF EXISTS member_phone_hash ON member",
    "DROP FUNCTION IF EXISTS member_phone_hash()",
    "ALTER TABLE member DROP COLUMN IF EXISTS phone_hash",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
