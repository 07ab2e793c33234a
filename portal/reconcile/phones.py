"""The payer's phone on a Paybill confirmation, as M-Pesa hides it (gateways.md §1.8, C2B FAQ):

- C2B v1: MSISDN is the SHA-256 hex digest of the number as M-Pesa writes it, "2547XXXXXXXX"
  (12 digits, no "+"). Compared with `member.phone_hash` (the same digest of the member's phone,
  kept by a database trigger): one member with that hash is the payer, so the money is credited
  to them; two or more (a shared family phone) say nothing about which of them paid.
- C2B v2: MSISDN is masked, "2547 ***** 126" or "25470****149": only some leading and trailing
  digits are visible. Thousands of members share any such pattern, so a masked number never
  credits anyone on its own; it only ranks the members offered on the Unmatched M-Pesa page.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal

from tables.members import Member
from tables.statuses import OPEN_INVOICE_SQL

_HASHED = re.compile(r"[0-9a-fA-F]{64}")
_MASKED = re.compile(r"([0-9][0-9 ]*?)\s*(\*+)\s*([0-9][0-9 ]*)")
PHONE_DIGITS = 12  # 2547XXXXXXXX
CANDIDATES = 3  # members offered per unmatched payment


def phone_hash(phone: str) -> str:
    """What C2B v1 sends for this phone (and what the trigger stores): sha256 hex of "2547..."."""
    return hashlib.sha256(phone.encode("utf-8")).hexdigest()


def hashed_msisdn(msisdn: str) -> str:
    """The digest, lower-cased, when MSISDN is a SHA-256 hex digest; else ""."""
    s = (msisdn or "").strip()
    return s.lower() if _HASHED.fullmatch(s) else ""


def masked_parts(msisdn: str) -> tuple[str, str] | None:
    """(visible leading digits, visible trailing digits) of a masked MSISDN, or None."""
    m = _MASKED.fullmatch((msisdn or "").strip())
    if not m:
        return None
    head, stars, tail = m.group(1).replace(" ", ""), m.group(2), m.group(3).replace(" ", "")
    if len(head) + len(tail) >= PHONE_DIGITS or len(tail) < 3 or len(head) + len(stars) + len(tail) > PHONE_DIGITS:
        return None
    return head, tail


async def members_with_hash(msisdn: str) -> list[dict]:
    """At most two members whose phone hashes to this v1 MSISDN (one indexed look-up)."""
    digest = hashed_msisdn(msisdn)
    if not digest:
        return []
    return await Member.select(Member.id, Member.member_number).where(Member.phone_hash == digest).limit(2)


@dataclass(frozen=True)
class Candidate:
    member_id: int
    member_number: str
    name: str
    phone: str
    why: str  # what ranked them: "phone hash", "phone 2547…126, name JOHN, owes 3,000.00"


# One query for every unmatched payment on the page: for each, the members whose phone fits what
# M-Pesa showed of it (the full hash, or the visible digits), ranked by the payer's first name and by
# an open invoice owing exactly the amount paid. `right(phone, 3)` is indexed (member_phone_last3).
CANDIDATES_SQL = f"""
SELECT q.cb, c.id, c.member_number, c.first_name, c.last_name, c.phone, c.by_hash, c.same_name, c.owes_amount
FROM unnest({{}}::int[], {{}}::text[], {{}}::text[], {{}}::text[], {{}}::text[], {{}}::numeric[])
     AS q(cb, head, tail, digest, first_name, amount)
CROSS JOIN LATERAL (
    SELECT m.id, m.member_number, m.first_name, m.last_name, m.phone,
           q.digest <> '' AS by_hash,
           (q.first_name <> '' AND upper(m.first_name) = q.first_name) AS same_name,
           EXISTS (SELECT 1 FROM invoice i WHERE i.member = m.id AND i.status IN {OPEN_INVOICE_SQL}
                   AND i.total - i.paid = q.amount) AS owes_amount
    FROM member m
    WHERE (q.digest <> '' AND m.phone_hash = q.digest)
       OR (q.digest = '' AND length(q.tail) >= 3 AND right(m.phone, 3) = right(q.tail, 3)
           AND m.phone LIKE q.head || '%' AND m.phone LIKE '%' || q.tail AND length(m.phone) = {PHONE_DIGITS})
    ORDER BY by_hash DESC, same_name DESC, owes_amount DESC, m.member_number
    LIMIT {CANDIDATES}
) c
ORDER BY q.cb, c.by_hash DESC, c.same_name DESC, c.owes_amount DESC, c.member_number
"""


async def candidates_for(rows: list) -> dict[int, list[Candidate]]:
    """{unmatched callback id: its likely members, best first} for the page's rows (objects with
    id, msisdn, name and amount). One query whatever the number of rows; none without rows."""
    ids, heads, tails, digests, names, amounts = [], [], [], [], [], []
    for r in rows:
        digest = hashed_msisdn(r.msisdn)
        parts = None if digest else masked_parts(r.msisdn)
        if not digest and not parts:
            continue
        ids.append(r.id)
        heads.append(parts[0] if parts else "")
        tails.append(parts[1] if parts else "")
        digests.append(digest)
        names.append((r.name or "").split(" ")[0].upper())
        amounts.append(r.amount if r.amount is not None else Decimal("-1"))
    if not ids:
        return {}
    found: dict[int, list[Candidate]] = {}
    for c in await Member.raw(CANDIDATES_SQL, ids, heads, tails, digests, names, amounts):
        why = ["same phone (hash)"] if c["by_hash"] else ["phone fits the visible digits"]
        if c["same_name"]:
            why.append("same first name")
        if c["owes_amount"]:
            why.append("owes exactly this amount")
        found.setdefault(c["cb"], []).append(Candidate(c["id"], c["member_number"], f"{c['first_name']} {c['last_name']}",
                                                       c["phone"], ", ".join(why)))
    return found
