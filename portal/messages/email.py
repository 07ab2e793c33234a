"""Email: named template triplets and one send function (STYLE.md §15, DESIGN.md §7).

`make_message(name, to, ctx)` renders `templates/emails/<name>-subject.txt`, `<name>-body.txt`
and `<name>-body.html` into one multipart message (text and HTML alternatives, PDFs attached).
`send(message, smtp_url)` hands it to the SMTP server named by SMTP_URL
(`smtp://user:pass@host:587`, STARTTLS when the server offers it; `smtps://…:465`, TLS from the
first byte). With no SMTP_URL the portal keeps mail in its dev mailbox instead: that decision is
the caller's (portal/messages/delivery.py), this module only speaks SMTP.

What a refusal means is decided here, once: a 5xx answer will be given again (permanent; a
refused recipient is a bounce), anything else (4xx, a dropped connection, a timeout) may pass
later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from functools import lru_cache
from urllib.parse import unquote, urlsplit

import aiosmtplib
import jinja2

from portal.lib import formatting, i18n
from portal.settings import ROOT, get_settings

SMTP_TIMEOUT = 30  # seconds per SMTP step; well inside the send job's timeout


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime: str = "application/pdf"


class EmailError(Exception):
    """The SMTP server did not take the message. `permanent`: the same message will be refused
    again; `bounced`: because of the recipient's address."""

    def __init__(self, message: str, *, permanent: bool, bounced: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.bounced = bounced


# --- rendering ------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """Templates for messages (emails and SMS). HTML is escaped, text is not; a missing value
    fails the render instead of sending a blank."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROOT / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    # Read at each use, not once: this environment is cached for the whole process.
    formatting.register(env, currency=lambda: get_settings().currency, tz=lambda ctx: get_settings().tz)
    i18n.install(env)  # in the context's `lang`
    return env


def render(name: str, ctx: dict) -> Rendered:
    env = environment()
    full = {"gym_name": get_settings().gym_name, "lang": i18n.of_context(ctx), **ctx}
    subject = env.get_template(f"emails/{name}-subject.txt").render(full)
    return Rendered(
        # A header is one line: a template's line breaks must not reach it.
        subject=re.sub(r"\s+", " ", subject).strip(),
        text=env.get_template(f"emails/{name}-body.txt").render(full).strip() + "\n",
        html=env.get_template(f"emails/{name}-body.html").render(full),
    )


def build(to: str, rendered: Rendered, attachments: list[Attachment] = (), *, sender: str | None = None) -> EmailMessage:
    """One message: multipart/alternative (text, then HTML), inside multipart/mixed when PDFs
    are attached."""
    sender = sender or get_settings().mail_from
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = rendered.subject
    msg["Date"] = formatdate(localtime=False)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "portal.local"
    msg["Message-ID"] = make_msgid(domain=domain)
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    for item in attachments:
        maintype, _, subtype = item.mime.partition("/")
        msg.add_attachment(item.content, maintype=maintype, subtype=subtype, filename=item.filename)
    return msg


def make_message(name: str, to: str, ctx: dict, attachments: list[Attachment] = ()) -> EmailMessage:
    return build(to, render(name, ctx), attachments)


# --- sending --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SmtpServer:
    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        tls = parts.scheme == "smtps"
        return cls(
            hostname=parts.hostname or "",
            port=parts.port or (465 if tls else 587),
            # Passwords often hold @ or /: they arrive percent-encoded in the URL.
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=tls,
        )


async def send(message: EmailMessage, smtp_url: str) -> str:
    """Deliver to the SMTP server; returns its answer (e.g. `250 OK: queued as …`).
    Raises EmailError saying whether trying again may help."""
    server = SmtpServer.from_url(smtp_url)
    try:
        _, answer = await aiosmtplib.send(
            message, hostname=server.hostname, port=server.port, username=server.username,
            password=server.password, use_tls=server.use_tls,
            # smtp://: STARTTLS when offered (None); the server decides, as most submission
            # servers on 587 require it.
            start_tls=False if server.use_tls else None, timeout=SMTP_TIMEOUT,
        )
        return answer
    except aiosmtplib.SMTPRecipientsRefused as e:
        codes = [r.code for r in e.recipients]
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in e.recipients)
        permanent = all(500 <= c < 600 for c in codes)
        raise EmailError(f"recipient refused: {detail}", permanent=permanent, bounced=permanent) from None
    except aiosmtplib.SMTPResponseException as e:  # sender refused, data refused, auth failed, ...
        what = type(e).__name__.removeprefix("SMTP")
        raise EmailError(f"{what}: {e.code} {e.message}", permanent=500 <= e.code < 600) from None
    except aiosmtplib.SMTPNotSupported as e:  # e.g. AUTH on a server that offers none
        raise EmailError(f"not supported by the server: {e}", permanent=True) from None
    except (aiosmtplib.SMTPException, OSError) as e:  # connect/timeout/disconnect: worth another go
        raise EmailError(f"{type(e).__name__}: {e}", permanent=False) from None
