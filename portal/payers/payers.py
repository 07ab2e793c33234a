"""Payers for others: a parent or a company responsible for several members (tables/payers.py).

The form is read here (text in, clean values or per-field messages out, like portal/lib/forms.py),
and the pages' queries are here, each a fixed number of statements whatever the number of
members or invoices.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Mapping

from portal import audit
from portal.lib.errors import NotFound, RuleBroken
from portal.lib.i18n import S_
from portal.lib.phones import PhoneError, normalise_phone
from tables.members import Member
from tables.payers import Payer, PayerMember

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# KRA PIN: a letter (P for companies, A for individuals), nine digits, a letter: P051234567X.
KRA_PIN_RE = re.compile(r"^[A-Z][0-9]{9}[A-Z]$")
KINDS = {"person": "Parent or person", "company": "Company"}
FIELDS = ("kind", "name", "phone", "email", "address", "kra_pin")
# "Recently paid" on a statement: invoices settled within this many days stay listed.
RECENT_DAYS = 90


def payer_form(form: Mapping[str, str]) -> tuple[dict, dict]:
    """(values as typed + "clean", errors by field). A person needs a name and a phone; a company
    a name, a postal address and a KRA PIN in the KRA's format (spaces dropped, upper-cased)."""
    values = {k: (form.get(k) or "").strip() for k in FIELDS}
    errors: dict[str, str] = {}
    kind = values["kind"]
    if kind not in KINDS:
        errors["kind"] = S_("Choose a parent or person, or a company")
    if not values["name"]:
        errors["name"] = S_("Name is required")
    elif len(values["name"]) > 120:
        errors["name"] = S_("Name is too long (120 characters at most)")
    phone = ""
    if values["phone"]:
        try:
            phone = normalise_phone(values["phone"])
        except PhoneError as e:
            errors["phone"] = str(e)[:1].upper() + str(e)[1:]
    elif kind == "person":
        errors["phone"] = S_("Enter a phone number")
    email = values["email"].lower()
    if email and (len(email) > 254 or not EMAIL_RE.match(email)):
        errors["email"] = S_("That does not look like an email address")
    # One line per line as typed (a textarea sends CRLF), blank lines and stray spaces dropped.
    values["address"] = "\n".join(line.strip() for line in values["address"].splitlines() if line.strip())
    if len(values["address"]) > 500:
        errors["address"] = S_("Address is too long (500 characters at most)")
    elif kind == "company" and not values["address"]:
        errors["address"] = S_("Enter the company's postal address (it is printed on invoices)")
    pin = re.sub(r"\s+", "", values["kra_pin"]).upper()
    if pin and not KRA_PIN_RE.match(pin):
        errors["kra_pin"] = S_("A KRA PIN is a letter, 9 digits and a letter, like P051234567X")
    elif kind == "company" and not pin:
        errors["kra_pin"] = S_("Enter the company's KRA PIN (it is printed on invoices as the buyer's PIN)")
    values["clean"] = {"kind": kind, "name": values["name"], "phone": phone, "email": email,
                       "address": values["address"], "kra_pin": pin}
    return values, errors


def form_values(payer: dict) -> dict:
    phone = payer["phone"]
    return {"kind": payer["kind"], "name": payer["name"], "phone": ("0" + phone[3:]) if phone else "",
            "email": payer["email"], "address": payer["address"], "kra_pin": payer["kra_pin"]}


async def create_payer(clean: dict, staff_id: int | None) -> int:
    row = (await Payer.insert(Payer(**clean, created_by=staff_id)).returning(Payer.id))[0]
    await audit.record("payer.created", "payer", row["id"], staff_id=staff_id, details=clean)
    return row["id"]


async def update_payer(payer_id: int, clean: dict, staff_id: int | None) -> None:
    """Invoices already issued keep the name, address and PIN they were issued with
    (invoice_bill_to); only invoices from now on carry the new details."""
    await get_payer(payer_id)
    await Payer.update(clean).where(Payer.id == payer_id)
    await audit.record("payer.updated", "payer", payer_id, staff_id=staff_id, details=clean)


async def get_payer(payer_id: int) -> dict:
    row = await Payer.select().where(Payer.id == payer_id).first()
    if not row:
        raise NotFound("payer")
    return row


OPEN = "('open', 'partially_paid')"

LIST_SQL = f"""
SELECT p.id, p.kind, p.name, p.phone, p.email, p.kra_pin,
       (SELECT count(*) FROM payer_member pm WHERE pm.payer = p.id) AS members,
       coalesce((SELECT sum(i.total - i.paid) FROM invoice_bill_to b JOIN invoice i ON i.id = b.invoice
                 WHERE b.payer = p.id AND i.status IN {OPEN}), 0) AS owed,
       count(*) OVER () AS full_count
FROM payer p
WHERE {{}} = '' OR p.name ILIKE '%%' || {{}} || '%%' OR p.kra_pin = upper({{}})
ORDER BY lower(p.name), p.id
LIMIT {{}} OFFSET {{}}
"""

PAGE_SIZE = 50


