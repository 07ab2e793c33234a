"""M-Pesa Paybill (C2B): validation answers, confirmations, and the unmatched queue.

    validation   -> stored raw, then validation_answer(): "0" or a reject code (within ~8 s)
    confirmation -> stored raw, then process_c2b_confirmation() under the receipt lock:
                    the STK twin already recorded?  -> duplicate
                    an STK for this money in flight? -> wait (the sweeper comes back)
                    account = member number / invoice number / a member's phone typed as
                    the account / (old unmasked) MSISDN = a member's phone
                        -> Payment(mpesa, completed) through complete_payment -> applied
                    else -> unmatched (staff alert, /mpesa/unmatched): nothing credited
    match_unmatched(): staff pick the member; the same path, idempotent by TransID.

An STK Push to the Paybill is confirmed twice by M-Pesa: the STK callback and a C2B confirmation
whose TransID is the STK MpesaReceiptNumber (gateways.md §4 pitfall 3). Both paths take the same
advisory lock on that receipt (portal.payments.mpesa._receipt_already_recorded), after the member
lock, so whichever comes second finds the first. MSISDN is hashed (v1) or masked (v2): it matches
when it arrives as a full number, or as the hash of exactly one member's phone (v1); a masked
number only ranks candidates on the unmatched page (portal.reconcile.phones).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from portal import audit
from portal.billing.invoices import lock_member
from portal.callbacks.store import alert, loads
from portal.documents.requests import request_receipts
from portal.gateways.callback_urls import c2b_confirmation_url, c2b_validation_url
from portal.gateways.daraja import DarajaClient
from portal.lib import db
from portal.lib.clock import now
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from portal.lib.money import CENT, LARGEST
from portal.lib.phones import PhoneError, is_stored_form, normalise_phone
from portal.payments import state
from portal.payments.mpesa.stk import _receipt_already_recorded, fill_in_code, parse_stk_callback
from portal.payments.service import Recorded, complete_payment
from portal.reconcile.phones import members_with_hash
from portal.settings import get_settings
from tables.billing import Payment
from tables.gateway import GatewayCallback, StaffAlert
from tables.members import Member
from tables.statuses import OPEN_INVOICE, OPEN_INVOICE_SQL

log = logging.getLogger(__name__)

ACCEPT = "0"
INVALID_ACCOUNT = "C2B00012"
INVALID_AMOUNT = "C2B00013"
OTHER_ERROR = "C2B00016"

# An STK Push for the same member and amount younger than this is taken to be the source of a
# C2B confirmation that arrives before its STK callback.
STK_TWIN_WINDOW = timedelta(minutes=10)

_TRANS_ID = re.compile(r"[A-Za-z0-9]{1,40}")
_HASHED = re.compile(r"[0-9a-fA-F]{64}")
_INVOICE = re.compile(r"INV-?([0-9]{4})-?([0-9]{1,6})")


@dataclass(frozen=True)
class C2BConfirmation:
    trans_id: str
    amount: Decimal
    account: str  # BillRefNumber as typed (stripped); "" for tills
    msisdn: str  # as sent: hashed, masked or (old format) full
    name: str
    trans_time: str
    short_code: str
    via: str = "Paybill"  # or "prompt": an STK result with no prompt of ours (stk._place_unknown_result)

    @property
    def phone(self) -> str:
        """The payer's number when M-Pesa sent it in full (old format), else ""."""
        return self.msisdn if is_stored_form(self.msisdn) else ""

    @property
    def masked_phone(self) -> str:
        return mask_msisdn(self.msisdn)


def mask_msisdn(msisdn: str) -> str:
    """What staff see: Safaricom's own masking, applied to full numbers too."""
    s = (msisdn or "").strip()
    if not s:
        return ""
    if _HASHED.fullmatch(s):
        return "hidden by M-Pesa"
    if is_stored_form(s):
        return f"{s[:4]} ***** {s[-3:]}"
    return s[:20]


