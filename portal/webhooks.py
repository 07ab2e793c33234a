"""Outbound webhooks: the outbox written with each change, signed delivery, back-off, disabling.

    emit() -------- in the transaction of the change: one webhook_event, one webhook_delivery per
                    enabled endpoint that wants the type (nothing at all when none does)
    after commit -- the endpoints' delivery jobs are nudged (portal.lib.db.after_commit)
    deliver_endpoint() (the worker) claims due deliveries one at a time, oldest event first, never
        one whose resource has an earlier delivery still undone for that endpoint (order of
        creation per resource), signs the body with the endpoint's secret (Standard Webhooks via
        the `standardwebhooks` package) and POSTs it
    2xx ----------- delivered;  anything else: pending again after a back-off, doubling from a
                    minute up to six hours, for RETRY_FOR (3 days) from the event; then failed
    endpoint ------ failing with no success for DISABLE_AFTER (3 days): disabled, admins alerted
    sweep() ------- every minute: deliveries a dead worker left `sending` go back to pending (they
                    may have reached the receiver: at least once, and `webhook-id` is the same
                    every time so receivers drop repeats), and every endpoint with due work gets
                    its job.

The clock is portal.lib.clock.now() (read through the module, so tests can move it).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import logging
import secrets
import socket
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import urlsplit

import httpcore
import httpx
from standardwebhooks.webhooks import Webhook

from portal import audit
from portal.lib import clock, db, queue
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from portal.settings import get_settings
from tables.gateway import StaffAlert
from tables.webhooks import WebhookDelivery, WebhookEndpoint, WebhookEvent

log = logging.getLogger(__name__)

EVENTS = {
    "payment.completed": "A payment was received in full (desk, M-Pesa, card)",
    "payment.failed": "A payment attempt failed (cancelled prompt, wrong PIN, card declined)",
    "payment.refunded": "A completed payment was refunded or reversed, in part or in full",
    "invoice.created": "An invoice was raised",
    "invoice.paid": "An invoice became fully paid",
    "invoice.voided": "An invoice was voided (with a reason)",
    "member.on_hold": "A member went on access hold (an invoice past the grace period)",
    "member.hold_cleared": "A member's access hold was cleared",
    "membership.activated": "A membership became active (paid, or its start day came)",
    "membership.expired": "A membership ended",
}
TEST_EVENT = "webhook.test"

RETRY_FOR = timedelta(days=3)  # a delivery is retried this long after its event
DISABLE_AFTER = timedelta(days=3)  # an endpoint failing this long with no success is disabled
FIRST_RETRY = 60  # seconds, doubling per attempt
MAX_RETRY = 6 * 3600
# A delivery claimed this long ago and never finished was lost with its worker: send it again.
STUCK_AFTER = timedelta(minutes=2)
BODY_EXCERPT = 500
JOB = "deliver_webhooks"


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: 1, 2, 4, 8 minutes ... capped at 6 hours
    (about 20 attempts in 3 days)."""
    return timedelta(seconds=min(FIRST_RETRY * 2 ** max(attempts - 1, 0), MAX_RETRY))


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and 32 random bytes in base64 (what the libraries take)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def message_id(event_id: int) -> str:
    """The webhook-id: the same for every attempt and resend of one event, so receivers can
    drop repeats."""
    return f"msg_{event_id}"


# --- payloads: the state at the change, money as decimal strings -----------------------------

def _money(value) -> str | None:
    return None if value is None else str(Decimal(value).quantize(Decimal("0.01")))


def _when(value) -> str | None:
    return value.isoformat() if value is not None else None


def payment_data(p: dict) -> dict:
    return {"id": p["id"], "status": p["status"], "method": p["method"], "amount": _money(p["amount"]),
            "refunded": _money(p.get("refunded") or 0), "currency": p["currency"], "member_id": p.get("member"),
            "invoice_id": p.get("invoice"), "receipt_number": p.get("receipt_number"),
            "reference": p.get("reference") or "", "created_at": _when(p.get("created_at")),
            "completed_at": _when(p.get("completed_at"))}


