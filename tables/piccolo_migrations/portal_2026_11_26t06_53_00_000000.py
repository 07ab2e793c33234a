"""Rules the money tables keep even when code forgets them: a balanced, append-only ledger."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-11-26T06:53:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "ledger and billing rules"

FORWARDS = [
    # Every entry's legs sum to zero per currency, checked at COMMIT (legs are inserted one by one).
    """CREATE OR REPLACE FUNCTION ledger_entry_balanced() RETURNS trigger AS $$
    DECLARE
        unbalanced record;
    BEGIN
        SELECT currency, sum(amount) AS total INTO unbalanced
        FROM ledger_leg WHERE entry = NEW.entry GROUP BY currency HAVING sum(amount) <> 0 LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'ledger entry % does not balance: % % left over', NEW.entry, unbalanced.total, unbalanced.currency
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql""",
    """CREATE CONSTRAINT TRIGGER ledger_leg_balanced AFTER INSERT ON ledger_leg
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced()""",
    # Append-only: corrections are new entries.
    """CREATE TRIGGER ledger_leg_append_only BEFORE UPDATE OR DELETE ON ledger_leg
        FOR EACH ROW EXECUTE FUNCTION refuse_change_append_only()""",
    """CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON ledger_entry
        FOR EACH ROW EXECUTE FUNCTION refuse_change_append_only()""",
    """CREATE TRIGGER allocation_append_only BEFORE UPDATE OR DELETE ON allocation
        FOR EACH ROW EXECUTE FUNCTION refuse_change_append_only()""",
    """CREATE TRIGGER payment_event_append_only BEFORE UPDATE OR DELETE ON payment_event
        FOR EACH ROW EXECUTE FUNCTION refuse_change_append_only()""",
    "ALTER TABLE ledger_leg ADD CONSTRAINT ledger_leg_not_zero CHECK (amount <> 0)",
    """ALTER TABLE ledger_leg ADD CONSTRAINT ledger_leg_known_account CHECK (account IN
        ('cash', 'bank', 'cheque', 'mpesa', 'card', 'receivable', 'member_credit', 'revenue', 'vat_payable'))""",
    "ALTER TABLE allocation ADD CONSTRAINT allocation_not_zero CHECK (amount <> 0)",
    "ALTER TABLE payment ADD CONSTRAINT payment_amount_positive CHECK (amount > 0)",
    "ALTER TABLE payment ADD CONSTRAINT payment_refund_within_amount CHECK (refunded >= 0 AND refunded <= amount)",
    """ALTER TABLE payment ADD CONSTRAINT payment_status_known CHECK (status IN
        ('pending', 'processing', 'completed', 'failed', 'cancelled', 'expired', 'refunded', 'partially_refunded'))""",
    "ALTER TABLE invoice ADD CONSTRAINT invoice_amounts_sane CHECK (total >= 0 AND paid >= 0 AND paid <= total)",
    "ALTER TABLE invoice ADD CONSTRAINT invoice_status_known CHECK (status IN ('open', 'partially_paid', 'paid', 'void'))",
    "ALTER TABLE invoice_line ADD CONSTRAINT invoice_line_adds_up CHECK (net + vat = total AND quantity > 0)",
    # One live renewal invoice per membership, however often the renewal job runs.
    "CREATE UNIQUE INDEX invoice_one_renewal ON invoice (membership) WHERE kind = 'renewal' AND status <> 'void'",
    "CREATE UNIQUE INDEX document_counter_kind_year ON document_counter (kind, year)",
    "CREATE UNIQUE INDEX document_kind_subject ON document (kind, subject)",
    # Lists and dashboards: open invoices per member, oldest first; payments by time.
    "CREATE INDEX invoice_open_by_member ON invoice (member, due_date, id) WHERE status IN ('open', 'partially_paid')",
    "CREATE INDEX payment_created_desc ON payment (created_at DESC, id DESC)",
    "CREATE INDEX ledger_leg_member_account ON ledger_leg (member, account)",
    "CREATE INDEX payment_receipt_upper ON payment (upper(receipt_number) text_pattern_ops)",
    "CREATE INDEX payment_reference_upper ON payment (upper(reference) text_pattern_ops)",
]

BACKWARDS = [
    "DROP TRIGGER IF EXISTS ledger_leg_balanced ON ledger_leg",
    "DROP FUNCTION IF EXISTS ledger_entry_balanced()",
    "DROP TRIGGER IF EXISTS ledger_leg_append_only ON ledger_leg",
    "DROP TRIGGER IF EXISTS ledger_entry_append_only ON ledger_entry",
    "DROP TRIGGER IF EXISTS allocation_append_only ON allocation",
    "DROP TRIGGER IF EXISTS payment_event_append_only ON payment_event",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