def _text(data: dict, key: str, limit: int = 100) -> str:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, (int, Decimal)):
        value = str(value)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _amount(value) -> Decimal:
    """TransAmount: "10" or "5.00" (be liberal: a JSON number too). ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ValueError(f"TransAmount {value!r} is not an amount")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, ValueError):
        raise ValueError(f"TransAmount {value!r} is not an amount") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"TransAmount {value!r} is not a positive amount")
    if amount >= LARGEST:  # no M-Pesa payment is this large, and no payment row could hold it
        raise ValueError(f"TransAmount {str(value)[:30]!r} is more than any amount the portal keeps")
    if amount != amount.quantize(CENT):
        raise ValueError(f"TransAmount {value!r} has more than 2 decimal places")
    return amount


def parse_confirmation(data) -> C2BConfirmation:
    """A C2B validation/confirmation body (all values strings; InvoiceNumber and
    ThirdPartyTransID may be null). ValueError says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    trans_id = data.get("TransID")
    if not isinstance(trans_id, str) or not _TRANS_ID.fullmatch(trans_id.strip()):
        raise ValueError(f"TransID {trans_id!r} is missing or not an M-Pesa code")
    if "TransAmount" not in data:
        raise ValueError("TransAmount is missing")
    amount = _amount(data["TransAmount"])
    name = " ".join(filter(None, (_text(data, k, 40) for k in ("FirstName", "MiddleName", "LastName"))))
    return C2BConfirmation(trans_id=trans_id.strip().upper(), amount=amount, account=_text(data, "BillRefNumber", 40),
                           msisdn=_text(data, "MSISDN", 100), name=name, trans_time=_text(data, "TransTime", 20),
                           short_code=_text(data, "BusinessShortCode", 10))


def money_of(kind: str, body: str) -> C2BConfirmation:
    """The money an unmatched callback carries, read from its stored body: a Paybill
    confirmation, or a successful STK result for a prompt the portal has no record of."""
    if kind in ("c2b_pull", "c2b_statement"):  # found by reconciliation (portal.reconcile.sources)
        from portal.reconcile.sources import as_confirmation

        return parse_confirmation(as_confirmation(kind, body))
    data = loads(body)
    if kind != "stk":
        return parse_confirmation(data)
    checkout, outcome = parse_stk_callback(data)
    if outcome.code != "0" or outcome.amount is None:
        raise ValueError("this M-Pesa result moved no money")
    return C2BConfirmation(trans_id=(outcome.receipt or checkout)[:40], amount=outcome.amount, account="",
                           msisdn=outcome.phone, name="", trans_time="", short_code="", via="prompt")


def normalise_account(account: str) -> str:
    """What payers type as the account: case and spaces do not matter."""
    return "".join((account or "").split()).upper()


def invoice_number(normalised: str) -> str:
    """INV-2026-000123 also as INV2026000123, inv 2026 123..."""
    m = _INVOICE.fullmatch(normalised)
    return f"INV-{m.group(1)}-{int(m.group(2)):06d}" if m else normalised


def account_phone(normalised: str) -> str:
    """Members often type their phone as the account (0712345678, 254712345678, 712345678):
    that phone as members' phones are stored, or "" when the account is not a phone number."""
    try:
        return normalise_phone(normalised)
    except PhoneError:
        return ""


# --- validation -------------------------------------------------------------------------------

# A phone typed as the account is known when exactly one member has it (see find_member).
KNOWN_ACCOUNT_SQL = f"""
SELECT EXISTS (SELECT 1 FROM member WHERE upper(member_number) = {{}})
    OR EXISTS (SELECT 1 FROM invoice WHERE number = {{}} AND status IN {OPEN_INVOICE_SQL})
    OR (SELECT count(*) FROM (SELECT 1 FROM member WHERE phone = {{}} LIMIT 2) AS same_phone) = 1 AS known
"""


async def validation_answer(data: dict) -> str:
    """"0" to accept a Paybill payment, or M-Pesa's reject code. Whole shillings of at least 1;
    the account must be a member number, an open invoice number or the phone of exactly one
    member, unless unknown accounts are accepted (C2B_ACCEPT_UNKNOWN_ACCOUNTS, the default: they
    go to the unmatched queue).
    At most one indexed query: this answers inside Daraja's ~8 s window."""
    if not isinstance(data, dict) or not isinstance(data.get("TransID"), str):
        return OTHER_ERROR
    try:
        amount = _amount(data.get("TransAmount"))
    except ValueError:
        return INVALID_AMOUNT
    if amount < 1 or amount != amount.to_integral_value():
        return INVALID_AMOUNT
    if get_settings().c2b_accept_unknown_accounts:
        return ACCEPT
    account = normalise_account(_text(data, "BillRefNumber", 40))
    if not account:
        return INVALID_ACCOUNT
    rows = await GatewayCallback.raw(KNOWN_ACCOUNT_SQL, account, invoice_number(account), account_phone(account))
    return ACCEPT if rows and rows[0]["known"] else INVALID_ACCOUNT


