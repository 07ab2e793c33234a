"""Exactly once across every way the portal learns of a Paybill payment: its confirmation (twice),
Pull Transactions and the statement import, all at the same time on separate connections."""

import asyncio
import random
from decimal import Decimal

import httpx

from portal.reconcile import pull, statements
from tables.billing import Payment
from tables.gateway import GatewayCallback
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_member
from tests.reconcile.helpers import (
    confirmation_row,
    lose_next,
    mpesa_in_ledger,
    number,
    pay_paybill,
    register,
)
from tests.reconcile.test_statement import _export

ROUNDS = 6


async def test_confirmation_pull_and_statement_at_once_credit_each_receipt_once(live, capsys):
    """Each round: a member pays 3,000 to the Paybill and the confirmation is held back; then, at
    once and in a shuffled order, M-Pesa posts the confirmation, a second copy of it, a pull runs
    and a statement naming the payment is imported. After 6 rounds: 6 payments, the ledger's M-Pesa
    account 6 x 3,000 = 18,000, and for each receipt exactly one stored callback "applied", every
    other one "duplicate"."""
    await register(live)
    assert await pull.register_pull(live.settings) == "Success"
    rng = random.Random(16)
    receipts = []
    for round_ in range(ROUNDS):
        member = await make_member(phone=f"25471500000{round_}")
        await invoice_for(member, 3000)
        await lose_next(live, 1)
        receipt = await pay_paybill(live, 3000, await number(member))
        receipts.append(receipt)
        data = await _export(live)

        async def confirmation():
            async with httpx.AsyncClient(base_url=live.sandbox) as http:
                # The withheld confirmation, then M-Pesa's retry of it (the same body).
                r = await http.post(f"/_sandbox/daraja/c2b/{receipt}/confirm")
                assert r.status_code == 200, r.text

        async def repeat():
            row = None
            for _ in range(200):
                row = await GatewayCallback.select(GatewayCallback.body).where(
                    (GatewayCallback.kind == "c2b_confirmation") & (GatewayCallback.external_id == receipt)).first()
                if row:
                    break
                await asyncio.sleep(0.01)
            async with httpx.AsyncClient() as http:
                r = await http.post(live.hook("c2b/confirmation"), content=row["body"].encode(),
                                    headers={"content-type": "application/json"})
                assert r.status_code == 200

        jobs = [confirmation(), repeat(), pull.pull_recent(live.settings, 3),
                statements.import_statement(data, filename=f"round-{round_}.csv")]
        rng.shuffle(jobs)
        await asyncio.gather(*jobs)
        await confirmation_row(receipt)

    winners = []
    assert await Payment.count().where(Payment.method == "mpesa") == ROUNDS
    assert await mpesa_in_ledger() == Decimal(3000 * ROUNDS)
    for receipt in receipts:
        assert await Payment.count().where(Payment.reference == receipt) == 1
        rows = await GatewayCallback.select(GatewayCallback.kind, GatewayCallback.outcome, GatewayCallback.deliveries).where(
            (GatewayCallback.external_id == receipt) & (GatewayCallback.kind != "c2b_validation"))
        outcomes = sorted(r["outcome"] for r in rows)
        assert outcomes.count("applied") == 1 and set(outcomes) <= {"applied", "duplicate"}, rows
        assert sum(r["deliveries"] for r in rows if r["kind"] == "c2b_confirmation") == 2
        winners.append(next(r["kind"] for r in rows if r["outcome"] == "applied"))
    await assert_books_agree()
    with capsys.disabled():
        print(f"\n  credited by, round by round: {winners}")


async def test_two_overlapping_statements_imported_at_once_credit_a_receipt_once(db):
    """Monday's and the week's statement both have a 3,000 payment the portal never heard of
    (account PTF0301); imported at the same time, on two connections: one credits it, the other
    finds it; 1 payment, the ledger's M-Pesa account 3,000."""
    from tests.reconcile.test_statement import GOOD, HEADER

    await invoice_for(await make_member(number="PTF0301"), 3000)
    line = GOOD.replace("TKL0ABC123", "TKL0BOTH01").replace("PTF0001", "PTF0301")
    monday = (HEADER + line).encode()
    week = (HEADER + GOOD.replace("TKL0ABC123", "TKL0OTHER1").replace("PTF0001", "NOBODY") + line).encode()
    first, second = await asyncio.gather(statements.import_statement(monday), statements.import_statement(week))
    found = sorted([first.summary, second.summary], key=len)
    assert found in ([{"credited": 1}, {"matched": 1, "unmatched": 1}], [{"matched": 1}, {"credited": 1, "unmatched": 1}])
    assert await Payment.count().where(Payment.reference == "TKL0BOTH01") == 1
    assert await mpesa_in_ledger() == Decimal("3000")
    await assert_books_agree()
