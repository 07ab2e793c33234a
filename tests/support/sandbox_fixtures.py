"""Fixtures for anything that talks to the gateway sandbox over real HTTP (any test folder)."""

import pytest

from portal.sandbox.app import create_sandbox_app
from portal.sandbox.config import SandboxConfig
from tests.support.servers import CallbackSink, serve_in_thread


@pytest.fixture
def callback_sink():
    """Stands in for the portal's callback endpoints: records what the sandbox posts."""
    sink = CallbackSink()
    with serve_in_thread(sink) as base:
        sink.base = base
        yield sink


@pytest.fixture
def sandbox(callback_sink):
    """The whole sandbox over real HTTP, callbacks immediate, webhooks/DLRs to the sink."""
    config = SandboxConfig(
        callback_delay=0.0,
        daraja_prompt_timeout=2.0,
        flutterwave_webhook_url=f"{callback_sink.base}/hooks/flutterwave",
        at_delivery_report_url=f"{callback_sink.base}/hooks/sms/delivery",
    )
    app = create_sandbox_app(config)
    with serve_in_thread(app) as base:
        config.public_url = base
        yield base