async def process_c2b_validation(row: dict, data) -> tuple[str, str]:
    """Keep the verdict on the stored validation request; the hook then answers M-Pesa by the
    same rules. Money only moves on the confirmation. Never "rejected"/"malformed" for a
    readable request: the hook answers C2B00016 to those outcomes, whatever the rules say."""
    code = await validation_answer(data)
    if code == ACCEPT:
        return "applied", "validation accepted (0); the confirmation carries the money"
    return "applied", f"validation refused ({code}); M-Pesa takes no money"


# --- matching ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Match:
    member_id: int
    member_number: str
    invoice_id: int | None  # the invoice to settle first (an open one named as the account)
    how: str


MATCH_SQL = """
(SELECT 1 AS rank, id AS member, member_number, NULL::integer AS invoice, NULL::varchar AS status,
        'member number' AS how
 FROM member WHERE upper(member_number) = {})
UNION ALL
(SELECT 2, i.member, m.member_number, i.id, i.status, 'invoice ' || i.number
 FROM invoice i JOIN member m ON m.id = i.member WHERE i.number = {})
ORDER BY rank LIMIT 1
"""


async def find_member(c2b: C2BConfirmation) -> Match | None:
    """The account typed against member numbers, then invoice numbers (that invoice is paid
    first), then members' phones; then, only when M-Pesa sent the payer's number in full, the
    member with that phone. validation_answer accepts the same accounts."""
    account = normalise_account(c2b.account)
    if account:
        rows = await GatewayCallback.raw(MATCH_SQL, account, invoice_number(account))
        if rows:
            r = rows[0]
            invoice = r["invoice"] if r["status"] in OPEN_INVOICE else None
            return Match(r["member"], r["member_number"], invoice, r["how"])
        phone = account_phone(account)
        match = await _only_member_with(phone, "phone number as the account") if phone else None
        if match:
            return match
    if c2b.phone:
        return await _only_member_with(c2b.phone, "phone number")
    hashed = await members_with_hash(c2b.msisdn)  # C2B v1: the phone's SHA-256 (a masked one never credits)
    if len(hashed) == 1:
        return Match(hashed[0]["id"], hashed[0]["member_number"], None, "phone number (hashed by M-Pesa)")
    return None


async def _only_member_with(phone: str, how: str) -> Match | None:
    """The member with this phone when only one has it. Two members may share one (a family's
    phone): it does not say which of them paid, so the payment is treated as an unknown account
    (staff match it from the unmatched queue) rather than credited to a guess."""
    rows = await GatewayCallback.raw("SELECT id, member_number FROM member WHERE phone = {} LIMIT 2", phone)
    return Match(rows[0]["id"], rows[0]["member_number"], None, how) if len(rows) == 1 else None


# --- recording --------------------------------------------------------------------------------

def idempotency_key(trans_id: str) -> str:
    return f"c2b:{trans_id}"


async def _already_recorded(c2b: C2BConfirmation) -> tuple[dict | None, str]:
    """Under the receipt lock (taken here): the payment this M-Pesa code is already recorded as
    (its STK twin, or this confirmation applied before), and how to say so."""
    twin = await _receipt_already_recorded(c2b.trans_id, 0)
    if twin:
        return twin, f"M-Pesa {c2b.trans_id} is already recorded as payment {twin['id']}"
    own = await Payment.select(Payment.id, Payment.status).where(
        Payment.idempotency_key == idempotency_key(c2b.trans_id)).first()
    if own:
        return own, f"M-Pesa {c2b.trans_id} is already recorded as payment {own['id']}"
    return None, ""


async def _stk_in_flight(member_id: int, amount: Decimal) -> dict | None:
    """An STK Push for the same member and amount, recent and not yet final."""
    return await Payment.select(Payment.id).where(
        (Payment.member == member_id) & (Payment.method == "mpesa") & (Payment.amount == amount)
        & Payment.status.is_in([state.PENDING, state.PROCESSING])
        & (Payment.created_at > now() - STK_TWIN_WINDOW)).first()


async def _stk_completed_without_receipt(member_id: int, amount: Decimal) -> dict | None:
    """An STK Push completed by an STK query (which carries no receipt number) for the same
    member and amount, recently: this confirmation is its Paybill copy."""
    return await Payment.select(Payment.id).where(
        (Payment.member == member_id) & (Payment.method == "mpesa") & (Payment.amount == amount)
        & (Payment.status == state.COMPLETED) & Payment.gateway_ref.is_not_null() & (Payment.reference == "")
        & (Payment.created_at > now() - STK_TWIN_WINDOW)).order_by(Payment.id).first()


