"""Reconciliation: the gateways' own books against the portal's (issue 16).

    sources.py     Pull Transactions records and statement lines as C2B confirmations: stored raw in
                   the callbacks store, then the same exactly-once path (c2b.process_c2b_confirmation)
    pull.py        ask Daraja for the Paybill's last hours, page by page; credit what was never heard of
    statement.py   read the org portal's statement CSV (refusing a malformed file with line and column)
    statements.py  import a statement: match every line, credit what the portal never heard of, list
                   the rest and the ledger's payments with no line
    stk_status.py  quiet STK prompts settled by Daraja's Transaction Status (its Result stored raw first)
    phones.py      v1 hashed and v2 masked payer phones on Paybill confirmations: match or rank members
    cards.py       the nightly pass over Flutterwave's charges and refunds against the books
    book.py        the gateways' own book line by line (gateway_line), fed by the sources above
    days.py        the reconciliation page's figures: per day and channel, the book against the ledger
    actions.py     settling a difference (credit, not ours, refund, explained) once; a day reconciled
"""
