"""Rules the database keeps even when code forgets them: append-only audit, CHECKs, search indexes."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-11-26T06:41:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "database rules for the foundation tables"

FORWARDS = [
    "CREATE SEQUENCE IF NOT EXISTS member_number_seq START 1",
    """CREATE OR REPLACE FUNCTION refuse_change_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP;
    END;
    $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION refuse_change_append_only()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_append_only()""",
    "ALTER TABLE plan ADD CONSTRAINT plan_price_not_negative CHECK (price >= 0)",
    """ALTER TABLE plan ADD CONSTRAINT plan_has_duration
        CHECK (duration_months >= 0 AND duration_days >= 0 AND duration_months + duration_days > 0)""",
    "ALTER TABLE membership ADD CONSTRAINT membership_dates_ordered CHECK (end_date >= start_date)",
    "ALTER TABLE membership ADD CONSTRAINT membership_price_not_negative CHECK (price >= 0)",
    "ALTER TABLE member ADD CONSTRAINT member_phone_normalised CHECK (phone ~ '^254[17][0-9]{8}$')",
    "ALTER TABLE staff ADD CONSTRAINT staff_role_known CHECK (role IN ('front_desk', 'manager', 'admin'))",
    # Live search: prefix matches on names, numbers and phones, without contrib extensions.
    "CREATE INDEX member_last_name_lower ON member (lower(last_name) text_pattern_ops)",
    "CREATE INDEX member_first_name_lower ON member (lower(first_name) text_pattern_ops)",
    "CREATE INDEX member_number_upper ON member (upper(member_number) text_pattern_ops)",
    "CREATE INDEX member_phone_pattern ON member (phone text_pattern_ops)",
    "CREATE INDEX member_name_order ON member (lower(last_name), lower(first_name), id)",
    "CREATE INDEX login_attempt_recent_failures ON login_attempt (at) WHERE NOT succeeded",
]

BACKWARDS = [
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
    "DROP FUNCTION IF EXISTS refuse_change_append_only()",
    "DROP SEQUENCE IF EXISTS member_number_seq",
    "ALTER TABLE plan DROP CONSTRAINT IF EXISTS plan_price_not_negative",
    "ALTER TABLE plan DROP CONSTRAINT IF EXISTS plan_has_duration",
    "ALTER TABLE membership DROP CONSTRAINT IF EXISTS membership_dates_ordered",
    "ALTER TABLE membership DROP CONSTRAINT IF EXISTS membership_price_not_negative",
    "ALTER TABLE member DROP CONSTRAINT IF EXISTS member_phone_normalised",
    "ALTER TABLE staff DROP CONSTRAINT IF EXISTS staff_role_known",
    "DROP INDEX IF EXISTS member_last_name_lower",
    "DROP INDEX IF EXISTS member_first_name_lower",
    "DROP INDEX IF EXISTS member_number_upper",
    "DROP INDEX IF EXISTS member_phone_pattern",
    "DROP INDEX IF EXISTS member_name_order",
    "DROP INDEX IF EXISTS login_attempt_recent_failures",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