async def _record(c2b: C2BConfirmation, match: Match, *, staff_id: int | None, callback_id: int,
                  reason: str) -> Recorded:
    """Create the payment for this M-Pesa code (once) and complete it: settles the named
    invoice, then the oldest open ones, keeps any excess as credit, numbers the receipt.
    Caller holds the member lock and the receipt lock."""
    gateway_event = f"callback:{callback_id}"
    who = f" from {c2b.masked_phone}" if c2b.masked_phone else ""
    payment_id, created = await state.open_payment(
        {"member": match.member_id, "invoice": match.invoice_id, "method": "mpesa", "amount": c2b.amount,
         "currency": get_settings().currency, "reference": c2b.trans_id, "idempotency_key": idempotency_key(c2b.trans_id),
         "staff": staff_id, "location": None, "note": f"M-Pesa {c2b.via}, account {c2b.account or '(none)'}"[:500],
         "phone": c2b.phone, "gateway_ref": c2b.trans_id},
        reason=f"M-Pesa {c2b.via} payment {c2b.trans_id}{who}, account {c2b.account or '(none)'}"[:500],
        staff_id=staff_id, gateway_event=gateway_event,
        details={"matched_by": match.how, "trans_time": c2b.trans_time, "short_code": c2b.short_code},
        same_request=False)
    if not created:
        return Recorded(await Payment.select().where(Payment.id == payment_id).first(), False)
    payment = await complete_payment(payment_id, reason=reason, staff_id=staff_id, gateway_event=gateway_event)
    await _close_copies(c2b.trans_id, payment_id, staff_id, callback_id)
    return Recorded(payment, True)


async def _close_copies(receipt: str, payment_id: int, staff_id: int | None, callback_id: int) -> None:
    """M-Pesa tells of an STK payment twice (the STK result and the Paybill confirmation): once
    one copy is credited, the other, if it waits in the Unmatched queue, is the same money."""
    rows = await GatewayCallback.raw(
        f"UPDATE gateway_callback SET outcome = 'duplicate', payment = {{}}, "
        f"note = left('the same money as payment ' || {{}} || '; was: ' || note, 2000) "
        f"WHERE {UNMATCHED_WHERE} AND id <> {{}} AND strpos(body, {{}}) > 0 RETURNING id",
        payment_id, str(payment_id), callback_id, f'"{receipt}"')
    for row in rows:
        await _resolve_alerts(row["id"], staff_id)


async def process_c2b_confirmation(row: dict, data) -> tuple[str, str]:
    try:
        c2b = parse_confirmation(data)
    except ValueError as e:
        return "malformed", str(e)
    callback_id = row["id"]
    match = await find_member(c2b)
    if match:
        # Member lock before the receipt lock: the order apply_stk_result takes them in.
        await lock_member(match.member_id)
    await GatewayCallback.update({GatewayCallback.amount: str(c2b.amount),
                                  GatewayCallback.member: match.member_id if match else None}).where(
        GatewayCallback.id == callback_id)
    done, why = await _already_recorded(c2b)
    if done:
        await GatewayCallback.update({GatewayCallback.payment: done["id"]}).where(GatewayCallback.id == callback_id)
        return "duplicate", why
    if match is None:
        shown = c2b.account or "(none)"
        return "unmatched", f"account {shown} matches no member or invoice"
    if await _stk_in_flight(match.member_id, c2b.amount):
        # Most likely the Paybill copy of an STK Push whose callback has not come yet: that
        # callback settles it and this then finds the duplicate (the sweeper comes back).
        return "stored", "waiting for the STK callback"
    twin = await _stk_completed_without_receipt(match.member_id, c2b.amount)
    if twin:
        await fill_in_code(await state.lock(twin["id"]), c2b.trans_id, f"callback:{callback_id}")
        await GatewayCallback.update({GatewayCallback.payment: twin["id"]}).where(GatewayCallback.id == callback_id)
        await alert("c2b_assumed_stk", f"M-Pesa {c2b.trans_id} ({c2b.amount}, account {c2b.account}) was taken to be "
                    f"the Paybill copy of STK payment {twin['id']}, which M-Pesa confirmed without a receipt number: "
                    "check the M-Pesa statement", payment_id=twin["id"], callback_id=callback_id)
        # "applied": the payment changed (its code and receipts), though no money moved again.
        return "applied", f"taken as the Paybill copy of STK payment {twin['id']}: its M-Pesa code filled in"
    recorded = await _record(c2b, match, staff_id=None, callback_id=callback_id,
                             reason=f"M-Pesa Paybill payment received (matched by {match.how})")
    await GatewayCallback.update({GatewayCallback.payment: recorded.payment["id"]}).where(GatewayCallback.id == callback_id)
    return "applied", f"{c2b.amount} credited to {match.member_number} (matched by {match.how})"


