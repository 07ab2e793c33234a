"""Session packs: a PT pack of 10 gives the member 10 sessions, used up one a visit."""

from __future__ import annotations

from portal import audit
from portal.lib import db
from portal.lib.clock import now
from portal.lib.errors import RuleBroken
from portal.lib.i18n import S_
from tables.sales import SessionPack, SessionUse

REMAINING_SQL = """
SELECT p.id, c.name, p.sessions, p.used, p.sessions - p.used AS remaining
FROM session_pack p JOIN catalogue_item c ON c.id = p.item
WHERE p.member = {} AND p.used < p.sessions ORDER BY p.id
"""


async def packs_with_sessions(member_id: int) -> list[dict]:
    """The member's packs that have sessions left, oldest first (one query: the member page)."""
    return await SessionPack.raw(REMAINING_SQL, member_id)


async def use_session(member_id: int, *, staff_id: int | None, visit_id: int | None = None) -> dict:
    """Use one session from the member's oldest pack with any left; never below zero (the row is
    locked, and the table refuses used > sessions). Returns the pack after, with what remains."""
    async with db.transaction():
        pack = await SessionPack.raw(
            "SELECT * FROM session_pack WHERE member = {} AND used < sessions ORDER BY id LIMIT 1 FOR UPDATE",
            member_id)
        if not pack:
            raise RuleBroken(S_("No sessions left: sell a session or a pack first"), field="sessions")
        pack = pack[0]
        await SessionPack.update({SessionPack.used: SessionPack.used + 1}).where(SessionPack.id == pack["id"])
        await SessionUse.insert(SessionUse(pack=pack["id"], visit=visit_id, staff=staff_id, at=now()))
        left = await SessionPack.raw(
            "SELECT coalesce(sum(sessions - used), 0) AS n FROM session_pack WHERE member = {}", member_id)
        remaining = int(left[0]["n"])
        await audit.record("session.used", "member", member_id, staff_id=staff_id,
                           details={"pack": pack["id"], "used": pack["used"] + 1, "of": pack["sessions"],
                                    "remaining": remaining, "visit": visit_id})
    return {**pack, "used": pack["used"] + 1, "remaining": remaining}


async def sessions_remaining(member_id: int) -> int:
    rows = await SessionPack.raw("SELECT coalesce(sum(sessions - used), 0) AS n FROM session_pack WHERE member = {}",
                                 member_id)
    return int(rows[0]["n"])
