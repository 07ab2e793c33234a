"""The sandbox: one ASGI app serving all three simulated gateways on their real paths.

Daraja lives under /oauth and /mpesa, Flutterwave under /v3, Africa's Talking under /version1,
so each client's base URL is simply this app's address. Pages for people (the simulated phone,
the hosted checkout, the SMS inbox) and the test control API (/_sandbox/...) sit beside them.
"""

from __future__ import annotations

from litestar import Litestar, get

from portal.sandbox import africastalking, daraja, flutterwave
from portal.sandbox.config import SandboxConfig


@get("/healthz", sync_to_thread=False)
def healthz() -> dict:
    return {"sandbox": "ok"}


def create_sandbox_app(config: SandboxConfig | None = None) -> Litestar:
    config = config or SandboxConfig()
    app = Litestar(
        # Logging is the process's (portal.lib.logs): Litestar's config would start a thread per app.
        logging_config=None,
        route_handlers=[healthz, daraja.router, flutterwave.router, africastalking.router],
        on_startup=[daraja.on_startup, flutterwave.on_startup, africastalking.on_startup],
        on_shutdown=[daraja.on_shutdown, flutterwave.on_shutdown, africastalking.on_shutdown],
        # Gateways answer their own error shapes; never Litestar's debug pages.
        debug=False,
    )
    app.state.config = config
    return app
