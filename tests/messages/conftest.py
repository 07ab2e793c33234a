"""Messages run on real parts: a real SMTP server (aiosmtpd) on a loopback port, the Africa's
Talking sandbox over HTTP, the portal served over HTTP for delivery reports, a real SAQ worker."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import threading
import warnings
from dataclasses import dataclass, field

import httpx
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from portal.settings import get_settings
from tables.messages import Message
from tests.support.live import live  # noqa: F401  (the portal over HTTP, settings on the sandbox)
from tests.support.servers import free_port

SMTP_USER, SMTP_PASSWORD = "receipts@gym.example", "p@ss/word"


@dataclass
class Mailbox:
    """What the SMTP server received, and how it should answer the next recipients."""

    messages: list = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> SMTP answer, e.g. "550 no such user"
    logins: list = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._cond:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                  email.message_from_bytes(envelope.original_content, policy=email.policy.default)))
            self._cond.notify_all()
        return "250 OK: queued as 1234"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
            ok = (auth_data.login.decode(), auth_data.password.decode()) == (SMTP_USER, SMTP_PASSWORD)
            return AuthResult(success=ok)
        return AuthResult(success=False)

    async def wait_for(self, count: int, timeout: float = 30) -> list:
        for _ in range(int(timeout / 0.05)):
            if len(self.messages) >= count:
                return list(self.messages)
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {count} emails, got {len(self.messages)}")


def use_settings(**env: str) -> None:
    os.environ.update(env)
    get_settings.cache_clear()


@pytest.fixture
def smtp_server():
    """A real SMTP server that wants a login (the password needs URL-encoding: @ and /), with
    SMTP_URL pointing at it for the test."""
    # aiosmtpd warns that AUTH without TLS is unsafe: on loopback in a test, it is what we want.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, authenticator=mailbox.authenticate,
                            auth_require_tls=False, auth_required=True)
    controller.start()
    saved = os.environ.get("SMTP_URL")
    use_settings(SMTP_URL=f"smtp://receipts%40gym.example:p%40ss%2Fword@127.0.0.1:{port}")
    try:
        yield mailbox
    finally:
        controller.stop()
        if saved is None:
            os.environ.pop("SMTP_URL", None)
        else:
            os.environ["SMTP_URL"] = saved
        get_settings.cache_clear()


@pytest_asyncio.fixture
async def at_live(live):  # noqa: F811
    """`live`, with the Africa's Talking sandbox reset and posting its delivery reports to the
    served portal's hook."""
    async with httpx.AsyncClient() as http:
        await http.post(f"{live.sandbox}/_sandbox/at/reset")
        r = await http.post(f"{live.sandbox}/_sandbox/at/settings", json={
            "delivery_report_url": f"{live.portal}/hooks/sms/delivery/{live.settings.at_callback_token}"})
        assert r.status_code < 300, r.text
    return live


async def wait_for_message(message_id: int, statuses: set[str], timeout: float = 30) -> dict:
    row = None
    for _ in range(int(timeout / 0.05)):
        row = await Message.select().where(Message.id == message_id).first()
        if row and row["status"] in statuses:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"message {message_id} stayed {row and row['status']}, wanted {statuses}")


async def messages_of(**where) -> list[dict]:
    query = Message.select().order_by(Message.id)
    for name, value in where.items():
        query = query.where(getattr(Message, name) == value)
    return await query


def sandbox_sms(sandbox: str, phone: str | None = None) -> list[dict]:
    params = {"phone": phone} if phone else None
    return httpx.get(f"{sandbox}/_sandbox/at/messages", params=params).json()["messages"]