def invoice_data(i: dict) -> dict:
    return {"id": i["id"], "number": i["number"], "status": i["status"], "kind": i["kind"], "member_id": i["member"],
            "membership_id": i.get("membership"), "currency": i["currency"], "total": _money(i["total"]),
            "paid": _money(i["paid"]), "issue_date": _when(i.get("issue_date")), "due_date": _when(i.get("due_date")),
            "void_reason": i.get("void_reason") or ""}


def membership_data(m: dict) -> dict:
    return {"id": m["id"], "member_id": m["member"], "plan_id": m["plan"], "status": m["status"],
            "start_date": _when(m["start_date"]), "end_date": _when(m["end_date"])}


# --- the outbox -----------------------------------------------------------------------------

# The outbox's write, as CTEs of one statement: `hook_event` returns the event's id (no row when no
# enabled endpoint wants its type). EMIT_SQL is them alone; state.transition writes them in the
# statement that makes the change they tell of. Arguments: emit_args.
EMIT_CTES = """
wanted AS (
    SELECT id FROM webhook_endpoint
    WHERE enabled AND {} = ANY(string_to_array(events, ','))
), hook_event AS (
    INSERT INTO webhook_event (type, resource, resource_id, data, created_at)
    SELECT {}, {}, {}, {}::jsonb, {} WHERE EXISTS (SELECT 1 FROM wanted)
    RETURNING id, created_at
), hook_deliveries AS (
    INSERT INTO webhook_delivery (endpoint, event, next_attempt_at, retry_until, created_at)
    SELECT wanted.id, hook_event.id, hook_event.created_at, hook_event.created_at + make_interval(secs => {}),
           hook_event.created_at
    FROM wanted, hook_event
)
"""
EMIT_SQL = f"WITH {EMIT_CTES} SELECT id AS event FROM hook_event"


def emit_args(event_type: str, resource: str, resource_id: int, data: dict) -> tuple:
    if event_type not in EVENTS and event_type != TEST_EVENT:
        raise ValueError(f"unknown webhook event {event_type!r}")
    return (event_type, event_type, resource, resource_id, json.dumps(data), clock.now(), RETRY_FOR.total_seconds())


async def emit(event_type: str, resource: str, resource_id: int, data: dict) -> int | None:
    """Write an event to the outbox for every enabled endpoint that wants it; call it inside the
    transaction of the change, so the event exists exactly when the change does. One query;
    nothing is written when no endpoint wants the type. Returns the event id (None if none)."""
    rows = await WebhookEvent.raw(EMIT_SQL, *emit_args(event_type, resource, resource_id, data))
    if not rows:
        return None
    await db.after_commit(nudge_due)
    return rows[0]["event"]


# --- the worker's side ----------------------------------------------------------------------

CLAIM_SQL = """
UPDATE webhook_delivery d SET status = 'sending', claimed_at = {now}, attempts = d.attempts + 1
WHERE d.id = (
    SELECT d2.id FROM webhook_delivery d2
    JOIN webhook_endpoint w ON w.id = d2.endpoint
    JOIN webhook_event e ON e.id = d2.event
    WHERE d2.endpoint = {endpoint} AND w.enabled AND d2.status = 'pending' AND d2.next_attempt_at <= {now}
      AND NOT EXISTS (
        SELECT 1 FROM webhook_delivery p JOIN webhook_event pe ON pe.id = p.event
        WHERE p.endpoint = d2.endpoint AND p.event < d2.event AND p.status IN ('pending', 'sending')
          AND pe.resource = e.resource AND pe.resource_id = e.resource_id)
    ORDER BY d2.event
    LIMIT 1
    FOR UPDATE OF d2 SKIP LOCKED
) AND d.status = 'pending'
RETURNING d.id, d.event, d.attempts, d.retry_until
"""