async def payer_list(q: str, page: int) -> tuple[list[dict], int]:
    """One query: the payers on this page, each with its members counted and what it owes
    (open invoices addressed to it), and how many payers match in all."""
    q = q.strip()[:120]
    rows = await Payer.raw(LIST_SQL, q, q.replace("%", "").replace("_", r"\_"), q, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    return rows, (rows[0]["full_count"] if rows else 0)


MEMBERS_SQL = """
SELECT m.id, m.member_number, m.first_name || ' ' || m.last_name AS name, m.phone, pm.linked_at,
       coalesce((SELECT sum(i.total - i.paid) FROM invoice i
                 WHERE i.member = m.id AND i.status IN ('open', 'partially_paid')), 0) AS owed
FROM payer_member pm JOIN member m ON m.id = pm.member
WHERE pm.payer = {}
ORDER BY m.last_name, m.first_name, m.id
"""

# Open invoices addressed to the payer, in the order a payment by the payer settles them. Each
# invoice addressed to it is looked up on its own (the lateral's OFFSET 0 keeps it a probe of
# invoice_open_id): joined, the planner hashed every open invoice of the gym instead (6,222 at
# 20,000 members / 500,000 payments, 23.5 ms for a payer of 248 invoices; 5.9 ms so, load about 10).
OPEN_INVOICES_SQL = f"""
SELECT i.id, i.number, i.issue_date, i.due_date, i.total, i.paid, i.total - i.paid AS balance, i.status,
       i.currency, m.id AS member_id, m.member_number, m.first_name || ' ' || m.last_name AS member_name
FROM invoice_bill_to b
CROSS JOIN LATERAL (SELECT * FROM invoice i WHERE i.id = b.invoice AND i.status IN {OPEN} OFFSET 0) i
JOIN member m ON m.id = i.member
WHERE b.payer = {{}}
ORDER BY i.due_date, i.number, i.id
"""

PAYMENTS_SQL = """
SELECT p.id, p.receipt_number, p.method, p.amount, p.currency, p.status, p.reference, p.created_at
FROM payer_payment pp JOIN payment p ON p.id = pp.payment
WHERE pp.payer = {}
ORDER BY p.id DESC LIMIT 20
"""


async def payer_members(payer_id: int) -> list[dict]:
    return await Payer.raw(MEMBERS_SQL, payer_id)


async def payer_open_invoices(payer_id: int) -> list[dict]:
    return await Payer.raw(OPEN_INVOICES_SQL, payer_id)


async def payer_payments(payer_id: int) -> list[dict]:
    return await Payer.raw(PAYMENTS_SQL, payer_id)


async def payer_of_member(member_id: int) -> dict | None:
    """The payer a member is linked to now (None: the member pays for themselves)."""
    return await PayerMember.select(PayerMember.payer.id, PayerMember.payer.name, PayerMember.payer.kind).where(
        PayerMember.member == member_id).first()


async def link_member(payer_id: int, member_number: str, staff_id: int | None, *, member_id: int | None = None) -> dict:
    """Link a member (by member number, or by id from the member's page) to this payer; a member
    linked to another payer moves here. Invoices already issued keep the bill-to they were issued with."""
    await get_payer(payer_id)
    key = member_number.strip()
    if member_id is not None:
        where = Member.id == member_id
    elif not key:
        raise RuleBroken(S_("Enter the member number"), field="member")
    else:
        where = Member.member_number.ilike(key.replace("%", "").replace("_", r"\_"))
    member = await Member.select(Member.id, Member.member_number).where(where).first()
    if not member:
        if member_id is not None:
            raise NotFound("member")
        raise RuleBroken(f"No member has the number {key}", field="member")
    current = await PayerMember.select(PayerMember.id, PayerMember.payer).where(PayerMember.member == member["id"]).first()
    if current and current["payer"] == payer_id:
        return member
    if current:
        await PayerMember.update({PayerMember.payer: payer_id, PayerMember.linked_by: staff_id}).where(
            PayerMember.id == current["id"])
    else:
        await PayerMember.insert(PayerMember(payer=payer_id, member=member["id"], linked_by=staff_id))
    await audit.record("payer.member_linked", "payer", payer_id, staff_id=staff_id,
                       details={"member": member["id"], "from_payer": current["payer"] if current else None})
    return member


async def unlink_member(payer_id: int, member_id: int, staff_id: int | None) -> None:
    deleted = await PayerMember.delete().where((PayerMember.payer == payer_id) & (PayerMember.member == member_id)).returning(
        PayerMember.id)
    if not deleted:
        raise NotFound("link")
    await audit.record("payer.member_unlinked", "payer", payer_id, staff_id=staff_id, details={"member": member_id})


STATEMENT_INVOICES_SQL = f"""
SELECT i.id, i.number, i.issue_date, i.due_date, i.total, i.paid, i.total - i.paid AS balance, i.status,
       i.currency, m.member_number, m.first_name || ' ' || m.last_name AS member_name,
       (SELECT max(a.at) FROM allocation a WHERE a.invoice = i.id) AS last_paid_at
FROM invoice_bill_to b JOIN invoice i ON i.id = b.invoice JOIN member m ON m.id = i.member
WHERE b.payer = {{}} AND (i.status IN {OPEN}
      OR (i.status = 'paid' AND EXISTS (SELECT 1 FROM allocation a WHERE a.invoice = i.id AND a.at >= {{}})))
ORDER BY i.due_date, i.number, i.id
"""


async def statement(payer_id: int, day: date) -> dict:
    """Every open invoice addressed to the payer and every one paid in the last RECENT_DAYS days,
    across all its members, with totals: invoiced, paid, still owed."""
    since = day - timedelta(days=RECENT_DAYS)
    rows = await Payer.raw(STATEMENT_INVOICES_SQL, payer_id, since)
    zero = Decimal("0")
    return {"invoices": rows, "since": since, "day": day,
            "total": sum((r["total"] for r in rows), zero), "paid": sum((r["paid"] for r in rows), zero),
            "balance": sum((r["balance"] for r in rows), zero)}
