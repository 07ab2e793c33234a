"""Paybill confirmations with the payer's phone hidden: C2B v1 sends it as SHA-256 of "2547XXXXXXXX"
(matched against members' phone hashes, and credited), v2 masks it ("2547 ***** 149": only ranks
the members offered on the Unmatched M-Pesa page, never credits). The Daraja sandbox sends both,
by the version of the API the URLs were registered with."""

import asyncio
import hashlib
import json
from decimal import Decimal

import httpx

from portal.gateways.callback_urls import c2b_confirmation_url, c2b_validation_url
from portal.gateways.daraja import DarajaClient
from portal.payments.mpesa.c2b import register_c2b_urls
from portal.reconcile.phones import masked_parts, phone_hash
from tables.billing import Invoice, Payment, PaymentEvent
from tables.gateway import GatewayCallback
from tables.members import Member
from tests.billing.helpers import assert_books_agree, invoice_for
from tests.factories import make_member, make_members

CUSTOMER = "254708374149"  # Safaricom's documented test MSISDN


async def _token(live) -> str:
    async with DarajaClient(live.settings) as client:
        return await client.access_token()


async def _register(live, version: str) -> None:
    if version == "v2":
        assert await register_c2b_urls(live.settings) == "Success"
        return
    async with httpx.AsyncClient(base_url=live.sandbox) as http:
        r = await http.post("/mpesa/c2b/v1/registerurl", headers={"Authorization": f"Bearer {await _token(live)}"}, json={
            "ShortCode": live.settings.daraja_shortcode, "ResponseType": "Completed",
            "ConfirmationURL": c2b_confirmation_url(live.settings), "ValidationURL": c2b_validation_url(live.settings)})
        assert r.status_code == 200 and r.json()["ResponseCode"] == "0", r.text


async def _pay(live, amount: int, account: str, msisdn: str = CUSTOMER) -> dict:
    """A customer pays the Paybill; returns the portal's stored confirmation once processed."""
    async with httpx.AsyncClient(base_url=live.sandbox) as http:
        r = await http.post("/mpesa/c2b/v2/simulate", headers={"Authorization": f"Bearer {await _token(live)}"}, json={
            "ShortCode": int(live.settings.daraja_shortcode), "CommandID": "CustomerPayBillOnline",
            "Amount": amount, "Msisdn": int(msisdn), "BillRefNumber": account})
        assert r.status_code == 200, r.text
    for _ in range(400):
        row = await GatewayCallback.select().where((GatewayCallback.kind == "c2b_confirmation")
                                                   & GatewayCallback.processed_at.is_not_null()).first()
        if row:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError("no confirmation processed")


def test_the_hidden_forms():
    # The v1 form is sha256 hex of the 12-digit number as M-Pesa writes it.
    assert phone_hash(CUSTOMER) == hashlib.sha256(b"254708374149").hexdigest()
    assert masked_parts("2547 ***** 149") == ("2547", "149")
    assert masked_parts("25470****149") == ("25470", "149")
    assert masked_parts("254708374149") is None and masked_parts("hidden") is None
    assert masked_parts("2547 ***** 14") is None  # too little to rank by


async def test_the_phone_hash_follows_the_phone(db):
    member = await make_member(phone=CUSTOMER)
    row = await Member.select(Member.phone_hash).where(Member.id == member).first()
    assert row["phone_hash"] == phone_hash(CUSTOMER)
    await Member.update({Member.phone: "254711000222"}).where(Member.id == member)
    row = await Member.select(Member.phone_hash).where(Member.id == member).first()
    assert row["phone_hash"] == phone_hash("254711000222")
    await make_members(3)  # bulk inserts too
    assert await Member.count().where(Member.phone_hash.is_null()) == 0


async def test_a_v1_hashed_confirmation_is_matched_to_its_member_and_credited(live, worker, alice):
    """Worked example: member with phone 254708374149 owes an invoice of KES 3,000. They pay KES 3,000
    to the Paybill with a wrong account ("gym"). M-Pesa sends MSISDN =
    sha256("254708374149") = 6a1e…; exactly one member's phone hash is that: KES 3,000 credited to
    them, the invoice paid (3,000 - 3,000 = 0 owed)."""
    await _register(live, "v1")
    member = await make_member(first_name="John", phone=CUSTOMER)
    await make_member(phone="254712000149")  # same last digits: irrelevant to a hash
    inv = await invoice_for(member, 3000)
    cb = await _pay(live, 3000, "gym")
    sent = json.loads(cb["body"])["MSISDN"]
    assert sent == hashlib.sha256(CUSTOMER.encode()).hexdigest()
    assert (cb["outcome"], cb["member"]) == ("applied", member), cb["note"]
    assert "hashed by M-Pesa" in cb["note"]
    [paid] = await Payment.select().where(Payment.member == member)
    assert (paid["status"], paid["amount"]) == ("completed", Decimal("3000.00"))
    assert (await Invoice.select(Invoice.status).where(Invoice.id == inv["id"]).first())["status"] == "paid"
    assert await PaymentEvent.count().where((PaymentEvent.new_status == "completed") & (PaymentEvent.kind == "status")) == 1
    await assert_books_agree()