async def claim(endpoint_id: int) -> dict | None:
    """The endpoint's next due delivery, taken for sending (committed at once, so a worker that
    dies holding it leaves a `sending` row for the sweeper rather than a lock)."""
    rows = await WebhookDelivery.raw(*named(CLAIM_SQL, now=clock.now(), endpoint=endpoint_id))
    return rows[0] if rows else None


def named(sql: str, **values) -> list:
    """[sql, *args] for `{name}` placeholders: Piccolo binds `{}` by position only, and these
    statements use a value more than once."""
    args, parts, rest = [], [], sql
    while (start := rest.find("{")) >= 0:
        end = rest.index("}", start)
        parts.append(rest[:start] + "{}")
        args.append(values[rest[start + 1:end]])
        rest = rest[end + 1:]
    return ["".join(parts) + rest, *args]


async def private_address(url: str) -> str | None:
    """Why this URL may not be called (a loopback, private or link-local address: the portal
    must not be made to probe its own network), or None. WEBHOOK_PRIVATE_URLS allows them."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "the address must start with https:// (or http://)"
    if get_settings().webhook_private_urls:
        return None
    try:
        await public_address(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except Refused as e:
        return str(e)
    return None


class Refused(Exception):
    """The receiver's name does not lead to a public address."""


async def resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return [info[4][0].split("%")[0] for info in infos]


async def public_address(host: str, port: int) -> str:
    """The address to connect to for `host`: the first it resolves to, if every one is public."""
    try:
        addresses = await resolve(host, port)
    except OSError:
        raise Refused(f"{host} could not be found") from None
    for text in addresses:
        address = ipaddress.ip_address(text)
        if address.is_private or address.is_loopback or address.is_link_local or address.is_reserved \
                or address.is_multicast or address.is_unspecified:
            raise Refused(f"{host} is a private or local address")
    if not addresses:
        raise Refused(f"{host} could not be found")
    return addresses[0]


class _PublicOnly(httpcore.AsyncNetworkBackend):
    """Connects only to the public address it has just checked. The check before sending is not
    enough alone: a receiver's DNS can answer a public address to the check and a private one a
    moment later to the connection (DNS rebinding). Here the name is resolved once, checked, and
    that very address is connected to (TLS still verifies the certificate for the name)."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend):
        self._inner = inner

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            address = await public_address(host, port)
        except Refused as e:
            raise httpcore.ConnectError(f"not sent: {e}") from None
        return await self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                             socket_options=socket_options)

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("webhooks are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def client() -> httpx.AsyncClient:
    """The HTTP client webhooks are sent with: no redirects followed (a redirect could point
    inside), and unless WEBHOOK_PRIVATE_URLS, connections only to public addresses."""
    transport = httpx.AsyncHTTPTransport()
    if not get_settings().webhook_private_urls:
        # httpx takes no network backend of its own: its connection pool is given ours.
        pool = transport._pool
        pool._network_backend = _PublicOnly(pool._network_backend)
    return httpx.AsyncClient(transport=transport, timeout=get_settings().webhook_timeout_seconds,
                             follow_redirects=False)


def sign(secret: str, msg_id: str, body: str, at: datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers for `body` (the timestamp is real time: receivers refuse
    one more than five minutes off their clock)."""
    at = at or datetime.now(timezone.utc)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, body)}


def body_of(event: dict) -> str:
    data = event["data"]
    if isinstance(data, str):
        data = json.loads(data)
    return json.dumps({"type": event["type"], "timestamp": _when(event["created_at"]), "data": data},
                      separators=(",", ":"))


async def attempt(endpoint: dict, delivery: dict, http: httpx.AsyncClient) -> bool:
    """POST one claimed delivery and record how it went. True when the receiver took it (2xx)."""
    event = await WebhookEvent.select().where(WebhookEvent.id == delivery["event"]).first()
    body = body_of(event)
    headers = {"content-type": "application/json", "user-agent": "portal-webhooks/1",
               **sign(endpoint["secret"], message_id(event["id"]), body)}
    started = time.monotonic()
    status, excerpt, error = None, "", ""
    refused = await private_address(endpoint["url"])
    if refused:
        error = f"not sent: {refused}"
    else:
        try:
            response = await http.post(endpoint["url"], content=body.encode(), headers=headers)
            status, excerpt = response.status_code, response.text[:BODY_EXCERPT]
            if not 200 <= status < 300:
                error = f"answered {status}"
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}"[:500] or type(e).__name__
    ms = int((time.monotonic() - started) * 1000)
    await record(endpoint, delivery, status=status, ms=ms, excerpt=excerpt, error=error)
    return not error