# --- the unmatched queue ----------------------------------------------------------------------

# Money waiting for staff: Paybill payments no account matched, and prompt results no request of
# ours could be tied to (their amount is recorded; a result that moved no money has none).
# A payment a manager settled on the reconciliation page ("not ours", "explained": the resolution of
# its receipt, `mpesa:<code>`, portal.reconcile.actions) waits no more: the one rule both pages read,
# so one resolution counts on the reconciliation page, here, on the badge and in the digest.
UNMATCHED_WHERE = ("gateway = 'daraja' AND outcome = 'unmatched' "
                   "AND (kind IN ('c2b_confirmation', 'c2b_pull', 'c2b_statement') OR (kind = 'stk' AND amount <> '')) "
                   "AND NOT EXISTS (SELECT 1 FROM reconcile_resolution rr "
                   "WHERE rr.key = 'mpesa:' || gateway_callback.external_id)")


def resolution_key(receipt: str) -> str:
    """The reconciliation page's key for the M-Pesa money of `receipt` (its lock and its resolution)."""
    return f"mpesa:{receipt}"


async def lock_resolution(key: str) -> None:
    """The lock every settling of one difference takes first (transaction-long): Match and renew
    here, and every action on the reconciliation page, so two of them never both act on the money."""
    await GatewayCallback.raw("SELECT pg_advisory_xact_lock(hashtext({}))", f"reconcile:{key}")


@dataclass(frozen=True)
class Unmatched:
    id: int
    received_at: object
    deliveries: int
    trans_id: str
    amount: Decimal | None
    account: str
    phone: str  # masked
    name: str
    trans_time: str
    via: str = "Paybill"
    msisdn: str = ""  # as M-Pesa sent it (hashed, masked or full): ranks candidates (portal.reconcile.phones)


async def unmatched_count() -> int:
    """Paybill payments waiting for staff to match them (the navigation badge)."""
    rows = await GatewayCallback.raw(f"SELECT count(*) AS n FROM gateway_callback WHERE {UNMATCHED_WHERE}")
    return rows[0]["n"]


async def unmatched_payments(limit: int = 200) -> list[Unmatched]:
    rows = await GatewayCallback.raw(
        f"SELECT id, kind, body, received_at, deliveries FROM gateway_callback WHERE {UNMATCHED_WHERE} "
        "ORDER BY received_at DESC, id DESC LIMIT {}", limit)
    found = []
    for r in rows:
        try:
            c2b = money_of(r["kind"], r["body"])
            found.append(Unmatched(r["id"], r["received_at"], r["deliveries"], c2b.trans_id, c2b.amount, c2b.account,
                                   c2b.masked_phone, c2b.name, c2b.trans_time, c2b.via, c2b.msisdn))
        except ValueError:  # cannot happen for rows the processor parsed; show what there is
            found.append(Unmatched(r["id"], r["received_at"], r["deliveries"], "?", None, "", "", "", ""))
    return found


async def _staff_name(staff_id: int) -> str:
    rows = await GatewayCallback.raw(
        "SELECT u.username, u.first_name, u.last_name FROM staff s JOIN piccolo_user u ON u.id = s.user "
        "WHERE s.id = {}", staff_id)
    if not rows:
        raise NotFound("staff")
    r = rows[0]
    return " ".join(filter(None, [r["first_name"], r["last_name"]])) or r["username"]