async def test_a_hash_two_members_share_credits_neither_but_offers_both(live, worker, alice):
    await _register(live, "v1")
    await make_member(first_name="Mary", phone=CUSTOMER, number="PTF8001")
    await make_member(first_name="Peter", phone=CUSTOMER, number="PTF8002")
    cb = await _pay(live, 1500, "gym")
    assert (cb["outcome"], cb["member"]) == ("unmatched", None)
    assert await Payment.count() == 0
    page = await alice.get("/mpesa/unmatched")
    assert 'data-member="PTF8001"' in page.text and 'data-member="PTF8002"' in page.text


async def test_a_v2_masked_confirmation_is_never_credited_but_ranks_the_likely_member_first(live, worker, alice):
    """Worked example: M-Pesa shows "2547 ***** 149" and the payer's first name. Members whose phone is
    2547…149: the payer (same first name, an open invoice of exactly the KES 2,500 paid) and another
    (other name, nothing owed). Neither is credited; the payer is offered first, the other second, a
    member whose phone ends 148 not at all. Staff match the first: KES 2,500 credited once."""
    await _register(live, "v2")
    cb = await _pay(live, 2500, "gym")
    body = json.loads(cb["body"])
    assert body["MSISDN"] == "2547 ***** 149"
    first = body["FirstName"]
    assert (cb["outcome"], cb["payment"]) == ("unmatched", None)
    # The members come after the money (their phones could not have credited it anyway: masked).
    other = await make_member(first_name="Zawadi", phone="254711222149", number="PTF7001")
    payer = await make_member(first_name=first.title(), phone=CUSTOMER, number="PTF7002")
    await make_member(first_name=first.title(), phone="254708374148", number="PTF7003")
    await invoice_for(payer, 2500)
    page = await alice.get("/mpesa/unmatched")
    assert page.status_code == 200
    likely = [chunk.split('"', 1)[0] for chunk in page.text.split('data-testid="likely-member" data-member="')[1:]]
    assert likely == ["PTF7002", "PTF7001"]
    assert await Payment.count() == 0
    r = await alice.post(f"/mpesa/unmatched/{cb['id']}/match", {"member_id": str(payer)})
    assert r.status_code == 303
    [paid] = await Payment.select().where(Payment.member == payer)
    assert (paid["status"], paid["amount"]) == ("completed", Decimal("2500.00"))
    assert await Payment.count().where(Payment.member == other) == 0
    await assert_books_agree()


async def test_the_unmatched_page_query_count_is_fixed(live, alice):
    """3 queries whatever the rows: the session, the unmatched rows, the likely members of every row (one)."""
    await make_members(300)

    async def post(i: int, msisdn: str) -> None:
        body = {"TransactionType": "Pay Bill", "TransID": f"TKQ{i:07d}", "TransTime": "20261207101500",
                "TransAmount": "100.00", "BusinessShortCode": "174379", "BillRefNumber": "nobody", "InvoiceNumber": "",
                "OrgAccountBalance": "", "ThirdPartyTransID": "", "MSISDN": msisdn, "FirstName": "ACHIENG",
                "MiddleName": "", "LastName": ""}
        async with httpx.AsyncClient() as http:
            assert (await http.post(live.hook("c2b/confirmation"), json=body)).status_code == 200

    await post(0, "2547 ***** 001")
    one = await alice.get("/mpesa/unmatched")
    assert one.status_code == 200 and 'data-testid="likely-member"' in one.text
    for i in range(1, 30):
        await post(i, f"2547 ***** {i:03d}" if i % 2 else phone_hash(f"25479{i:07d}"))
    many = await alice.get("/mpesa/unmatched")
    assert many.text.count('data-testid="unmatched-row"') == 30
    assert int(many.headers["x-query-count"]) == int(one.headers["x-query-count"]) == 3


async def test_the_migration_back_fills_the_hashes_of_existing_members(db):
    """Members from before the column (hash empty, as the trigger was not there): the migration's
    back-fill gives each its phone's hash."""
    from piccolo.engine import engine_finder
    from piccolo.querystring import QueryString

    from tables.piccolo_migrations.portal_2026_12_08t06_00_00_000000 import FORWARDS

    await make_members(5)
    engine = engine_finder()
    async with engine.transaction():
        await engine.run_querystring(QueryString("SET LOCAL session_replication_role = replica"))  # triggers off
        await engine.run_querystring(QueryString("UPDATE member SET phone_hash = NULL"))
    assert await Member.count().where(Member.phone_hash.is_null()) == 5
    [backfill] = [s for s in FORWARDS if s.startswith("UPDATE member")]
    await engine.run_ddl(backfill)
    for row in await Member.select(Member.phone, Member.phone_hash):
        assert row["phone_hash"] == phone_hash(row["phone"])
