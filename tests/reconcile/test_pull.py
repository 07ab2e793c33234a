"""Pull Transactions: the Paybill's confirmations M-Pesa never delivered are found in Daraja's own
book and credited once; the late real confirmations then change nothing."""

from decimal import Decimal

import httpx

from portal.reconcile import pull
from tables.billing import Payment
from tables.gateway import GatewayCallback
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_member
from tests.reconcile.helpers import (
    confirm_late,
    confirmation_row,
    lose_next,
    mpesa_in_ledger,
    number,
    page_size,
    pay_paybill,
    register,
)


async def test_a_day_with_two_lost_confirmations_found_by_pull_credited_once(live):
    """Worked example. Three members owe 3,000, 8,000 and 3,000 KES and pay the Paybill with their
    member numbers as the account. M-Pesa confirms the first; the other two confirmations are lost.

        ledger M-Pesa after the day:        3,000                      (1 payment)
        Pull, pages of 2 records:           page 1: 2, page 2: 1, page 3: empty -> 3 listed
                                            1 already known, 2 new -> stored and credited
        ledger M-Pesa after the pull:       3,000 + 8,000 + 3,000 = 14,000   (3 payments)
        the two late confirmations:         stored raw, both "duplicate": still 14,000, 3 payments
        a second pull:                      3 listed, 3 known, nothing stored
    """
    members = [await make_member(phone=f"25471200000{i}") for i in range(3)]
    amounts = [3000, 8000, 3000]
    for m, a in zip(members, amounts):
        await invoice_for(m, a)
    await register(live)
    await page_size(live, 2)
    paid_first = await pay_paybill(live, 3000, await number(members[0]))
    assert (await confirmation_row(paid_first))["outcome"] == "applied"
    await lose_next(live, 2)
    lost = [await pay_paybill(live, a, await number(m)) for m, a in zip(members[1:], amounts[1:])]
    assert await GatewayCallback.count().where(GatewayCallback.external_id.is_in(lost)
                                               & (GatewayCallback.kind != "c2b_validation")) == 0
    assert await mpesa_in_ledger() == Decimal("3000")

    assert await pull.register_pull(live.settings) == "Success"
    result = await pull.pull_recent(live.settings, 3)
    assert (result.pages, result.listed, result.seen, dict(result.outcomes)) == (2, 3, 1, {"applied": 2})
    assert await mpesa_in_ledger() == Decimal("14000")
    credited = await Payment.select(Payment.reference, Payment.amount, Payment.member, Payment.status).where(
        Payment.reference.is_in(lost)).order_by(Payment.amount)
    assert [(p["reference"], p["amount"], p["member"], p["status"]) for p in credited] == sorted(
        [(lost[1], Decimal("3000.00"), members[2], "completed"), (lost[0], Decimal("8000.00"), members[1], "completed")],
        key=lambda p: p[1])
    rows = await GatewayCallback.select(GatewayCallback.kind, GatewayCallback.outcome, GatewayCallback.source_ip).where(
        GatewayCallback.external_id.is_in(lost) & (GatewayCallback.kind != "c2b_validation"))
    assert [(r["kind"], r["outcome"], r["source_ip"]) for r in rows] == [("c2b_pull", "applied", "pull")] * 2

    for trans_id in lost:  # M-Pesa delivers them after all
        await confirm_late(live, trans_id)
    for trans_id in lost:
        row = await confirmation_row(trans_id)
        assert row["outcome"] == "duplicate" and "already recorded" in row["note"]
    assert await mpesa_in_ledger() == Decimal("14000")
    assert await Payment.count().where(Payment.method == "mpesa") == 3

    again = await pull.pull_recent(live.settings, 3)
    assert (again.listed, again.seen, dict(again.outcomes)) == (3, 3, {})
    assert await Payment.count().where(Payment.method == "mpesa") == 3
    await assert_books_agree()