async def match_unmatched(callback_id: int, member_id: int, staff_id: int, invoice_id: int | None = None) -> Recorded:
    """Staff's "Match and renew": an unmatched Paybill payment becomes a completed payment of
    the chosen member (oldest open invoice first, or `invoice_id`), its alert is resolved and the
    callback says who matched it. Matching again returns the same payment."""
    async with db.transaction():
        # The receipt's lock first (its code never changes), then the row: the order the
        # reconciliation page's actions take them in.
        code = await GatewayCallback.select(GatewayCallback.external_id).where(GatewayCallback.id == callback_id).first()
        if code and code["external_id"]:
            await lock_resolution(resolution_key(code["external_id"]))
        row = await GatewayCallback.select().where(GatewayCallback.id == callback_id).lock_rows().first()
        if row is None or row["gateway"] != "daraja" or row["kind"] not in ("c2b_confirmation", "stk", "c2b_pull",
                                                                            "c2b_statement"):
            raise NotFound("M-Pesa payment")
        if row["outcome"] in ("applied", "duplicate") and row["payment"]:
            payment = await Payment.select().where(Payment.id == row["payment"]).first()
            return Recorded(payment, False)
        if row["outcome"] != "unmatched":
            raise RuleBroken(S_("This M-Pesa payment is not waiting to be matched"))
        if not await GatewayCallback.raw(f"SELECT 1 FROM gateway_callback WHERE id = {{}} AND {UNMATCHED_WHERE}",
                                         callback_id):
            raise RuleBroken(S_("A manager settled this M-Pesa payment on the reconciliation page: it is not waiting "
                                "to be matched"))
        try:
            c2b = money_of(row["kind"], row["body"])
        except ValueError as e:
            raise RuleBroken(f"This M-Pesa notification cannot be read: {e}") from None
        member = await lock_member(member_id)
        member_number = (await Member.select(Member.member_number).where(Member.id == member_id).first())["member_number"]
        if invoice_id is not None:
            rows = await GatewayCallback.raw("SELECT status FROM invoice WHERE id = {} AND member = {}", invoice_id,
                                             member_id)
            if not rows or rows[0]["status"] not in OPEN_INVOICE:
                raise RuleBroken(S_("That invoice is not open"))
        name = await _staff_name(staff_id)
        done, why = await _already_recorded(c2b)
        if done:
            # Recorded meanwhile by another path (its STK twin): nothing more to credit.
            await GatewayCallback.update({GatewayCallback.outcome: "duplicate", GatewayCallback.payment: done["id"],
                                          GatewayCallback.note: why}).where(GatewayCallback.id == callback_id)
            await _resolve_alerts(callback_id, staff_id)
            return Recorded(await Payment.select().where(Payment.id == done["id"]).first(), False)
        match = Match(member_id, member_number, invoice_id, f"staff ({name})")
        recorded = await _record(c2b, match, staff_id=staff_id, callback_id=callback_id,
                                 reason=f"M-Pesa {c2b.via} payment matched to {member_number} by {name}")
        payment_id = recorded.payment["id"]
        await GatewayCallback.update({
            GatewayCallback.outcome: "applied", GatewayCallback.payment: payment_id, GatewayCallback.member: member_id,
            GatewayCallback.processed_at: row["processed_at"] or now(),
            GatewayCallback.note: (f"matched to {member_number} ({member['first_name']} {member['last_name']}) by {name}; "
                                   f"was: {row['note']}")[:2000],
        }).where(GatewayCallback.id == callback_id)
        await _resolve_alerts(callback_id, staff_id)
        await audit.record("mpesa.c2b_matched", "gateway_callback", callback_id, staff_id=staff_id,
                           details={"trans_id": c2b.trans_id, "amount": str(c2b.amount), "account": c2b.account,
                                    "member": member_id, "member_number": member_number, "payment": payment_id,
                                    "receipt": recorded.payment["receipt_number"]})
    if recorded.created:
        await _request_receipts(payment_id)
    return recorded


async def _resolve_alerts(callback_id: int, staff_id: int) -> None:
    await StaffAlert.update({StaffAlert.resolved: True, StaffAlert.resolved_by: staff_id,
                             StaffAlert.resolved_at: now()}).where(
        (StaffAlert.callback == callback_id) & (StaffAlert.resolved == False))  # noqa: E712


async def _request_receipts(payment_id: int) -> None:
    try:
        await request_receipts(payment_id)
    except RuntimeError:  # no queue in this process (a script): the documents sweeper makes them
        log.debug("no queue: receipts of payment %s left to the sweeper", payment_id)


# --- set-up -----------------------------------------------------------------------------------

async def register_c2b_urls(settings) -> str:
    """Tell Daraja where Paybill payments are validated and confirmed (`portal mpesa
    register-urls`). Returns Daraja's ResponseDescription."""
    async with DarajaClient(settings) as client:
        registered = await client.register_c2b_urls(c2b_confirmation_url(settings), c2b_validation_url(settings))
    return registered.response_description
