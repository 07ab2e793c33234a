"""Offline simulators of the gateways the portal talks to (Daraja, Flutterwave, Africa's Talking).

They are written from ../shared/gateways.md, not from the portal's clients, and share no code with
the portal: a mistake in one is then caught by the other. The portal reaches them only over HTTP.
"""
