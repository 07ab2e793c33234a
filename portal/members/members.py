"""Members and their memberships: the rules, as plain functions tests call directly.

Search and the member page each run a fixed number of queries whatever the number of members:
the list is one query for the page of rows (with each member's current membership, through a
LATERAL join) and one for the total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from portal import audit
from portal.lib import paging
from portal.lib.clock import now, today
from portal.lib.errors import NotFound
from portal.members.holds import hold_cutoff, hold_reason_sql, hold_sql
from portal.sales.walkin import WALKIN_NUMBER
from portal.settings import get_settings
from tables.members import Member

PAGE_SIZE = 25


async def next_member_number() -> str:
    rows = await Member.raw("SELECT nextval('member_number_seq') AS n")
    return f"{get_settings().member_prefix}{rows[0]['n']:04d}"


async def create_member(clean: dict, staff_id: int | None) -> Member:
    number = await next_member_number()
    member = Member(member_number=number, created_by=staff_id, **clean)
    await member.save()
    await audit.record("member.created", "member", member.id, staff_id=staff_id,
                       details={"member_number": number})
    return member


async def update_member(member_id: int, clean: dict, staff_id: int | None) -> None:
    changed = await Member.update({**clean, Member.updated_at: now()}).where(Member.id == member_id).returning(Member.id)
    if not changed:
        raise NotFound("member")
    await audit.record("member.updated", "member", member_id, staff_id=staff_id,
                       details={k: v for k, v in clean.items() if k != "notes"})


@dataclass(kw_only=True)
class SearchResult(paging.Page):
    query: str

    @property
    def total(self) -> int:  # the members found: the templates' word for the count
        return self.count


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _search_terms(query: str) -> tuple[str, str, str]:
    q = _like_escape(" ".join(query.split()).lower())
    digits = "".join(ch for ch in q if ch.isdigit())
    # 0712... and 712... both find 254712...
    phone = digits[1:] if digits.startswith("0") else digits
    return q, phone, q.replace(" ", "").upper()


# Names are compared folded on both sides (fold_name, and the names folded as stored:
# tables/piccolo_migrations/portal_2026_12_07t05_00_00_000000.py), so "nganga" finds Ng'ang'a and
# "wanjiku" finds Wanjikũ. What was typed is folded once per search (a subquery), not once per row.
SEARCH_WHERE = """
    (
      {q} = ''
      OR m.first_name_folded LIKE (SELECT fold_name({q})) || '%'
      OR m.last_name_folded LIKE (SELECT fold_name({q})) || '%'
      OR m.first_name_folded || ' ' || m.last_name_folded LIKE (SELECT fold_name({q})) || '%'
      OR m.last_name_folded || ' ' || m.first_name_folded LIKE (SELECT fold_name({q})) || '%'
      OR upper(m.member_number) LIKE {number} || '%'
      OR (length({phone}) >= 3 AND m.phone LIKE '%' || {phone} || '%')
    )
""" + f"    AND m.member_number <> '{WALKIN_NUMBER}'\n"  # the walk-in sales' account is not a member


async def search_members(query: str = "", page: int = 1, size: int = PAGE_SIZE) -> SearchResult:
    """Name (first or last, or both in either order), member number or phone, as typed. Each
    row says whether the member is on hold (a column of the same query: no query per row)."""
    q, phone, number = _search_terms(query)
    where = SEARCH_WHERE.format(q="{}", number="{}", phone="{}")
    # The same three values appear in the same order in both queries.
    args = [q, q, q, q, q, number, phone, phone]
    result = SearchResult(page=max(page, 1), size=size, query=query)
    result.rows = await Member.raw(
        f"""
        SELECT m.id, m.member_number, m.first_name, m.last_name, m.phone, m.email, m.status, m.language,
               cur.plan_name, cur.end_date, cur.status AS membership_status, {hold_sql()} AS hold
        FROM member m
        LEFT JOIN LATERAL (
            SELECT p.name AS plan_name, ms.end_date, ms.status
            FROM membership ms JOIN plan p ON p.id = ms.plan
            WHERE ms.member = m.id AND ms.status IN ('active', 'pending', 'unpaid', 'expired')
            ORDER BY (ms.status = 'active') DESC, ms.end_date DESC
            LIMIT 1
        ) cur ON true
        WHERE {where}
        ORDER BY lower(m.last_name), lower(m.first_name), m.id
        LIMIT {result.size} OFFSET {result.offset}
        """,
        hold_cutoff(), *args,
    )
    result.count = (await Member.raw(f"SELECT count(*) AS n FROM member m WHERE {where}", *args))[0]["n"]
    return result


async def members_after(query: str = "", before_id: int | None = None, limit: int = PAGE_SIZE) -> list[dict]:
    """The API's list: the same search, newest first by id, `limit` + 1 rows after the cursor
    `before_id` (the extra row says whether there is a next page). One query."""
    q, phone, number = _search_terms(query)
    where = SEARCH_WHERE.format(q="{}", number="{}", phone="{}")
    args = [q, q, q, q, q, number, phone, phone]
    after = "AND m.id < {}" if before_id is not None else ""
    return await Member.raw(
        f"""
        SELECT m.id, m.member_number, m.first_name, m.last_name, m.phone, m.email, m.status, m.home_location,
               m.message_channel, m.reminder_opt_out, m.language, m.created_at, {hold_sql()} AS hold
        FROM member m
        WHERE {where} {after}
        ORDER BY m.id DESC
        LIMIT {int(limit) + 1}
        """,
        hold_cutoff(), *args, *([before_id] if before_id is not None else []),
    )


async def get_member(member_id: int) -> dict:
    row = await Member.select(
        Member.all_columns(), Member.home_location.name.as_alias("location_name")
    ).where(Member.id == member_id).first()
    if not row:
        raise NotFound("member")
    return row


MEMBER_PAGE_SQL = """
SELECT m.*, l.name AS location_name,
       hold.number AS hold_invoice, {{}}::date - hold.due_date AS hold_days, coalesce(hold.n, 0) AS hold_invoices
FROM member m
LEFT JOIN location l ON l.id = m.home_location
LEFT JOIN LATERAL ({hold}) hold ON true
WHERE m.id = {{}}
"""


async def member_with_hold(member_id: int, on: date | None = None) -> dict:
    """`get_member`, with why the member is on hold in the same query (the member page keeps its
    query count): `hold_invoice` (the most overdue invoice past the grace period, or None),
    `hold_days` (how many days overdue it is) and `hold_invoices` (how many are past it)."""
    on = on or today()
    rows = await Member.raw(MEMBER_PAGE_SQL.format(hold=hold_reason_sql()), on, hold_cutoff(on), member_id)
    if not rows:
        raise NotFound("member")
    return rows[0]


