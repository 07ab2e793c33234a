"""Reminders on a controlled clock: a whole dunning cycle day by day, what each message says, and
that none is sent twice, after payment, to a paused or opted-out member."""

import asyncio
from datetime import date, timedelta

from portal.gateways.africastalking import sms_parts
from portal.messages import content, reminders
from portal.messages.delivery import deliver
from tables.billing import Invoice
from tables.messages import Message
from tests.billing.helpers import invoice_for, pay
from tests.factories import make_member

DUE = date(2026, 12, 15)


async def _invoice(member: int, amount=3000, due: date = DUE) -> dict:
    inv = await invoice_for(member, amount)
    await Invoice.update({Invoice.due_date: due}).where(Invoice.id == inv["id"])
    return inv


async def _run(day: date) -> list[dict]:
    """One day's run, then the worker's job for each message it wrote (the dev mailbox keeps emails)."""
    result = await reminders.send_reminders(on=day)
    rows = await Message.select().where(Message.kind.like("reminder_%") & (Message.status == "queued")).order_by(Message.id)
    for row in rows:
        await deliver(row["id"])
    assert result.created == len(rows)
    return await Message.select().where(Message.id.is_in([r["id"] for r in rows] or [0])).order_by(
        Message.id).output(load_json=True)


async def test_a_whole_dunning_cycle_day_by_day(live, capsys):
    wanjiku = await make_member("Wanjiku", "Kamau", email="wanjiku@example.com", message_channel="email")
    otieno = await make_member("Otieno", "Odhiambo", phone="254711222333")  # SMS, the default
    inv_w = await _invoice(wanjiku, 3000)
    await _invoice(otieno, 2500)
    cycle = []
    for offset in range(-10, 26):
        day = DUE + timedelta(days=offset)
        if offset == 3:
            await pay(wanjiku, 1000, invoice_id=inv_w["id"])  # part-payment: later reminders ask for the rest
        if offset == 16:
            await pay(wanjiku, 2000, invoice_id=inv_w["id"])  # paid up: her reminders stop
        for m in await _run(day):
            cycle.append((day, m["params"]["step"], m["channel"], m["status"], (m["subject"] or m["body_text"])))
    with capsys.disabled():
        print("\nDunning cycle (invoice due %s):" % DUE)
        for day, step, channel, status, text in cycle:
            print(f"  {day}  {step:<11} {channel:<5} {status:<7} {text[:100]}")
    steps_w = [(d, s) for d, s, ch, _, _ in cycle if ch == "email"]
    assert [s for _, s in steps_w] == ["before-7", "before-3", "before-1", "due", "overdue-1", "overdue-7", "overdue-14"]
    assert [d for d, _ in steps_w] == [DUE + timedelta(days=o) for o in (-7, -3, -1, 0, 1, 7, 14)]
    emails = {s: t for _, s, ch, _, t in cycle if ch == "email"}
    assert "KES 3,000" in emails["due"] and "KES 2,000" in emails["overdue-7"]  # what is still owed, each time
    assert "Final notice" not in " ".join(emails.values())  # paid on day 16: no final notice on day 21
    sms = [(d, s, t) for d, s, ch, _, t in cycle if ch == "sms"]
    assert [s for _, s, _ in sms] == ["before-7", "before-3", "before-1", "due", "overdue-1", "overdue-7",
                                      "overdue-14", "final-21"]
    assert "FINAL NOTICE" in sms[-1][2] and "/pay/" in sms[-1][2]
    assert all(status == "sent" for *_, status, _ in cycle)


async def test_every_sms_reminder_fits_one_part_with_its_link(db):
    member = await make_member("Kiprono", "Chebetwa-Kibet", phone="254711222444")
    inv = await _invoice(member, 12345)
    for offset in (-7, 0, 7, 21):
        await reminders.send_reminders(on=DUE + timedelta(days=offset))
    for row in await Message.select().where(Message.kind.like("reminder_%")).output(load_json=True):
        text = (await content.build(row)).text
        assert sms_parts(text)[1] == 1 and "/pay/" in text and "KES 12,345" in text, text
    assert await Message.count().where(Message.invoice == inv["id"]) >= 4


