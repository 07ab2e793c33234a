"""Outbound gateway clients (Daraja, later Flutterwave and Africa's Talking).

Every client goes through `portal.gateways.http`: one httpx client factory with explicit timeouts
and one error type, `GatewayError`, that says whether a retry may help. Callbacks *from* the
gateways are handled elsewhere (portal/web); this package only calls out.
"""

from portal.gateways.http import GatewayError

__all__ = ["GatewayError"]