async def test_pull_without_registering_is_refused_by_daraja_and_changes_nothing(live):
    from portal.gateways.http import GatewayError

    await register(live)
    member = await make_member()
    await lose_next(live, 1)
    await pay_paybill(live, 3000, await number(member))
    try:
        await pull.pull_recent(live.settings, 3)
    except GatewayError as e:
        assert "not registered" in str(e)
    else:
        raise AssertionError("Daraja answered a pull for a shortcode not registered")
    assert await Payment.count() == 0


async def test_the_sandbox_keeps_48_hours_and_pages_by_offset(live):
    """The wire: register answers 1000/Success; the query pages by OffSetValue (records skipped)
    and answers [[]] past the end; a window older than 48 hours lists nothing."""
    from portal.gateways.daraja import DarajaClient

    await register(live)
    members = [await make_member(phone=f"25471300000{i}") for i in range(3)]
    for m in members:
        await pay_paybill(live, 1000, await number(m))
    async with DarajaClient(live.settings) as client:
        token = await client.access_token()
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=live.sandbox, headers=auth) as http:
        r = await http.post("/pulltransactions/v1/register", json={
            "ShortCode": live.settings.daraja_shortcode, "RequestType": "Pull", "NominatedNumber": "254708374149",
            "CallBackURL": "https://example.test/pull"})
        assert r.status_code == 200 and r.json()["ResponseStatus"] == "1000", r.text
        await page_size(live, 2)
        window = {"ShortCode": live.settings.daraja_shortcode, "StartDate": "2000-01-01 00:00:00",
                  "EndDate": "2100-01-01 00:00:00"}
        pages = [(await http.post("/pulltransactions/v1/query", json={**window, "OffSetValue": str(o)})).json()
                 for o in (0, 2, 4)]
        assert [len(p["Response"][0]) for p in pages] == [2, 1, 0]
        record = pages[0]["Response"][0][0]
        assert set(record) == {"transactionId", "trxDate", "msisdn", "sender", "transactiontype", "billreference",
                               "amount", "organizationname"}
        assert record["amount"] == "1000" and record["msisdn"] == 254708374149
        old = (await http.post("/pulltransactions/v1/query", json={
            **window, "EndDate": "2001-01-01 00:00:00", "OffSetValue": "0"})).json()
        assert old["Response"] == [[]]
        aged = await http.post("/_sandbox/daraja/pull/age", json={"receipt": record["transactionId"], "hours": 48.01})
        assert aged.status_code == 200
        await page_size(live, 10)
        kept = (await http.post("/pulltransactions/v1/query", json={**window, "OffSetValue": "0"})).json()
        assert len(kept["Response"][0]) == 2 and record["transactionId"] not in str(kept)


async def test_managers_pull_now_and_the_scheduled_job_runs_on_the_gateway_queue(live, worker, queue, bob):
    """A lost confirmation found by the manager's "Pull now"; a second lost one found by the job the
    worker runs every 30 minutes (applied through the queue as the cron does)."""
    from portal.lib.queue import GATEWAY, route
    from tables.audit import AuditLog
    from tasks.worker import CRON_JOBS

    assert route("pull_paybill") == GATEWAY
    assert [c.cron for c in CRON_JOBS if c.function.__name__ == "pull_paybill"] == ["7,37 * * * *"]
    await register(live)
    members = [await make_member(phone=f"25471600000{i}") for i in range(2)]
    await lose_next(live, 2)
    first = await pay_paybill(live, 3000, await number(members[0]))

    r = await bob.post("/reconcile/mpesa/pull", {"hours": "3"})  # not registered yet: Daraja refuses
    assert r.status_code == 422 and "not registered" in r.text
    r = await bob.post("/reconcile/mpesa/register")
    assert r.status_code == 200 and "Registered for Pull Transactions" in r.text
    r = await bob.post("/reconcile/mpesa/pull", {"hours": "49"})
    assert r.status_code == 422 and "1 to 48" in r.text
    r = await bob.post("/reconcile/mpesa/pull", {"hours": "3"})
    assert r.status_code == 200 and 'data-testid="pull-result"' in r.text
    assert "Daraja listed 1 Paybill payment of the last 3 hours (1 page): 0 already known; not heard of before: 1 applied." in r.text
    assert await Payment.count().where(Payment.reference == first) == 1
    audit = await AuditLog.select(AuditLog.action, AuditLog.staff).where(AuditLog.action.like("mpesa.pull%")).order_by(AuditLog.id)
    assert [a["action"] for a in audit] == ["mpesa.pull_registered", "mpesa.pull"] and all(a["staff"] for a in audit)

    second = await pay_paybill(live, 3000, await number(members[1]))
    job = await queue.apply("pull_paybill", timeout=60)
    assert job == {"hours": 3, "pages": 1, "listed": 2, "seen": 1, "stored_applied": 1}
    assert await Payment.count().where(Payment.reference.is_in([first, second])) == 2
    assert await mpesa_in_ledger() == Decimal("6000")
    await assert_books_agree()


