"""Pay links: what a member opens on their phone to pay an invoice.

A link is `/pay/<id>.<secret>.<signature>`. The secret is an HMAC with SECRET_KEY of a random
nonce kept on the row (so the portal can print the link again, on the invoice PDF, but the
database alone cannot), and only its SHA-256 is compared; the signature is an HMAC of id and
secret, so a tampered link is refused before any lookup. Links expire (PAY_LINK_DAYS), staff can revoke them, and sending a new one revokes the
old. An unusable link never says which member or invoice it was for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from portal import audit
from portal.lib import db
from portal.lib.clock import now
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from portal.settings import get_settings
from tables.billing import Invoice, PayLink
from tables.statuses import OPEN_INVOICE


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _signature(link_id: int, secret: str) -> str:
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"paylink:{link_id}:{secret}".encode(), hashlib.sha256).hexdigest()[:20]


def _secret(nonce: str) -> str:
    key = get_settings().secret_key.encode()
    digest = hmac.new(key, f"paylink-secret:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:32]


def token_for(link: dict) -> str | None:
    """The URL token of a stored link (None for a link made before nonces were kept)."""
    if not link.get("nonce"):
        return None
    secret = _secret(link["nonce"])
    return f"{link['id']}.{secret}.{_signature(link['id'], secret)}"


def url_for(token: str) -> str:
    return f"{get_settings().public_base_url}/pay/{token}"


async def create_link(invoice_id: int, staff_id: int | None) -> str:
    """A fresh link for an open invoice (older live links for it are revoked). Returns the token."""
    settings = get_settings()
    async with db.transaction():
        invoice = await Invoice.select(Invoice.status).where(Invoice.id == invoice_id).lock_rows().first()
        if not invoice:
            raise NotFound("invoice")
        if invoice["status"] not in OPEN_INVOICE:
            raise RuleBroken(S_("Only an open invoice can have a pay link"))
        await PayLink.update({PayLink.revoked_at: now()}).where(
            (PayLink.invoice == invoice_id) & PayLink.revoked_at.is_null())
        nonce = secrets.token_urlsafe(24)
        link = (await PayLink.insert(PayLink(
            invoice=invoice_id, nonce=nonce, token_hash=_hash(_secret(nonce)),
            expires_at=now() + timedelta(days=settings.pay_link_days), created_by=staff_id)
        ).returning(PayLink.id, PayLink.nonce))[0]
        await audit.record("paylink.created", "invoice", invoice_id, staff_id=staff_id, details={"link": link["id"]})
    return token_for(link)


async def current_token(invoice_id: int) -> str | None:
    """The token of the invoice's live link (the invoice PDF prints it as a QR code). An open
    invoice whose last link expired, or that never had one, gets one now; one whose link staff
    revoked does not (they make a new one when they want one). None when there is no link."""
    latest = await PayLink.select().where(PayLink.invoice == invoice_id).order_by(PayLink.id, ascending=False).first()
    if latest and latest["revoked_at"] is None and latest["expires_at"] > now() and token_for(latest):
        return token_for(latest)
    if latest and latest["revoked_at"] is not None:
        return None
    try:
        return await create_link(invoice_id, None)
    except (RuleBroken, NotFound):
        return None


async def revoke_links(invoice_id: int, staff_id: int) -> int:
    rows = await PayLink.update({PayLink.revoked_at: now()}).where(
        (PayLink.invoice == invoice_id) & PayLink.revoked_at.is_null()).returning(PayLink.id)
    if rows:
        await audit.record("paylink.revoked", "invoice", invoice_id, staff_id=staff_id, details={"links": [r["id"] for r in rows]})
    return len(rows)


async def live_link(invoice_id: int) -> dict | None:
    return await PayLink.select().where(
        (PayLink.invoice == invoice_id) & PayLink.revoked_at.is_null() & (PayLink.expires_at > now())).first()


@dataclass(frozen=True)
class Resolved:
    link: dict | None
    problem: str = ""  # "" | tampered | unknown | revoked | expired | settled


async def resolve(token: str) -> Resolved:
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[1]) > 64:
        return Resolved(None, "tampered")
    link_id, secret, signature = int(parts[0]), parts[1], parts[2]
    if not hmac.compare_digest(signature, _signature(link_id, secret)):
        return Resolved(None, "tampered")
    link = await PayLink.select().where(PayLink.id == link_id).first()
    if not link or not hmac.compare_digest(link["token_hash"], _hash(secret)):
        return Resolved(None, "unknown")
    if link["revoked_at"] is not None:
        return Resolved(None, "revoked")
    if link["expires_at"] <= now():
        return Resolved(None, "expired")
    return Resolved(link)