async def record(endpoint: dict, delivery: dict, *, status: int | None, ms: int, excerpt: str, error: str) -> None:
    now = clock.now()
    common = {WebhookDelivery.last_attempt_at: now, WebhookDelivery.last_status: status, WebhookDelivery.last_ms: ms,
              WebhookDelivery.last_body: excerpt, WebhookDelivery.last_error: error, WebhookDelivery.claimed_at: None}
    async with db.transaction():
        if not error:
            await WebhookDelivery.update({**common, WebhookDelivery.status: "delivered",
                                          WebhookDelivery.delivered_at: now}).where(WebhookDelivery.id == delivery["id"])
            await WebhookEndpoint.update({WebhookEndpoint.failing_since: None}).where(WebhookEndpoint.id == endpoint["id"])
            return
        gave_up = now >= delivery["retry_until"]
        await WebhookDelivery.update({**common, WebhookDelivery.status: "failed" if gave_up else "pending",
                                      WebhookDelivery.next_attempt_at: now + retry_delay(delivery["attempts"])}).where(
            WebhookDelivery.id == delivery["id"])
        rows = await WebhookEndpoint.raw(
            "UPDATE webhook_endpoint SET failing_since = coalesce(failing_since, {}) WHERE id = {} "
            "RETURNING failing_since, enabled", now, endpoint["id"])
        if rows and rows[0]["enabled"] and rows[0]["failing_since"] <= now - DISABLE_AFTER:
            await disable(endpoint["id"], f"Every delivery failed for {DISABLE_AFTER.days} days (last: {error})")


async def disable(endpoint_id: int, reason: str) -> bool:
    """Stop delivering to an endpoint that has failed for days, and tell the admins (once)."""
    changed = await WebhookEndpoint.update({WebhookEndpoint.enabled: False, WebhookEndpoint.disabled_at: clock.now(),
                                            WebhookEndpoint.disabled_reason: reason[:1000]}).where(
        (WebhookEndpoint.id == endpoint_id) & (WebhookEndpoint.enabled == True)).returning(  # noqa: E712
        WebhookEndpoint.url)
    if not changed:
        return False
    await StaffAlert.insert(StaffAlert(
        kind="webhook_disabled", created_at=clock.now(),
        message=f"Webhook endpoint {changed[0]['url']} was switched off: {reason}. Undelivered events wait for it; "
                "fix the receiver and switch it on again under Settings, Webhooks."[:2000]))
    await audit.record("webhook.disabled", "webhook_endpoint", endpoint_id, reason=reason[:300])
    return True


async def deliver_endpoint(endpoint_id: int, limit: int = 200) -> dict:
    """The worker's job: send the endpoint's due deliveries in order, until none is due, one
    fails (the receiver is likely down: the rest wait for their own retry times) or `limit`."""
    endpoint = await WebhookEndpoint.select().where(WebhookEndpoint.id == endpoint_id).first()
    done = {"delivered": 0, "failed": 0}
    if not endpoint or not endpoint["enabled"]:
        return done
    async with client() as http:
        for _ in range(limit):
            delivery = await claim(endpoint_id)
            if delivery is None:
                break
            if await attempt(endpoint, delivery, http):
                done["delivered"] += 1
            else:
                done["failed"] += 1
                break
    return done


