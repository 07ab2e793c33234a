"""M-Pesa Paybill (C2B) end to end: our URLs registered with the Daraja sandbox, a customer pays
the Paybill (simulate API: validation round trip, then the confirmation to our hook), the money
is matched by account number and settles invoices; unknown accounts wait for staff on
/mpesa/unmatched; an STK Push to the Paybill, which M-Pesa also confirms over C2B, counts once."""

import asyncio
import csv
import io
import json
import re
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from portal.billing import ledger
from portal.billing.invoices import Line, issue_invoice, lock_member
from portal.callbacks.dispatch import process
from portal.documents import context as document_context
from portal.documents import store as document_store
from portal.gateways.daraja import DarajaClient
from portal.lib import db
from portal.lib.clock import today
from portal.members.enrol import put_on_plan
from portal.messages import email
from portal.messages.content import sms_text
from portal.payments.mpesa.c2b import register_c2b_urls, unmatched_count
from tables.audit import AuditLog
from tables.billing import Invoice, Payment, PaymentEvent
from tables.gateway import GatewayCallback, StaffAlert
from tables.members import Member, Membership, Plan
from tests.billing.helpers import assert_books_agree, invoice_for, kes
from tests.factories import make_member, make_membership, make_plan
from tests.support.env import setting
from tests.support.live import PHONES, wait_for_status

CUSTOMER = 254708374149  # Safaricom's documented test MSISDN; v2 masks it as "2547 ***** 149"


# --- helpers ------------------------------------------------------------------------------------

async def _register(live) -> None:
    assert await register_c2b_urls(live.settings) == "Success"


async def _simulate(live, amount, account: str, msisdn=CUSTOMER) -> str:
    """A customer pays the Paybill; returns the TransID once the sandbox has finished the round trip."""
    async with DarajaClient(live.settings) as client:
        token = await client.access_token()
    async with httpx.AsyncClient(base_url=live.sandbox) as http:
        r = await http.post("/mpesa/c2b/v2/simulate", headers={"Authorization": f"Bearer {token}"}, json={
            "ShortCode": int(live.settings.daraja_shortcode), "CommandID": "CustomerPayBillOnline",
            "Amount": amount, "Msisdn": msisdn, "BillRefNumber": account})
        assert r.status_code == 200 and r.json()["ResponseCode"] == "0", r.text
        for _ in range(400):
            payments = (await http.get("/_sandbox/daraja/c2b")).json()["payments"]
            done = [p for p in payments if p["via"] == "simulate-v2" and p["bill_ref_number"] == account
                    and (p["notified"] or p["state"] in ("rejected", "cancelled"))]
            if done:
                return done[0]["trans_id"]
            await asyncio.sleep(0.05)
    raise AssertionError(f"the sandbox never finished the payment to {account!r}")


async def _sandbox_payment(live, trans_id: str) -> dict:
    async with httpx.AsyncClient(base_url=live.sandbox) as http:
        payments = (await http.get("/_sandbox/daraja/c2b")).json()["payments"]
    return next(p for p in payments if p["trans_id"] == trans_id)


async def _confirmation(trans_id: str, outcomes=("applied", "duplicate", "unmatched", "malformed", "stored"),
                        timeout: float = 20) -> dict:
    for _ in range(int(timeout / 0.05)):
        row = await GatewayCallback.select().where((GatewayCallback.kind == "c2b_confirmation")
                                                   & (GatewayCallback.external_id == trans_id)).first()
        if row and row["outcome"] in outcomes and (row["processed_at"] or row["outcome"] == "stored"):
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"confirmation {trans_id} not processed: {row}")


def _c2b_body(trans_id: str, amount: str, account: str, msisdn: str = "2547 ***** 149", **extra) -> dict:
    """The confirmation exactly as gateways.md §1.8 shows it (all strings; nulls allowed)."""
    return {"TransactionType": "Pay Bill", "TransID": trans_id, "TransTime": "20261126101500",
            "TransAmount": amount, "BusinessShortCode": "174379", "BillRefNumber": account, "InvoiceNumber": None,
            "OrgAccountBalance": "", "ThirdPartyTransID": None, "MSISDN": msisdn, "FirstName": "JOHN",
            "MiddleName": "", "LastName": "", **extra}


