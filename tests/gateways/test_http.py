"""The shared HTTP seam: timeouts, User-Agent, and which failures GatewayError calls retryable."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import httpx
import pytest

from portal.gateways.daraja import DarajaClient
from portal.gateways.http import (
    DEFAULT_TIMEOUT,
    USER_AGENT,
    GatewayError,
    error_from_response,
    make_http_client,
    retryable_status,
    send,
)
from tests.gateways.test_daraja_client import push


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens once the socket is closed


async def test_the_factory_sets_timeouts_and_a_user_agent():
    async with make_http_client() as client:
        assert client.timeout == DEFAULT_TIMEOUT
        assert (client.timeout.connect, client.timeout.read) == (5.0, 30.0)
        assert client.timeout.write is not None and client.timeout.pool is not None
        assert client.headers["User-Agent"] == USER_AGENT
        assert USER_AGENT.startswith("gym-portal/")


@pytest.mark.parametrize("status, retryable", [
    (500, True), (502, True), (503, True), (504, True), (429, True), (408, True),
    (400, False), (401, False), (403, False), (404, False), (409, False), (422, False),
])
def test_status_verdicts(status, retryable):
    assert retryable_status(status) is retryable
    response = httpx.Response(status, text='{"error": "x"}',
                              request=httpx.Request("GET", "http://x/"))
    err = error_from_response(response, gateway="flutterwave", action="verify")
    assert (err.retryable, err.status, err.gateway, err.body) == (retryable, status, "flutterwave",
                                                                  '{"error": "x"}')


def test_a_gateway_may_overrule_the_status():
    response = httpx.Response(500, json={"errorCode": "500.001.1001"},
                              request=httpx.Request("POST", "http://x/"))
    err = error_from_response(response, gateway="daraja", code="500.001.1001",
                              message="Wrong credentials", retryable=False)
    assert not err.retryable
    assert str(err) == ("daraja: request refused: Wrong credentials "
                        "(HTTP 500, code 500.001.1001, not retryable)")


async def test_connection_refused_is_retryable_and_not_delivered():
    async with make_http_client() as client:
        with pytest.raises(GatewayError) as exc:
            await send(client, "GET", f"http://127.0.0.1:{closed_port()}/",
                       gateway="africastalking")
    err = exc.value
    assert (err.retryable, err.maybe_delivered, err.status, err.gateway) == (True, False, None,
                                                                             "africastalking")
    assert "could not connect" in err.message


async def test_a_read_timeout_is_retryable_but_may_have_been_delivered():
    done = asyncio.Event()

    async def never_answer(reader, writer):
        await reader.read(1000)
        await done.wait()  # reads the request, never answers
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with make_http_client(timeout=httpx.Timeout(0.3)) as client:
            with pytest.raises(GatewayError) as exc:
                await send(client, "POST", f"http://127.0.0.1:{port}/", json={}, gateway="daraja",
                           action="STK push")
    finally:
        done.set()
        server.close()
        await server.wait_closed()
    err = exc.value
    assert (err.retryable, err.maybe_delivered) == (True, True)
    assert err.message.startswith("STK push timed out waiting for the answer")
    assert isinstance(err.__cause__, httpx.ReadTimeout)


async def test_a_bad_url_scheme_is_not_retryable():
    async with make_http_client() as client:
        with pytest.raises(GatewayError) as exc:
            await send(client, "GET", "gopher://127.0.0.1/", gateway="daraja")
    assert exc.value.retryable is False


async def test_daraja_unreachable_is_a_retryable_gateway_error(daraja_settings, token_table):
    settings = dataclasses.replace(daraja_settings,
                                   daraja_base_url=f"http://127.0.0.1:{closed_port()}")
    async with DarajaClient(settings) as client:
        with pytest.raises(GatewayError) as exc:
            await push(client)
    err = exc.value
    assert (err.gateway, err.retryable, err.maybe_delivered) == ("daraja", True, False)
    assert "OAuth token" in exc.value.message