async def test_a_pulled_payment_nobody_owns_waits_for_staff_and_is_matched_once(live):
    """A lost confirmation whose account is nobody's: the pull stores it and it waits on Unmatched
    M-Pesa (nothing credited); staff match it to the member (3,000 credited); the late real
    confirmation is then a duplicate and the ledger stays at 3,000."""
    from portal.auth import create_staff
    from portal.payments.mpesa import c2b

    await register(live)
    member = await make_member()
    staff = await create_staff("mgr", "mgr-password-1", "manager")
    await lose_next(live, 1)
    trans_id = await pay_paybill(live, 3000, "GYM FEES")
    assert await pull.register_pull(live.settings) == "Success"
    result = await pull.pull_recent(live.settings, 3)
    assert dict(result.outcomes) == {"unmatched": 1}
    waiting = await c2b.unmatched_payments()
    assert [(w.trans_id, w.amount, w.account) for w in waiting] == [(trans_id, Decimal("3000"), "GYM FEES")]
    assert await mpesa_in_ledger() == Decimal("0")
    recorded = await c2b.match_unmatched(waiting[0].id, member, staff)
    assert recorded.created and recorded.payment["reference"] == trans_id
    assert (await c2b.match_unmatched(waiting[0].id, member, staff)).created is False
    await confirm_late(live, trans_id)
    assert (await confirmation_row(trans_id))["outcome"] == "duplicate"
    assert await mpesa_in_ledger() == Decimal("3000") and await c2b.unmatched_count() == 0
    await assert_books_agree()


async def test_a_confirmation_that_could_not_be_read_does_not_hide_its_money_from_pull(live):
    """M-Pesa's confirmation of a 3,000 payment arrives garbled (its amount unreadable): it is kept
    as malformed and credits nothing. The pull lists the payment: it is credited (3,000) once."""
    import json

    await register(live)
    member = await make_member()
    await lose_next(live, 1)
    trans_id = await pay_paybill(live, 3000, await number(member))
    garbled = {"TransactionType": "Pay Bill", "TransID": trans_id, "TransTime": "20261207101500",
               "TransAmount": "3,000.0O", "BusinessShortCode": live.settings.daraja_shortcode,
               "BillRefNumber": await number(member), "MSISDN": "2547 ***** 149", "FirstName": "JOHN"}
    async with httpx.AsyncClient() as http:
        r = await http.post(live.hook("c2b/confirmation"), content=json.dumps(garbled),
                            headers={"content-type": "application/json"})
        assert r.status_code == 200
    assert (await confirmation_row(trans_id))["outcome"] == "malformed"
    assert await pull.register_pull(live.settings) == "Success"
    result = await pull.pull_recent(live.settings, 3)
    assert (result.seen, dict(result.outcomes)) == (0, {"applied": 1})
    assert await mpesa_in_ledger() == Decimal("3000")
    await assert_books_agree()
