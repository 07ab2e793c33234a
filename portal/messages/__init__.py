"""Messages to members (and staff): receipts, invoices, pay links, reminders, by email and SMS.

    outbox.py    queue a message (one row, deduplicated by purpose), claim it, record how it went,
                 resend; which channels a member gets
    content.py   what a message says: built by the worker from the current state of what it is
                 about (an invoice paid meanwhile is skipped), email triplets and one-part SMS
    delivery.py  send one message (SMTP, the dev mailbox, Africa's Talking) and apply SMS
                 delivery reports
    queries.py   the staff pages' lists

The row is the truth and the queue only nudges (DESIGN.md §2): a message is written first, then
the `send_message` job is enqueued; the `sweep_messages` cron picks up any whose job was lost.
"""
