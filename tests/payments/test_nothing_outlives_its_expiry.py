"""Issue 11, must have: after the dust settles nothing is left in flight longer than its expiry plus
one sweep. Each way a gateway scenario can leave a payment in flight is brought past its time; one
run of the minute sweepers settles or expires every one, and the books agree. The chain is real:
portal over HTTP, SAQ worker, the Daraja and Flutterwave sandboxes."""

import httpx

from tables.billing import Payment
from tasks.cards import sweep_card_checkouts
from tasks.mpesa import sweep_mpesa
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_member
from tests.payments.cards.test_cards import _checkout, _pay
from tests.payments.mpesa.test_stk_scenarios import _ask
from tests.support.live import PHONES, wait_for_status

IN_FLIGHT = ("pending", "processing")


async def _clock_back(pid: int, seconds: int) -> None:
    """As if `seconds` had passed for this payment (the sweepers judge by the database's now())."""
    await Payment.raw("UPDATE payment SET created_at = created_at - make_interval(secs => {}), "
                      "expires_at = expires_at - make_interval(secs => {}), "
                      "next_check_at = next_check_at - make_interval(secs => {}) WHERE id = {}",
                      seconds, seconds, seconds, pid)


async def _status(pid: int) -> str:
    return (await Payment.select(Payment.status).where(Payment.id == pid).first())["status"]


async def _past_its_time(pid: int) -> None:
    await Payment.raw("UPDATE payment SET expires_at = now() - interval '1 second' WHERE id = {}", pid)


async def test_after_one_sweep_past_its_expiry_nothing_is_left_in_flight(card_live, worker, alice):
    """Five payments a scenario leaves in flight, each KES 3,000 against a KES 3,000 invoice:
    - an M-Pesa prompt nobody answers: its Transaction Status finds no payment -> expired;
    - an M-Pesa prompt paid with no callback: STK Query says paid -> completed (3,000 credited);
    - a card checkout left open: Flutterwave has no transaction -> expired;
    - a card checkout paid, nobody came back, no webhook: verify says paid -> completed (3,000);
    - a card checkout Flutterwave still calls pending at the end of its time -> expired; when its
      webhook later comes settled, the 3,000 is credited once (a late success, flagged).
    Credited: 3 x 3,000 = 9,000 in three payment_received entries; nothing else pending."""
    members = [await make_member() for _ in range(5)]
    for m in members:
        await invoice_for(m, 3000)
    async with httpx.AsyncClient(base_url=card_live.sandbox) as http:
        # The prompt stays on the phone, unanswered, longer than the portal waits for it.
        r = await http.post("/_sandbox/daraja/settings", json={"prompt_timeout": 600})
        assert r.status_code < 300, r.text
        # Verify says pending until the test says the charge has settled (with its webhook, below):
        # with one pending answer only, a check of the worker's own before the sweep used it up on
        # a busy machine, and the sweep found the charge settled (seen in a whole-suite run).
        r = await http.post("/_sandbox/flutterwave/settings", json={"verify_pending_count": 1000})
        assert r.status_code < 300, r.text

    unanswered = await _ask(alice, members[0], PHONES["interactive"])
    paid_quietly = await _ask(alice, members[1], PHONES["no_callback"])
    for pid in (unanswered, paid_quietly):
        await wait_for_status(pid, {"processing"})
    left_open, _, _ = await _checkout(alice, members[2])
    paid_no_return, paid_ref, _ = await _checkout(alice, members[3])
    await _pay(card_live, paid_ref, card="success", scenario="none")
    still_pending, pending_ref, _ = await _checkout(alice, members[4])
    settling = await _pay(card_live, pending_ref, card="success", scenario="pending_first+none")

    # The card left open was checked a minute before its time ran out (no transaction yet): that
    # check must not put its next one off past the expiry.
    await _clock_back(left_open, 29 * 60)
    await sweep_card_checkouts({})
    checked = await Payment.select().where(Payment.id == left_open).first()
    assert checked["status"] == "processing" and checked["next_check_at"] <= checked["expires_at"]
    await _clock_back(left_open, 61)
    for pid in (paid_no_return, still_pending):
        await _clock_back(pid, 31 * 60)  # CARD_CHECKOUT_MINUTES (30) are over
    for pid in (unanswered, paid_quietly):
        await _past_its_time(pid)

    # One sweep of each.
    await sweep_mpesa({})
    await sweep_card_checkouts({})
    await wait_for_status(unanswered, {"expired"})  # once Transaction Status's Result is in
    assert {pid: await _status(pid) for pid in (paid_quietly, left_open, paid_no_return, still_pending)} == {
        paid_quietly: "completed", left_open: "expired", paid_no_return: "completed", still_pending: "expired"}
    assert await Payment.count().where(Payment.status.is_in(IN_FLIGHT)) == 0
    await assert_books_agree()

    # Flutterwave's settled webhook for the one it called pending: credited once, after all.
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{card_live.sandbox}/_sandbox/flutterwave/transactions/{settling['transaction_id']}/webhook",
                            json={"times": 2, "settled": True})
        assert r.status_code < 300, r.text
    late = await wait_for_status(still_pending, {"completed"})
    assert late["amount"] == 3000
    assert await Payment.count().where(Payment.status == "completed") == 3
    await assert_books_agree()
