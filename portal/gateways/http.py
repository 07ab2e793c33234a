"""The one outbound HTTP seam: an httpx client factory and the one gateway error type.

Every gateway module builds its client with `make_http_client()` (explicit timeouts, a
User-Agent, JSON by default), sends through `send()` so transport failures become
`GatewayError`s, and turns a bad HTTP answer into one with `error_from_response()`, passing its
own verdict on retryability where the gateway documents one (Daraja's overloaded error codes,
for instance) and letting the status decide otherwise.

`retryable` answers "may the same call succeed later?". `maybe_delivered` answers "could the
gateway have acted on it?": after a read timeout an STK push may have reached the phone, so a
retry may prompt the customer twice; after a refused connection it cannot have.
"""

from __future__ import annotations

from importlib import metadata

import httpx

# Connecting is quick or broken; gateways can be slow to answer (Flutterwave documents 28 s).
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)
BODY_LIMIT = 2000  # characters of a response body kept on an error (for logs and staff)


def _version() -> str:
    try:
        return metadata.version("portal")
    except metadata.PackageNotFoundError:  # running from a checkout that was not installed
        return "0"


USER_AGENT = f"gym-portal/{_version()} httpx/{httpx.__version__}"


def read_timeout(settings) -> httpx.Timeout:
    """DEFAULT_TIMEOUT with the read wait the operator chose (GATEWAY_TIMEOUT_SECONDS)."""
    seconds = getattr(settings, "gateway_timeout_seconds", None)
    return DEFAULT_TIMEOUT if seconds is None else httpx.Timeout(connect=5.0, read=float(seconds), write=10.0, pool=5.0)


def make_http_client(*, timeout: httpx.Timeout | None = None, headers: dict[str, str] | None = None,
                     **kwargs) -> httpx.AsyncClient:
    """A new AsyncClient for talking to gateways. The caller owns it (`await client.aclose()`).

    Extra keyword arguments go to httpx (e.g. `transport=`, `event_hooks=` in tests)."""
    return httpx.AsyncClient(
        timeout=timeout or DEFAULT_TIMEOUT,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
        follow_redirects=False,
        **kwargs,
    )


class GatewayError(Exception):
    """A gateway call failed. `retryable` says whether the same call may succeed later."""

    def __init__(self, message: str, *, gateway: str, retryable: bool, status: int | None = None,
                 code: str | None = None, body: str | None = None,
                 maybe_delivered: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.gateway = gateway
        self.retryable = retryable
        self.status = status
        self.code = code
        self.body = body[:BODY_LIMIT] if body is not None else None
        self.maybe_delivered = maybe_delivered

    def __str__(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(f"code {self.code}")
        parts.append("retryable" if self.retryable else "not retryable")
        return f"{self.gateway}: {self.message} ({', '.join(parts)})"

    def __repr__(self) -> str:
        return (f"GatewayError({self.message!r}, gateway={self.gateway!r}, "
                f"retryable={self.retryable}, status={self.status!r}, code={self.code!r})")


def retryable_status(status: int) -> bool:
    """The default verdict from an HTTP status alone: 5xx, 429 (rate limited) and 408 (request
    timeout) may pass; any other 4xx will fail the same way again."""
    return status >= 500 or status in (408, 429)


# Failures before a single byte of the request can have reached the gateway.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Failures of our own making (a bad URL, a bad scheme, a malformed request): no retry helps.
_OUR_FAULT = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


def error_from_transport(exc: httpx.TransportError, *, gateway: str, action: str = "request"
                         ) -> GatewayError:
    """Map a transport failure: timeouts and connection errors are retryable."""
    kind = type(exc).__name__
    if isinstance(exc, _OUR_FAULT):
        return GatewayError(f"{action} failed: {kind}: {exc}", gateway=gateway, retryable=False,
                            maybe_delivered=False)
    sent = not isinstance(exc, _NOT_SENT)
    if isinstance(exc, httpx.TimeoutException):
        what = "timed out" + (" waiting for the answer" if sent else " connecting")
    else:
        what = "could not connect" if not sent else "connection failed"
    return GatewayError(f"{action} {what} ({kind}: {exc or 'no detail'})", gateway=gateway,
                        retryable=True, maybe_delivered=sent)


def error_from_response(response: httpx.Response, *, gateway: str, action: str = "request",
                        code: str | None = None, message: str | None = None,
                        retryable: bool | None = None) -> GatewayError:
    """Map an unwanted HTTP answer. A gateway module passes the `code`/`message` it parsed from
    the body and, where the gateway documents it, its own `retryable` verdict; otherwise the
    status decides (`retryable_status`)."""
    if retryable is None:
        retryable = retryable_status(response.status_code)
    detail = message or response.reason_phrase or "error"
    return GatewayError(
        f"{action} refused: {detail}", gateway=gateway, retryable=retryable,
        status=response.status_code, code=code, body=_text(response), maybe_delivered=True,
    )


async def send(client: httpx.AsyncClient, method: str, url: str, *, gateway: str,
               action: str = "request", **kwargs) -> httpx.Response:
    """`client.request(...)`, with transport failures raised as GatewayError. HTTP error statuses
    are returned, not raised: each gateway reads its own error bodies."""
    try:
        return await client.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise error_from_transport(exc, gateway=gateway, action=action) from exc


def _text(response: httpx.Response) -> str | None:
    try:
        return response.text[:BODY_LIMIT]
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return None
