"""Rules for outgoing messages."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-11-26T10:02:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "message rules"

FORWARDS = [
    """ALTER TABLE message ADD CONSTRAINT message_status_known CHECK (status IN
        ('queued', 'sending', 'sent', 'delivered', 'failed', 'bounced', 'skipped'))""",
    "ALTER TABLE message ADD CONSTRAINT message_channel_known CHECK (channel IN ('email', 'sms'))",
    "ALTER TABLE member ADD CONSTRAINT member_message_channel_known CHECK (message_channel IN ('sms', 'email', 'both'))",
    # The sweeper's work list: messages not yet sent (a lost job, a worker that died mid-send).
    "CREATE INDEX message_unsent ON message (id) WHERE status IN ('queued', 'sending')",
    # A member's recent messages on their page.
    "CREATE INDEX message_member_recent ON message (member, id DESC)",
]

BACKWARDS = [
    "ALTER TABLE message DROP CONSTRAINT IF EXISTS message_status_known",
    "ALTER TABLE message DROP CONSTRAINT IF EXISTS message_channel_known",
    "ALTER TABLE member DROP CONSTRAINT IF EXISTS member_message_channel_known",
    "DROP INDEX IF EXISTS message_unsent",
    "DROP INDEX IF EXISTS message_member_recent",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
