"""The README's Python receiver (API → Webhooks → Verifying), run as a customer would paste it,
on a real delivery: a signed event is handled once, a repeat of its webhook-id is answered 200
without handling it again, and a tampered body or a wrong secret is 401. So the README cannot
drift from what the portal sends or from the `standardwebhooks` library's API."""

from __future__ import annotations

import re
from pathlib import Path

from portal import webhooks
from tests.billing.helpers import pay
from tests.factories import make_member
from tests.webhooks.helpers import endpoint_for

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_receiver(secret: str, monkeypatch) -> tuple[dict, list]:
    text = README.read_text()
    section = text[text.index("**Verifying.**"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    handled: list[tuple[str, dict]] = []
    seen: set[str] = set()

    def already_handled(webhook_id: str) -> bool:
        if webhook_id in seen:
            return True
        seen.add(webhook_id)
        return False

    monkeypatch.setenv("GYM_WEBHOOK_SECRET", secret)
    namespace = {"already_handled": already_handled, "handle": lambda kind, data: handled.append((kind, data))}
    exec(compile(code, "README.md (Python receiver)", "exec"), namespace)
    return namespace, handled


async def test_the_readme_python_receiver_verifies_a_real_delivery(db, worker, receiver, monkeypatch):
    await endpoint_for(receiver, ["payment.completed"])
    member = await make_member()
    payment = (await pay(member, 1500)).payment
    (delivery,) = await receiver.until(lambda g: len(g) >= 1)
    readme, handled = _readme_receiver(receiver.secret, monkeypatch)

    assert readme["receive"](delivery.body, delivery.headers) == 200
    assert [(kind, data["id"], data["amount"]) for kind, data in handled] == [("payment.completed", payment["id"], "1500.00")]
    assert readme["receive"](delivery.body, delivery.headers) == 200  # the same webhook-id again: a repeat
    assert len(handled) == 1
    assert readme["receive"](delivery.body.replace(b"1500.00", b"15000.00"), delivery.headers) == 401
    other, _ = _readme_receiver(webhooks.new_secret(), monkeypatch)
    assert other["receive"](delivery.body, delivery.headers) == 401
    assert len(handled) == 1
