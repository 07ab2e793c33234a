"""The owner's daily digest, on real parts: a small gym where every figure is worked out by hand,
the digest job run (twice at once, then again), the worker sending through a real SMTP server
(aiosmtpd), and the email read back as a mail client would.

The payments happen today, so the digest under test is the one sent tomorrow morning (about
"yesterday", which is today): `send_daily_digest(on=tomorrow)`.
"""

import asyncio
import json
import re
from datetime import timedelta
from decimal import Decimal

from piccolo.apps.user.tables import BaseUser

from portal.auth import create_staff
from portal.billing.invoices import void_invoice
from portal.callbacks.dispatch import process
from portal.callbacks.store import store
from portal.lib.clock import now, today
from portal.lib.db import count_queries, transaction
from portal.lib.money import Money
from portal.payments import state
from portal.payments.mpesa import stk as mpesa
from portal.payments.service import refund_payment
from portal.reports import digest
from tables.billing import Invoice, Payment
from tables.staff import Staff
from tasks.digest import send_daily_digest
from tests.billing.helpers import desk_staff, invoice_for, pay
from tests.factories import make_member
from tests.messages.conftest import messages_of, wait_for_message


async def _due(member: int, amount, due_in: int) -> dict:
    inv = await invoice_for(member, amount)
    await Invoice.update({Invoice.due_date: today() + timedelta(days=due_in)}).where(Invoice.id == inv["id"])
    return inv


async def _paybill(trans_id: str, amount: str, account: str) -> str:
    """A C2B confirmation through the real store-then-process path; returns its outcome."""
    body = {"TransactionType": "Pay Bill", "TransID": trans_id, "TransTime": "20261126101500", "TransAmount": amount,
            "BusinessShortCode": "174379", "BillRefNumber": account, "InvoiceNumber": None, "OrgAccountBalance": "",
            "ThirdPartyTransID": None, "MSISDN": "2547 ***** 149", "FirstName": "JOHN", "MiddleName": "", "LastName": ""}
    stored = await store("daraja", "c2b_confirmation", json.dumps(body).encode(), external_id=trans_id)
    return await process(stored.id)


async def _prompt(member: int, amount: int, key: str) -> int:
    """An M-Pesa prompt that was sent and is waiting (no worker job: it only ends as the test says)."""
    rows = await Payment.insert(Payment(member=member, method="mpesa", amount=Decimal(amount), status="pending",
                                        idempotency_key=key, created_at=now(), phone="254712345678")).returning(Payment.id)
    return rows[0]["id"]


async def _worked_example() -> dict:
    """Today's money, and where things stand tomorrow morning (the numbers in the comments)."""
    desk = await desk_staff()
    a, b, c, d, e = [await make_member(n, "Worked", phone=f"25471100010{i}", number=f"PTF000{i + 1}")
                     for i, n in enumerate(["Amani", "Baraka", "Chiku", "Dalia", "Esther"])]
    inv_a = await _due(a, 3000, -1)
    await _due(b, 2000, 1)                         # paid by Paybill today
    inv_c = await _due(c, 4000, 3)                 # 1,000 cash today, 500 of it refunded: 3,500 due this week
    await _due(d, 1000, 8)                         # due tomorrow + 7: the last day of the week, 1,000
    await _due(d, 800, 9)                          # a day later: not this week
    await _due(d, 600, -5)                         # overdue 6 days tomorrow: inside the grace period
    await _due(e, 2500, -20)                       # overdue 21 days tomorrow: Esther is on hold
    voided = await _due(d, 700, 2)                 # void: owed by nobody
    await void_invoice(voided["id"], "Raised twice", desk)

    # Collections today. Cash: 3,000 + 1,000 in, 500 refunded.
    await pay(a, 3000, staff_id=desk, invoice_id=inv_a["id"])
    cash_c = (await pay(c, 1000, staff_id=desk, invoice_id=inv_c["id"])).payment["id"]
    await refund_payment(cash_c, Money(Decimal("500")), "Overcharged", desk)
    # Bank: 1,500 received yesterday (not in this digest), 200 of it refunded today (in it).
    bank = (await pay(a, 1500, method="bank", staff_id=desk, reference="EFT 991")).payment["id"]
    await Payment.update({Payment.completed_at: now() - timedelta(days=1)}).where(Payment.id == bank)
    await refund_payment(bank, Money(Decimal("200")), "Paid twice", desk)
    # M-Pesa: 2,000 by Paybill to Baraka's member number; two payments nobody could match.
    assert await _paybill("TKA1PAID01", "2000.00", "PTF0002") == "applied"
    assert await _paybill("TKA1LOST01", "700.00", "GYM FEES") == "unmatched"
    assert await _paybill("TKA1LOST02", "300.00", "") == "unmatched"

    # Failed and expired today: 2,000 (wrong PIN) and 1,500 (no answer). Not counted: one the
    # member cancelled, and one still waiting.
    failed = await _prompt(b, 2000, "p-failed")
    await mpesa._fail(failed, "Wrong PIN")
    expired = await _prompt(e, 1500, "p-expired")
    await mpesa._expire(expired, "No answer from the phone in time")
    cancelled = await _prompt(b, 400, "p-cancelled")
    async with transaction():
        await state.transition(cancelled, state.CANCELLED, reason="Request cancelled by user")
    await _prompt(b, 300, "p-waiting")
    return {"a": a, "e": e, "failed": failed, "expired": expired}


