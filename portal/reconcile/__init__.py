"""Reconciliation: the gateways' own books against the portal's (issue 16)."""
