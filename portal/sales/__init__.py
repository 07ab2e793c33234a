"""The catalogue, desk sales (members and walk-ins), custom invoices and session packs."""
