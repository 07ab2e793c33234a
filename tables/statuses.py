"""Groups of statuses that many places test for, in Python and in SQL, named once.

The statuses themselves are the Status enums of tables/billing.py; here is only which of them
belong together. Each group comes with its SQL list, for raw queries (`status IN {OPEN_INVOICE_SQL}`).
"""

from tables.billing import Invoice, Payment


def sql_list(values) -> str:
    """('open', 'partially_paid') -> "('open', 'partially_paid')". For the constant names here
    only: nothing is escaped, so input must never reach it."""
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


# Invoices that still owe money.
OPEN_INVOICE = (Invoice.Status.open.value, Invoice.Status.partially_paid.value)
OPEN_INVOICE_SQL = sql_list(OPEN_INVOICE)

# Payments whose outcome is not known yet (a prompt on a phone, a card checkout under way).
IN_FLIGHT = (Payment.Status.pending.value, Payment.Status.processing.value)
IN_FLIGHT_SQL = sql_list(IN_FLIGHT)