async def _staff(username: str, role: str, email: str | None, digest_on: bool, active: bool = True) -> int:
    staff_id = await create_staff(username, f"{username}-password-1", role, first_name=username.title(),
                                  last_name="Owner" if role == "admin" else "", email=email, daily_digest=digest_on)
    if not active:
        await BaseUser.update({BaseUser.active: False}).where(BaseUser.username == username)
    return staff_id


def _text(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")  # SMTP's line ends


def _html(msg) -> str:
    return msg.get_body(preferencelist=("html",)).get_content()


async def test_the_digest_of_a_worked_example_reaches_each_opted_in_manager_once(worker, smtp_server):
    made = await _worked_example()
    owner = await _staff("paul", "admin", "paul@gym.example", True)
    manager = await _staff("grace", "manager", "grace@gym.example", True)
    await _staff("quiet", "manager", "quiet@gym.example", False)     # not opted in
    await _staff("nomail", "manager", None, True)                     # opted in, no address
    await _staff("desk", "front_desk", "desk@gym.example", True)      # not a manager (flag set by hand)
    await _staff("gone", "admin", "gone@gym.example", True, active=False)  # cannot log in any more
    tomorrow = today() + timedelta(days=1)

    # The cron fires on two workers at once, then someone runs it again by hand.
    first, second = await asyncio.gather(send_daily_digest({}, on=tomorrow.isoformat()),
                                         send_daily_digest({}, on=tomorrow.isoformat()))
    assert first["recipients"] == second["recipients"] == 2
    assert first["queued"] + second["queued"] == 2
    assert await send_daily_digest({}, on=tomorrow.isoformat()) == {"recipients": 2, "queued": 0}

    mails = await smtp_server.wait_for(2)
    await asyncio.sleep(1)  # anything extra would have arrived by now
    assert len(smtp_server.messages) == 2
    assert sorted(rcpt for _, (rcpt,), _ in mails) == ["grace@gym.example", "paul@gym.example"]
    rows = await messages_of(kind="digest")
    assert sorted(r["dedupe_key"] for r in rows) == sorted(
        [f"digest:{owner}:{tomorrow.isoformat()}", f"digest:{manager}:{tomorrow.isoformat()}"])
    assert all(r["member"] is None and r["channel"] == "email" for r in rows)
    for r in rows:
        await wait_for_message(r["id"], {"sent"})

    (msg,) = [m for _, (rcpt,), m in mails if rcpt == "paul@gym.example"]
    day = today()
    assert msg["Subject"] == (f"Daily digest for {day:%a %d %b}: KES 5,300 collected, 2 failed payments, "
                              "2 unmatched")
    text = _text(msg)
    assert "Good morning Paul Owner," in text
    assert f"did yesterday, {day:%A} {day:%d %b %Y}." in text
    # Collections: cash 4,000 in less 500; bank only a 200 refund; M-Pesa 2,000. 6,000 - 700 = 5,300.
    assert "Cash: KES 3,500 (2 payments totalling KES 4,000, less 1 refund of KES 500)" in text
    assert "Bank transfer: -KES 200 (no payments, 1 refund of KES 200)" in text
    assert "M-Pesa: KES 2,000 (1 payment)" in text
    assert "Total: KES 5,300 net (3 payments, KES 6,000 received, KES 700 refunded)" in text
    assert text.index("Cash:") < text.index("Bank transfer:") < text.index("M-Pesa:")
    # Due: 3,500 + 1,000 by tomorrow + 7; overdue 600 + 2,500; Esther on hold.
    week_end = tomorrow + timedelta(days=7)
    assert f"DUE THIS WEEK (to {week_end:%d %b %Y})\n2 open invoices, KES 4,500 still owed" in text
    assert "Overdue: 2 invoices, KES 3,100" in text
    assert "On hold (over 14 days overdue): 1 member\n" in text
    assert "FAILED AND EXPIRED PAYMENTS: 2 (KES 3,500)" in text
    failures = re.findall(r"^- \d\d:\d\d (.*)$", text, re.M)
    assert failures == ["Esther Worked (PTF0005): KES 1,500 by M-Pesa, expired",
                        "Baraka Worked (PTF0002): KES 2,000 by M-Pesa, failed"]
    assert "UNMATCHED M-PESA PAYMENTS: 2 (KES 1,000)" in text and "/mpesa/unmatched" in text
    # No gateway book for the day (no statement imported), nothing marked: not reconciled, nothing open.
    assert "Yesterday reconciled: no (0 differences, KES 0)" in text

    html = _html(msg)
    assert "max-width:600px" in html and "Good morning Paul Owner," in html
    for figure in ("KES 5,300", "KES 6,000", "KES 700", "KES 4,500", "KES 3,100", "KES 3,500", "KES 1,000"):
        assert figure in html, figure
    assert f"/payments/{made['expired']}" in html and f"/members/{made['e']}" in html

    other = [m for _, (rcpt,), m in mails if rcpt == "grace@gym.example"][0]
    assert "Good morning Grace," in _text(other) and other["Subject"] == msg["Subject"]


async def test_figures_are_five_queries_and_list_ten_failures_at_most(db):
    member = await make_member()
    for i in range(12):
        await mpesa._fail(await _prompt(member, 100 + i, f"p{i}"), "Wrong PIN")
    with count_queries() as n:
        f = await digest.figures(today() + timedelta(days=1))
    assert n.value == 5  # collections, standing, failures, the reconciliation's cells and reconciled day
    assert (f["failed"]["n"], f["failed"]["amount"], len(f["failed"]["rows"])) == (12, Decimal("1266.00"), 10)
    assert [r["amount"] for r in f["failed"]["rows"]][:2] == [Decimal("111.00"), Decimal("110.00")]  # latest first
    assert f["collections"] == [] and f["collected"]["net"] == Decimal("0")
    # This morning's digest was about yesterday, before any of them failed.
    assert (await digest.figures(today()))["failed"] == {"n": 0, "amount": Decimal("0"), "rows": []}
    # The snapshot goes into the message as JSON and comes back exact.
    back = digest.from_params(json.loads(json.dumps(digest.to_params(f))))
    assert back == f


async def test_nobody_opted_in_means_no_digest_and_no_figures(db):
    await _staff("paul", "admin", "paul@gym.example", False)
    await _staff("nomail", "manager", None, True)
    with count_queries() as n:
        assert await send_daily_digest({}) == {"recipients": 0, "queued": 0}
    assert n.value == 1  # who gets it: nobody, so nothing is added up
    assert await messages_of(kind="digest") == []


async def test_an_admin_opts_managers_in_with_their_address(carol):
    r = await carol.post("/staff/new", {"username": "grace", "first_name": "Grace", "role": "manager",
                                        "password": "grace-password-1", "email": "Grace@Gym.example",
                                        "daily_digest": "on"})
    assert r.status_code == 303
    grace = await Staff.select(Staff.id, Staff.daily_digest, Staff.user.email).where(
        Staff.user.username == "grace").first()
    assert grace["daily_digest"] and grace["user.email"] == "grace@gym.example"
    assert 'data-testid="digest"' in (await carol.get("/staff")).text
    assert [p["staff_id"] for p in await digest.recipients()] == [grace["id"]]

    # Front desk staff and staff without an address cannot be opted in.
    r = await carol.post("/staff/new", {"username": "dan", "first_name": "Dan", "role": "front_desk",
                                        "password": "dan-password-1", "email": "dan@gym.example", "daily_digest": "on"})
    assert r.status_code == 422 and "The daily digest is for managers and admins" in r.text
    edit = f"/staff/{grace['id']}/edit"
    r = await carol.post(edit, {"first_name": "Grace", "role": "manager", "active": "on", "email": "",
                                "daily_digest": "on"})
    assert r.status_code == 422 and "Add an email address to send the digest to" in r.text
    r = await carol.post(edit, {"first_name": "Grace", "role": "manager", "active": "on", "email": "carol@staff.invalid"})
    assert r.status_code == 422
    form = await carol.get(edit)
    assert 'value="grace@gym.example"' in form.text and 'data-testid="daily-digest" checked' in form.text

    # Unticked: no digest, the address kept; removing the address leaves the placeholder.
    r = await carol.post(edit, {"first_name": "Grace", "role": "manager", "active": "on", "email": "grace@gym.example"})
    assert r.status_code == 303 and await digest.recipients() == []
    r = await carol.post(edit, {"first_name": "Grace", "role": "manager", "active": "on", "email": ""})
    assert r.status_code == 303
    assert (await Staff.select(Staff.user.email).where(Staff.id == grace["id"]).first())["user.email"] == "grace@staff.invalid"
    assert 'name="email" type="email" value=""' in (await carol.get(edit)).text