def job_key(endpoint_id: int) -> str:
    """One job per endpoint per ten seconds: nudges in a burst of payments share a job, and a
    job lost with a dead worker (SAQ keeps its key while it looks active) holds nobody up for
    longer than that. Two jobs of one endpoint may overlap: claim() keeps them in order."""
    return f"webhooks:endpoint:{endpoint_id}:{int(time.time() // 10)}"


async def nudge(endpoint_ids) -> None:
    for endpoint_id in endpoint_ids:
        try:
            await queue.enqueue(JOB, key=job_key(endpoint_id), timeout=600, retries=1, endpoint_id=endpoint_id)
        except RuntimeError:
            log.info("no queue: webhook endpoint %s left to the sweeper", endpoint_id)
            return


DUE_SQL = """
SELECT DISTINCT d.endpoint FROM webhook_delivery d JOIN webhook_endpoint w ON w.id = d.endpoint
WHERE w.enabled AND d.status = 'pending' AND d.next_attempt_at <= {}
"""


async def nudge_due() -> list[int]:
    """Give every endpoint with a due delivery its job (a no-op where one is queued already)."""
    rows = await WebhookDelivery.raw(DUE_SQL, clock.now())
    ids = [r["endpoint"] for r in rows]
    await nudge(ids)
    return ids


async def sweep() -> dict:
    now = clock.now()
    stuck = await WebhookDelivery.raw(
        "UPDATE webhook_delivery SET status = 'pending', next_attempt_at = {}, claimed_at = NULL, "
        "last_error = 'the worker stopped while sending it: sent again' "
        "WHERE status = 'sending' AND claimed_at < {} RETURNING id", now, now - STUCK_AFTER)
    return {"stuck": len(stuck), "endpoints": len(await nudge_due())}


# --- admins ---------------------------------------------------------------------------------

def parse_events(chosen: list[str]) -> list[str]:
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown:
        raise RuleBroken(f"Unknown event: {', '.join(unknown)}")
    if not chosen:
        raise RuleBroken(S_("Choose at least one event"))
    return [e for e in EVENTS if e in chosen]


async def create_endpoint(url: str, events: list[str], description: str, staff_id: int | None) -> tuple[int, str]:
    """Register an endpoint; returns (id, secret). The secret is shown to the admin once."""
    url = url.strip()
    if len(url) > 500:
        raise RuleBroken(S_("The address is too long (500 characters at most)"))
    if problem := await private_address(url):
        raise RuleBroken(f"That address cannot be used: {problem}")
    events = parse_events(events)
    secret = new_secret()
    row = await WebhookEndpoint.insert(WebhookEndpoint(
        url=url, events=",".join(events), description=description.strip()[:200], secret=secret, created_by=staff_id,
        created_at=clock.now())).returning(WebhookEndpoint.id)
    await audit.record("webhook.created", "webhook_endpoint", row[0]["id"], staff_id=staff_id,
                       details={"url": url, "events": events})
    return row[0]["id"], secret


async def set_enabled(endpoint_id: int, enabled: bool, staff_id: int | None) -> None:
    values = {WebhookEndpoint.enabled: enabled}
    if enabled:
        values.update({WebhookEndpoint.failing_since: None, WebhookEndpoint.disabled_at: None,
                       WebhookEndpoint.disabled_reason: ""})
    else:
        values.update({WebhookEndpoint.disabled_at: clock.now(), WebhookEndpoint.disabled_reason: "Switched off by an admin"})
    changed = await WebhookEndpoint.update(values).where(WebhookEndpoint.id == endpoint_id).returning(WebhookEndpoint.id)
    if not changed:
        raise NotFound("webhook endpoint")
    await audit.record("webhook.enabled" if enabled else "webhook.switched_off", "webhook_endpoint", endpoint_id,
                       staff_id=staff_id)
    if enabled:
        # Deliveries that waited out their back-off while it was off go now, not hours from now.
        await WebhookDelivery.update({WebhookDelivery.next_attempt_at: clock.now()}).where(
            (WebhookDelivery.endpoint == endpoint_id) & (WebhookDelivery.status == "pending"))
        await nudge([endpoint_id])