def _stk_body(payment: dict, receipt: str, amount) -> dict:
    """A successful STK callback (gateways.md §1.5): numbers are JSON numbers."""
    return {"Body": {"stkCallback": {
        "MerchantRequestID": payment["gateway_request"], "CheckoutRequestID": payment["gateway_ref"], "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.", "CallbackMetadata": {"Item": [
            {"Name": "Amount", "Value": amount}, {"Name": "MpesaReceiptNumber", "Value": receipt},
            {"Name": "Balance"}, {"Name": "TransactionDate", "Value": 20261126101500},
            {"Name": "PhoneNumber", "Value": int(payment["phone"])}]}}}}


async def _post(url: str, body: dict) -> dict:
    async with httpx.AsyncClient() as http:
        r = await http.post(url, content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()


async def _ask_stk(alice, member: int, phone: str, amount: str = "3000") -> int:
    r = await alice.post(f"/members/{member}/mpesa", {"phone": phone, "amount": amount, "idempotency_key": f"k-{phone}"})
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


async def _completed(member: int) -> list[dict]:
    return await Payment.select().where((Payment.member == member) & (Payment.status == "completed"))


async def _number(member: int) -> str:
    return (await Member.select(Member.member_number).where(Member.id == member).first())["member_number"]


# --- paying by account number -------------------------------------------------------------------

async def test_paid_by_member_number_settles_activates_and_numbers_the_receipt(live, worker):
    from tests.documents.test_documents_job import _wait_for

    await _register(live)
    member = await make_member(first_name="Achieng", last_name="Otieno")
    plan = await make_plan(price="3000")
    membership = await put_on_plan(member, plan, today(), None)
    number = await _number(member)  # PTF9001: typed as "ptf 90 01"
    trans_id = await _simulate(live, 3000, f"{number[:3].lower()} {number[3:5]} {number[5:]}")
    cb = await _confirmation(trans_id)
    assert cb["outcome"] == "applied", cb["note"]
    [paid] = await _completed(member)
    assert (paid["reference"], paid["gateway_ref"], paid["amount"], paid["staff"]) == (trans_id, trans_id, Decimal("3000.00"), None)
    assert paid["receipt_number"].startswith("RCP-") and paid["idempotency_key"] == f"c2b:{trans_id}"
    assert cb["payment"] == paid["id"] and cb["member"] == member
    inv = await Invoice.select().where(Invoice.member == member).first()
    assert (inv["status"], inv["paid"]) == ("paid", Decimal("3000.00"))
    assert (await Membership.select().where(Membership.id == membership.id).first())["status"] == "active"
    events = await PaymentEvent.select().where(PaymentEvent.payment == paid["id"]).order_by(PaymentEvent.id)
    assert [(e["old_status"], e["new_status"]) for e in events][:2] == [("", "pending"), ("pending", "completed")]
    assert events[1]["gateway_event"] == f"callback:{cb['id']}"
    # The validation request was answered "0" and kept.
    validation = await GatewayCallback.select().where((GatewayCallback.kind == "c2b_validation")
                                                      & (GatewayCallback.external_id == trans_id)).first()
    assert validation["outcome"] == "applied" and (await _sandbox_payment(live, trans_id))["validation"] == "accepted"
    await _wait_for("receipt", f"payment:{paid['id']}")
    await assert_books_agree()


async def test_paid_by_invoice_number_pays_that_invoice_first_and_renews(live, worker):
    await _register(live)
    member = await make_member()
    plan = await make_plan(price="3000")
    ending = today() + timedelta(days=3)
    old = await make_membership(member, plan, ending - timedelta(days=30), ending, "active")
    older = await invoice_for(member, 1000, "Locker")
    async with db.transaction():
        await lock_member(member)
        renewal = await issue_invoice(member, [Line("Monthly membership", kes(3000))], kind="renewal", plan_id=plan,
                                      membership_id=old)
    trans_id = await _simulate(live, 3000, renewal["number"].lower().replace("-", " "))
    cb = await _confirmation(trans_id)
    assert cb["outcome"] == "applied", cb["note"]
    assert "invoice " + renewal["number"] in cb["note"]
    [paid] = await _completed(member)
    assert paid["invoice"] == renewal["id"]
    statuses = {r["id"]: r["status"] for r in await Invoice.select(Invoice.id, Invoice.status)}
    assert statuses == {older["id"]: "open", renewal["id"]: "paid"}
    renewed = await Membership.select().where((Membership.member == member) & (Membership.id != old)).first()
    assert renewed["start_date"] == ending + timedelta(days=1)
    await assert_books_agree()


@pytest.mark.parametrize("current", [False, True])
async def test_paying_an_ended_periods_invoice_says_what_the_member_now_has(live, worker, alice, current):
    """A member trained last month on credit and pays that month's invoice by Paybill, late: the
    debt (and the hold) is gone but that month is over. The desk and the member are told so, and
    what membership there is now."""
    await _register(live)
    member = await make_member()
    plan = await make_plan(price="3000")
    start = today() - timedelta(days=61)
    past = await make_membership(member, plan, start, start + timedelta(days=30), "expired")
    async with db.transaction():
        await lock_member(member)
        owed = await issue_invoice(member, [Line("Monthly membership", kes(3000))], kind="new", plan_id=plan,
                                   membership_id=past, due_date=start)
    if current:
        await make_membership(member, plan, today() - timedelta(days=5), today() + timedelta(days=25), "active")
    trans_id = await _simulate(live, 3000, owed["number"])
    assert (await _confirmation(trans_id))["outcome"] == "applied"
    [paid] = await _completed(member)
    page = await alice.get(f"/payments/{paid['id']}")
    note = re.search(r'data-testid="membership-note">(.*?)</p>', page.text, re.S).group(1)
    assert f"{owed['number']} was for " in note and "has ended" in note
    if current:
        assert f"current membership is {(await Plan.select(Plan.name).first())['name']} until" in note
    else:
        assert "There is no current membership: renew to keep training." in note
    receipt = await document_context.receipt_context(paid["id"])
    assert receipt["receipt"]["membership_note"] == note.replace("&#39;", "'")
    assert note.replace("&#39;", "'") in email.render("receipt", receipt).text
    assert ("renew" in sms_text("receipt", receipt)) is not current
    await assert_books_agree()


async def test_an_overpayment_is_kept_as_credit(live, worker):
    await _register(live)
    member = await make_member()
    inv = await invoice_for(member, 3000)
    trans_id = await _simulate(live, 3500, await _number(member))
    assert (await _confirmation(trans_id))["outcome"] == "applied"
    assert (await Invoice.select(Invoice.status).where(Invoice.id == inv["id"]).first())["status"] == "paid"
    owed, credit = await ledger.member_balances(member)
    assert (owed.amount, credit.amount) == (Decimal("0.00"), Decimal("500.00"))
    await assert_books_agree()


async def test_a_full_phone_number_matches_when_the_account_does_not(live):
    """Old (unmasked) confirmations carry the full MSISDN: then, and only then, the phone matches."""
    member = await make_member(phone="254712999001")
    await invoice_for(member, 3000)
    await _post(live.hook("c2b/confirmation"), _c2b_body("TKA1PHONE1", "3000.00", "gym", msisdn="254712999001"))
    assert (await _confirmation("TKA1PHONE1"))["outcome"] == "applied"
    await _post(live.hook("c2b/confirmation"), _c2b_body("TKA1PHONE2", "3000.00", "gym", msisdn="2547 ***** 001"))
    assert (await _confirmation("TKA1PHONE2"))["outcome"] == "unmatched"
    assert len(await _completed(member)) == 1


async def test_a_malformed_confirmation_is_kept_answered_and_shown_to_staff(live):
    body = _c2b_body("TKA1BAD001", "lots", "PTF0001")
    assert await _post(live.hook("c2b/confirmation"), body) == {"ResultCode": 0, "ResultDesc": "Success"}
    cb = await _confirmation("TKA1BAD001")
    assert cb["outcome"] == "malformed" and "TransAmount" in cb["note"]
    assert await StaffAlert.count().where(StaffAlert.kind == "malformed") == 1
    assert await Payment.count() == 0


# --- the unmatched queue ------------------------------------------------------------------------

async def test_unknown_account_waits_on_the_unmatched_page_and_staff_match_it_once(live, worker, alice):
    await _register(live)
    member = await make_member(first_name="Njeri", last_name="Wambui")
    plan = await make_plan(price="3000")
    membership = await put_on_plan(member, plan, today(), None)
    trans_id = await _simulate(live, 3000, "Gym fees")
    cb = await _confirmation(trans_id)
    assert (cb["outcome"], cb["note"], cb["payment"]) == ("unmatched", "account Gym fees matches no member or invoice", None)
    assert await Payment.count() == 0
    alert = await StaffAlert.select().where(StaffAlert.callback == cb["id"]).first()
    assert alert["kind"] == "unmatched" and not alert["resolved"]
    assert await unmatched_count() == 1

    page = await alice.get("/mpesa/unmatched")
    assert page.status_code == 200
    for shown in (trans_id, "Gym fees", "2547 ***** 149", "KES 3,000"):
        assert shown in page.text, shown
    found = await alice.get(f"/mpesa/unmatched/{cb['id']}/members?q=njeri", htmx=True)
    assert found.status_code == 200 and "<html" not in found.text
    number = await _number(member)
    assert f'data-testid="match-{number}"' in found.text and 'name="_csrf_token"' in found.text
    no_script = await alice.get(f"/mpesa/unmatched/{cb['id']}/members?q=njeri")
    assert "<html" in no_script.text and f'data-testid="match-{number}"' in no_script.text

    # "Match and renew", pressed twice at once and once more later: one payment.
    path = f"/mpesa/unmatched/{cb['id']}/match"
    first, second = await asyncio.gather(alice.post(path, {"member_id": str(member)}),
                                         alice.post(path, {"member_id": str(member)}))
    third = await alice.post(path, {"member_id": str(member)})
    assert first.status_code == second.status_code == third.status_code == 303, first.text
    assert first.headers["location"] == second.headers["location"] == third.headers["location"]
    [paid] = await _completed(member)
    assert first.headers["location"] == f"/payments/{paid['id']}"
    assert (paid["reference"], paid["amount"], paid["receipt_number"][:4]) == (trans_id, Decimal("3000.00"), "RCP-")
    assert paid["staff"] is not None
    assert (await Invoice.select(Invoice.status).where(Invoice.member == member).first())["status"] == "paid"
    assert (await Membership.select().where(Membership.id == membership.id).first())["status"] == "active"
    cb = await GatewayCallback.select().where(GatewayCallback.id == cb["id"]).first()
    assert cb["outcome"] == "applied" and cb["payment"] == paid["id"] and "by Alice" in cb["note"]
    alert = await StaffAlert.select().where(StaffAlert.id == alert["id"]).first()
    assert alert["resolved"] and alert["resolved_by"] == paid["staff"] and alert["resolved_at"]
    assert await AuditLog.count().where((AuditLog.action == "mpesa.c2b_matched") & (AuditLog.staff == paid["staff"])) == 1
    assert await unmatched_count() == 0
    assert 'data-testid="unmatched-empty"' in (await alice.get("/mpesa/unmatched")).text
    await assert_books_agree()


async def test_matching_refuses_what_is_not_waiting_and_needs_a_member(live, alice):
    member = await make_member()
    await _post(live.hook("c2b/confirmation"), _c2b_body("TKA1NOTYET", "500.00", str(await _number(member))))
    matched = await _confirmation("TKA1NOTYET")
    assert matched["outcome"] == "applied"
    await _post(live.hook("c2b/confirmation"), _c2b_body("TKA1WHO001", "500.00", "nobody"))
    waiting = await _confirmation("TKA1WHO001")
    r = await alice.post(f"/mpesa/unmatched/{waiting['id']}/match", {"member_id": ""})
    assert r.status_code == 422 and "Choose the member" in r.text
    r = await alice.post(f"/mpesa/unmatched/{waiting['id']}/match", {"member_id": str(member + 999)})
    assert r.status_code == 422 and "no longer exists" in r.text
    assert await unmatched_count() == 1


# --- validation ---------------------------------------------------------------------------------

async def test_validation_rejects_fractions_and_below_one_shilling(live):
    member = await make_member()
    number = await _number(member)
    for amount, code in (("10.50", "C2B00013"), ("0.00", "C2B00013"), ("abc", "C2B00013"), ("10", "0"), ("5.00", "0")):
        answer = await _post(live.hook("c2b/validation"), _c2b_body(f"TKV{amount.replace('.', '')}X", amount, number))
        assert answer["ResultCode"] == code, (amount, answer)
        assert answer["ResultDesc"] == ("Accepted" if code == "0" else "Rejected")
    assert (await _post(live.hook("c2b/validation"), ["not", "an", "object"]))["ResultCode"] == "C2B00016"
    assert await Payment.count() == 0  # validation never moves money


def _unknown_accounts_refused():
    """C2B_ACCEPT_UNKNOWN_ACCOUNTS=0 for the portal serving the hooks (same process)."""
    return setting("C2B_ACCEPT_UNKNOWN_ACCOUNTS", "0")


async def test_unknown_accounts_are_rejected_when_the_gym_says_so(live, worker):
    await _register(live)
    member = await make_member()
    number = await _number(member)
    inv = await invoice_for(member, 3000)
    with _unknown_accounts_refused():
        for n, (account, code) in enumerate((("nobody", "C2B00012"), ("", "C2B00012"), (number.lower(), "0"),
                                             (inv["number"].replace("-", " "), "0"))):
            answer = await _post(live.hook("c2b/validation"), _c2b_body(f"TKV1ACCT0{n}", "100", account))
            assert answer["ResultCode"] == code, (account, answer)
        # Through the sandbox: M-Pesa takes no money and sends no confirmation.
        trans_id = await _simulate(live, 3000, "NOBODY 1")
        assert (await _sandbox_payment(live, trans_id))["state"] == "rejected"
        assert await GatewayCallback.count().where(GatewayCallback.kind == "c2b_confirmation") == 0
        assert (await _sandbox_payment(live, await _simulate(live, 3000, inv["number"])))["state"] == "completed"


# --- a phone number typed as the account --------------------------------------------------------

async def test_a_phone_number_typed_as_the_account_pays_the_only_member_with_that_phone(live):
    """Members often type their phone as the Paybill account, in any of the usual ways."""
    await _register(live)
    member = await make_member(phone="254712999002")
    other = await make_member(phone="254712999009")
    inv = await invoice_for(member, 3000)
    for typed in ("0712999002", "254712999002", "712999002"):
        trans_id = await _simulate(live, 1000, typed)
        assert (await _sandbox_payment(live, trans_id))["validation"] == "accepted"
        cb = await _confirmation(trans_id)
        assert (cb["outcome"], cb["member"]) == ("applied", member), cb["note"]
        assert cb["note"] == f"1000.00 credited to {await _number(member)} (matched by phone number as the account)"
    assert len(await _completed(member)) == 3 and await _completed(other) == []
    assert (await Invoice.select(Invoice.status).where(Invoice.id == inv["id"]).first())["status"] == "paid"
    await assert_books_agree()
    # A family's one phone does not say which of them paid: the money waits for staff, as for
    # any unknown account, rather than being credited to a guess.
    first, second = await make_member(phone="254712999003"), await make_member(phone="254712999003")
    cb = await _confirmation(await _simulate(live, 1000, "0712 999 003"))
    assert (cb["outcome"], cb["member"], cb["payment"]) == ("unmatched", None, None)
    assert await unmatched_count() == 1
    assert await _completed(first) == await _completed(second) == []


async def test_validation_knows_a_members_phone_as_an_account_when_unknown_ones_are_refused(live):
    await _register(live)
    member = await make_member(phone="254712999004")
    for _family in range(2):
        await make_member(phone="254712999005")
    with _unknown_accounts_refused():
        for n, (account, code) in enumerate((("0712999004", "0"), ("254712999004", "0"), ("712999004", "0"),
                                             ("0712999005", "C2B00012"), ("0712999006", "C2B00012"))):
            answer = await _post(live.hook("c2b/validation"), _c2b_body(f"TKV1PHONE{n}", "100", account))
            assert answer["ResultCode"] == code, (account, answer)
        paid = await _simulate(live, 1000, "0712 999 004")
        assert (await _sandbox_payment(live, paid))["state"] == "completed"
        assert (await _confirmation(paid))["member"] == member
        shared = await _simulate(live, 1000, "0712 999 005")
        assert (await _sandbox_payment(live, shared))["state"] == "rejected"
    assert [p["reference"] for p in await _completed(member)] == [paid]


# --- duplicates ---------------------------------------------------------------------------------

async def test_the_same_confirmation_three_times_at_once_credits_once(live):
    member = await make_member()
    await invoice_for(member, 3000)
    body = _c2b_body("TKA1TWICE1", "3000.00", await _number(member))
    answers = await asyncio.gather(*[_post(live.hook("c2b/confirmation"), body) for _ in range(3)])
    assert answers == [{"ResultCode": 0, "ResultDesc": "Success"}] * 3
    cb = await _confirmation("TKA1TWICE1")
    assert cb["outcome"] == "applied" and cb["deliveries"] == 3
    assert len(await _completed(member)) == 1 and await Payment.count() == 1
    assert await PaymentEvent.count().where(PaymentEvent.new_status == "completed") == 2  # completed + settled
    await assert_books_agree()


# 1e30 was once the confirmation that failed to process; it is now read as no amount (issue 12).
@pytest.mark.parametrize("broken, outcome", [("lots", "malformed"), ("1e30", "malformed")])
async def test_a_broken_confirmation_never_takes_the_genuine_ones_place(live, broken, outcome):
    """Issue 11.11: a confirmation that cannot be acted on, then the genuine one with the same
    TransID: the genuine one is its own callback and credits once; repeats of each are one row."""
    member = await make_member()
    inv = await invoice_for(member, 3000)
    account = await _number(member)
    for body in (_c2b_body("TKA1FIRST1", broken, account), _c2b_body("TKA1FIRST1", "3000.00", account)):
        for _ in range(2):
            assert await _post(live.hook("c2b/confirmation"), body) == {"ResultCode": 0, "ResultDesc": "Success"}
    rows = await GatewayCallback.select().order_by(GatewayCallback.id)
    assert [(r["outcome"], r["deliveries"]) for r in rows] == [(outcome, 2), ("applied", 2)]
    [paid] = await _completed(member)
    assert paid["amount"] == 3000 and paid["reference"] == "TKA1FIRST1"
    assert (await Invoice.select(Invoice.status).where(Invoice.id == inv["id"]).first())["status"] == "paid"
    await assert_books_agree()


@pytest.mark.parametrize("first", ["stk", "c2b"])
async def test_an_stk_payment_also_confirmed_over_c2b_counts_once(live, worker, alice, first):
    """gateways.md §4 pitfall 3: the STK callback and the C2B confirmation carry the same receipt."""
    member = await make_member()
    await invoice_for(member, 3000)
    pid = await _ask_stk(alice, member, PHONES["no_callback"])
    payment = await wait_for_status(pid, {"processing"})
    receipt = "TKA1STK" + first.upper()
    stk, c2b = _stk_body(payment, receipt, 3000), _c2b_body(receipt, "3000.00", await _number(member))
    if first == "stk":
        await _post(live.hook("stk"), stk)
        await wait_for_status(pid, {"completed"})
        await _post(live.hook("c2b/confirmation"), c2b)
        cb = await _confirmation(receipt)
    else:
        await _post(live.hook("c2b/confirmation"), c2b)
        cb = await _confirmation(receipt)
        assert (cb["outcome"], cb["note"], cb["processed_at"]) == ("stored", "waiting for the STK callback", None)
        await _post(live.hook("stk"), stk)
        await wait_for_status(pid, {"completed"})
        assert await process(cb["id"]) == "duplicate"  # what the sweeper does a minute later
        cb = await GatewayCallback.select().where(GatewayCallback.id == cb["id"]).first()
    assert cb["outcome"] == "duplicate" and cb["payment"] == pid, cb["note"]
    [paid] = await _completed(member)
    assert (paid["id"], paid["reference"]) == (pid, receipt)
    assert await Payment.count() == 1
    await assert_books_agree()


async def test_the_sandbox_stk_to_the_paybill_credits_once_whatever_the_order(live, worker, alice):
    await _register(live)
    member = await make_member()
    await invoice_for(member, 3000)
    pid = await _ask_stk(alice, member, PHONES["success"])
    paid = await wait_for_status(pid, {"completed"})
    cb = await _confirmation(paid["reference"])
    if cb["outcome"] == "stored":  # the C2B copy came first and waited: the sweeper's turn
        assert await process(cb["id"]) == "duplicate"
        cb = await GatewayCallback.select().where(GatewayCallback.id == cb["id"]).first()
    assert cb["outcome"] == "duplicate" and cb["payment"] == pid
    assert [p["id"] for p in await _completed(member)] == [pid]
    await assert_books_agree()


async def test_an_stk_completed_by_query_gets_its_code_from_its_c2b_copy_and_is_not_credited_again(
        live, worker, alice, queue):
    """The STK query carries no receipt: until the code arrives every page and receipt says it is
    to follow; the Paybill copy finds its STK by member and amount, fills the code in and the
    receipts are made again with it."""
    await _register(live)
    member = await make_member()
    await invoice_for(member, 3000)
    pid = await _ask_stk(alice, member, PHONES["no_callback"])
    await wait_for_status(pid, {"processing"})
    trans_id = (await _sandbox_c2b_for_stk(live))["trans_id"]
    cb = await _confirmation(trans_id)
    assert cb["outcome"] == "stored"
    assert await queue.apply("check_stk", payment_id=pid, timeout=30) == "final"
    await wait_for_status(pid, {"completed"})
    assert 'data-testid="mpesa-code-to-follow"' in (await alice.get(f"/payments/{pid}/status", htmx=True)).text
    assert "M-Pesa code to follow" in (await alice.get(f"/payments/{pid}")).text
    assert "to follow" in await _receipt_text(pid, lambda text: True)

    assert await process(cb["id"]) == "applied"
    assert [(p["id"], p["reference"]) for p in await _completed(member)] == [(pid, trans_id)]
    assert await StaffAlert.count().where(StaffAlert.kind == "c2b_assumed_stk") == 1
    assert trans_id in await _receipt_text(pid, lambda text: "to follow" not in text)
    assert f'data-testid="mpesa-code">{trans_id}' in (await alice.get(f"/payments/{pid}/status", htmx=True)).text
    events = await PaymentEvent.select().where(PaymentEvent.payment == pid).order_by(PaymentEvent.id)
    assert events[-1]["reason"] == f"M-Pesa code {trans_id} received"
    assert await process(cb["id"]) == "applied"  # processed once: a repeat changes nothing
    await assert_books_agree()


async def test_a_late_stk_callback_fills_in_the_code_of_a_payment_its_query_completed(live, worker, alice, queue):
    member = await make_member()
    await invoice_for(member, 3000)
    pid = await _ask_stk(alice, member, PHONES["no_callback"])
    payment = await wait_for_status(pid, {"processing"})
    assert await queue.apply("check_stk", payment_id=pid, timeout=30) == "final"
    await wait_for_status(pid, {"completed"})
    assert "to follow" in await _receipt_text(pid, lambda text: True)
    body = {"Body": {"stkCallback": {
        "MerchantRequestID": payment["gateway_request"], "CheckoutRequestID": payment["gateway_ref"], "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.", "CallbackMetadata": {"Item": [
            {"Name": "Amount", "Value": 3000}, {"Name": "MpesaReceiptNumber", "Value": "TL8LATE0DE"},
            {"Name": "TransactionDate", "Value": 20261207101500}, {"Name": "PhoneNumber", "Value": 254700000009}]}}}}
    async with httpx.AsyncClient() as http:
        await http.post(live.hook(), content=json.dumps(body), headers={"content-type": "application/json"})
    assert (await Payment.select(Payment.reference).where(Payment.id == pid).first())["reference"] == "TL8LATE0DE"
    assert "TL8LATE0DE" in await _receipt_text(pid, lambda text: "to follow" not in text)
    assert len(await _completed(member)) == 1
    await assert_books_agree()


async def _receipt_text(payment_id: int, ready, timeout: float = 30) -> str:
    """The text of the payment's A4 receipt once `ready(text)` (receipts are made by the worker)."""
    from tests.messages.test_receipt_email import _pdf_text

    for _ in range(int(timeout / 0.1)):
        found = await document_store.content("receipt", f"payment:{payment_id}")
        if found and ready(text := _pdf_text(found[1])):
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"the receipt of payment {payment_id} was not made as wanted")


async def _sandbox_c2b_for_stk(live) -> dict:
    async with httpx.AsyncClient(base_url=live.sandbox) as http:
        for _ in range(200):
            payments = [p for p in (await http.get("/_sandbox/daraja/c2b")).json()["payments"]
                        if p["via"] == "stk" and p["notified"]]
            if payments:
                return payments[0]
            await asyncio.sleep(0.05)
    raise AssertionError("the sandbox sent no C2B copy of the STK payment")


async def test_the_unmatched_queue_exports_what_staff_see(live, worker, bob):
    await _register(live)
    trans_id = await _simulate(live, 1500, "=Gym fees")
    assert (await _confirmation(trans_id))["outcome"] == "unmatched"
    r = await bob.get("/mpesa/unmatched.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["mpesa_code"], row["amount"], row["account_typed"], row["phone"]) for row in rows] == [
        (trans_id, "1500.00", "'=Gym fees", "2547 ***** 149")]
    assert 'href="/mpesa/unmatched.csv"' in (await bob.get("/mpesa/unmatched")).text