async def test_run_twice_at_once_each_reminder_is_written_once(db):
    members = [await make_member(f"Member{i}", "Twice", phone=f"25471100{i:04d}") for i in range(30)]
    for i, member in enumerate(members):
        await _invoice(member, 1000 + i, due=DUE + timedelta(days=(-7, 0, 1, 7)[i % 4]))
    first, second = await asyncio.gather(reminders.send_reminders(on=DUE), reminders.send_reminders(on=DUE))
    assert first.invoices == second.invoices == 30
    assert first.created + second.created == 30
    assert await Message.count().where(Message.kind.like("reminder_%")) == 30
    again = await reminders.send_reminders(on=DUE)
    assert again.created == 0


async def test_paid_paused_and_opted_out_get_none(db, alice):
    paid = await make_member("Paid", "Up")
    await pay(paid, 3000, invoice_id=(await _invoice(paid))["id"])
    opted = await make_member("Opted", "Out", reminder_opt_out=True)
    await _invoice(opted)
    member_paused = await make_member("Member", "Paused")
    await _invoice(member_paused)
    invoice_paused = await make_member("Invoice", "Paused")
    inv = await _invoice(invoice_paused)
    assert (await alice.post(f"/members/{member_paused}/reminders", {"reason": "Travelling, pays on return"})).status_code == 303
    no_reason = await alice.post(f"/invoices/{inv['id']}/reminders", {"reason": ""})
    assert "notice=reason_needed" in no_reason.headers["location"]
    assert (await alice.post(f"/invoices/{inv['id']}/reminders", {"reason": "Disputed, manager checking"})).status_code == 303
    due = await reminders.send_reminders(on=DUE)
    assert due.invoices == 0 and await Message.count().where(Message.kind.like("reminder_%")) == 0
    # Resumed: reminders come back on the next step.
    await alice.post(f"/invoices/{inv['id']}/reminders", {"action": "resume"})
    assert (await reminders.send_reminders(on=DUE + timedelta(days=1))).invoices == 1


async def test_a_reminder_queued_before_payment_or_pause_is_skipped_when_it_would_go(db):
    member = await make_member("Late", "Payer", phone="254711222555")
    inv = await _invoice(member, 3000)
    await reminders.send_reminders(on=DUE)
    await pay(member, 3000, invoice_id=inv["id"])
    row = await Message.select().where(Message.kind == "reminder_due").first()
    assert await deliver(row["id"]) == "skipped"
    other = await make_member("Paused", "Later", phone="254711222666")
    inv2 = await _invoice(other, 2000)
    await reminders.send_reminders(on=DUE + timedelta(days=1))
    await reminders.pause_invoice(inv2["id"], "Agreed a plan", None)
    row = await Message.select().where((Message.invoice == inv2["id"]) & (Message.kind == "reminder_overdue")).first()
    assert await deliver(row["id"]) == "skipped"


async def test_staff_send_one_now_from_the_dues_page_once_a_day(db, alice):
    member = await make_member("Desk", "Reminder", phone="254711222777")
    inv = await _invoice(member, 3000, due=DUE)
    r = await alice.post(f"/invoices/{inv['id']}/remind", {}, htmx=True)
    assert r.status_code == 200 and "Reminder sent" in r.text
    again = await alice.post(f"/invoices/{inv['id']}/remind", {}, htmx=True)
    assert "already went today" in again.text
    assert await Message.count().where(Message.kind.like("reminder_%")) == 1
    page = await alice.post(f"/invoices/{inv['id']}/remind", {})
    assert page.status_code == 303 and page.headers["location"].endswith("notice=reminder_already")
    shown = await alice.get(page.headers["location"])
    assert 'data-testid="notice">A reminder already went today.' in shown.text


async def test_the_member_page_pauses_and_resumes_their_reminders(alice):
    member = await make_member("Pause", "Me")
    page = await alice.get(f"/members/{member}")
    assert 'data-testid="pause-member-reminders"' in page.text
    r = await alice.post(f"/members/{member}/reminders", {"reason": "Travelling until March"})
    shown = await alice.get(r.headers["location"])
    assert 'data-testid="notice">Reminders paused.' in shown.text and "Travelling until March" in shown.text
    await alice.post(f"/members/{member}/reminders", {"action": "resume"})
    assert 'data-testid="pause-member-reminders"' in (await alice.get(f"/members/{member}")).text