async def send_test(endpoint_id: int, staff_id: int | None) -> int:
    """A `webhook.test` event to this endpoint only (enabled or not: it is how admins check a
    receiver before switching it on)."""
    endpoint = await WebhookEndpoint.select(WebhookEndpoint.id, WebhookEndpoint.enabled).where(
        WebhookEndpoint.id == endpoint_id).first()
    if not endpoint:
        raise NotFound("webhook endpoint")
    now = clock.now()
    async with db.transaction():
        event = await WebhookEvent.insert(WebhookEvent(
            type=TEST_EVENT, resource="test", resource_id=endpoint_id, created_at=now,
            data={"endpoint_id": endpoint_id, "message": "A test event from the gym's portal"})).returning(WebhookEvent.id)
        event_id = event[0]["id"]
        await WebhookDelivery.insert(WebhookDelivery(endpoint=endpoint_id, event=event_id, next_attempt_at=now,
                                                     retry_until=now + RETRY_FOR, created_at=now))
        await audit.record("webhook.test_sent", "webhook_endpoint", endpoint_id, staff_id=staff_id)
    if endpoint["enabled"]:
        await nudge([endpoint_id])
    else:
        await deliver_one_now(endpoint_id, event_id)
    return event_id


async def deliver_one_now(endpoint_id: int, event_id: int) -> None:
    """A switched-off endpoint's test is sent from here (its job would not send anything)."""
    endpoint = await WebhookEndpoint.select().where(WebhookEndpoint.id == endpoint_id).first()
    rows = await WebhookDelivery.raw(
        "UPDATE webhook_delivery SET status = 'sending', claimed_at = {}, attempts = attempts + 1 "
        "WHERE endpoint = {} AND event = {} AND status = 'pending' RETURNING id, event, attempts, retry_until",
        clock.now(), endpoint_id, event_id)
    if rows:
        async with client() as http:
            await attempt(endpoint, rows[0], http)


async def resend(delivery_id: int, staff_id: int | None) -> None:
    """Send a delivery again (delivered or failed alike), with the same webhook-id, now."""
    now = clock.now()
    changed = await WebhookDelivery.update({
        WebhookDelivery.status: "pending", WebhookDelivery.next_attempt_at: now, WebhookDelivery.attempts: 0,
        WebhookDelivery.retry_until: now + RETRY_FOR}).where(
        (WebhookDelivery.id == delivery_id) & (WebhookDelivery.status != "sending")).returning(WebhookDelivery.endpoint)
    if not changed:
        if not await WebhookDelivery.exists().where(WebhookDelivery.id == delivery_id):
            raise NotFound("webhook delivery")
        raise RuleBroken(S_("This delivery is being sent right now"))
    await audit.record("webhook.resent", "webhook_delivery", delivery_id, staff_id=staff_id)
    await nudge([changed[0]["endpoint"]])


async def list_endpoints() -> list[dict]:
    return await WebhookEndpoint.raw(
        "SELECT w.id, w.url, w.description, w.events, w.enabled, w.failing_since, w.disabled_at, w.disabled_reason, "
        "w.created_at, count(d.id) FILTER (WHERE d.status = 'pending') AS waiting, "
        "count(d.id) FILTER (WHERE d.status = 'failed') AS failed "
        "FROM webhook_endpoint w LEFT JOIN webhook_delivery d ON d.endpoint = w.id "
        "GROUP BY w.id ORDER BY w.id")


async def delivery_log(endpoint_id: int, limit: int = 100) -> list[dict]:
    return await WebhookDelivery.raw(
        "SELECT d.id, d.status, d.attempts, d.next_attempt_at, d.delivered_at, d.last_attempt_at, d.last_status, "
        "d.last_ms, d.last_body, d.last_error, e.id AS event_id, e.type, e.resource, e.resource_id, e.created_at "
        "FROM webhook_delivery d JOIN webhook_event e ON e.id = d.event WHERE d.endpoint = {} "
        "ORDER BY d.id DESC LIMIT {}", endpoint_id, limit)
