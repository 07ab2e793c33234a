"""Staff authentication: login with rate limiting, server-side sessions, role guards.

Sessions live in piccolo_api's `sessions` table (cookie `id`), the same one piccolo-admin reads,
so they work across any number of web processes and an admin signed in here is signed in at
/admin/ too. Passwords are hashed by Piccolo's BaseUser (PBKDF2-SHA256, OWASP iteration count).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from piccolo.apps.user.tables import BaseUser
from piccolo_api.session_auth.tables import SessionsBase

from portal import audit
from portal.lib.clock import now
from portal.settings import Settings
from tables.staff import LoginAttempt, Staff

SESSION_COOKIE = "id"
ROLE_RANK = {"front_desk": 1, "manager": 2, "admin": 3}
ROLE_LABEL = {"front_desk": "Front desk", "manager": "Manager", "admin": "Admin"}


@dataclass(frozen=True)
class StaffUser:
    user_id: int
    staff_id: int
    username: str
    name: str
    role: str
    location_id: int | None

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    @property
    def role_label(self) -> str:
        return ROLE_LABEL[self.role]


class LoginThrottled(Exception):
    def __init__(self, minutes: int):
        self.minutes = minutes


# Guessing is slowed down without letting anyone lock a real user out. Every failed try is a row in
# login_attempt (one table for every web process, so all of them count the same tries), and a try
# is refused (429) before the password is looked at when, within the window (LOGIN_WINDOW_MINUTES):
# - this address failed LOGIN_MAX_FAILURES times for this user name: one guesser on one account;
# - this address failed ADDRESS_FAILURES_FACTOR times as often over any user names: one address
#   spraying passwords over many accounts;
# - the user name has LOGIN_MAX_FAILURES failures from all addresses together (it is under attack,
#   perhaps from many addresses) and this address failed on it less than ATTACK_COOLDOWN ago:
#   each attacking address then gets one guess a minute, on top of its own limit.
# The user name alone never refuses anybody: the right password from an address with no failures
# for that user name (and no spraying) always gets in, however many addresses are guessing it.
ADDRESS_FAILURES_FACTOR = 4
ATTACK_COOLDOWN = timedelta(minutes=1)

FAILURES_SQL = """
SELECT count(*) FILTER (WHERE lower(username) = {} AND ip = {}) AS pair,
       count(*) FILTER (WHERE ip = {}) AS address,
       count(*) FILTER (WHERE lower(username) = {}) AS name,
       max(at) FILTER (WHERE lower(username) = {} AND ip = {}) AS pair_last
FROM login_attempt
WHERE NOT succeeded AND at > {} AND (lower(username) = {} OR ip = {})
"""


async def _throttle_minutes(settings: Settings, username: str, ip: str) -> int | None:
    """How long this address must wait before trying this user name again, or None to go ahead."""
    name = username.lower()
    rows = await LoginAttempt.raw(FAILURES_SQL, name, ip, ip, name, name, ip,
                                  now() - timedelta(minutes=settings.login_window_minutes), name, ip)
    f, limit = rows[0], settings.login_max_failures
    if f["pair"] >= limit or f["address"] >= limit * ADDRESS_FAILURES_FACTOR:
        return settings.login_window_minutes
    if f["name"] >= limit and f["pair_last"] is not None and f["pair_last"] > now() - ATTACK_COOLDOWN:
        return int(ATTACK_COOLDOWN.total_seconds() // 60)
    return None


async def _stored_username(username: str) -> str:
    """User names match whatever the case typed ("Faith" is faith). Without a match the name is
    passed on as typed, so Piccolo's login spends the same time refusing it."""
    rows = await BaseUser.raw(
        "SELECT username FROM piccolo_user WHERE lower(username) = lower({}) ORDER BY username = {} DESC LIMIT 1",
        username, username)
    return rows[0]["username"] if rows else username


async def username_taken(username: str) -> bool:
    """User names are unique regardless of case: "Faith" and "faith" would be one login."""
    rows = await BaseUser.raw("SELECT 1 FROM piccolo_user WHERE lower(username) = lower({}) LIMIT 1", username)
    return bool(rows)


async def login(settings: Settings, username: str, password: str, ip: str) -> str | None:
    """A new session token, or None for bad credentials. Raises LoginThrottled when this address
    must wait (see the rules above _throttle_minutes)."""
    username, ip = username.strip()[:100], ip[:64]
    if (minutes := await _throttle_minutes(settings, username, ip)) is not None:
        raise LoginThrottled(minutes)
    user_id = await BaseUser.login(username=await _stored_username(username), password=password) \
        if username and password else None
    if user_id is not None:
        # Piccolo's login checks the password only: an inactive account or a bare Piccolo user
        # (no staff profile) is refused here.
        allowed = await Staff.exists().where((Staff.user == user_id) & (Staff.user.active == True))  # noqa: E712
        user_id = user_id if allowed else None
    await LoginAttempt.insert(LoginAttempt(username=username, ip=ip, succeeded=user_id is not None))
    if user_id is None:
        return None
    # piccolo_api's session table stores naive local times (datetime.now()), as piccolo-admin reads them.
    local_now = datetime.now()
    session = await SessionsBase.create_session(
        user_id=user_id, expiry_date=local_now + timedelta(hours=settings.session_hours),
        max_expiry_date=local_now + timedelta(days=7),
    )
    staff_id = (await Staff.select(Staff.id).where(Staff.user == user_id).first())["id"]
    await audit.record("staff.login", "staff", staff_id, staff_id=staff_id, details={"ip": ip})
    return session.token


async def manager_approval(settings: Settings, username: str, password: str, ip: str) -> int | None:
    """The staff id of the active manager or admin whose name and password were typed (a manager
    approving at the front desk's screen), else None. The same throttle and failed-try record as a
    login, so this form is no way round them; no session is made."""
    username, ip = username.strip()[:100], ip[:64]
    if (minutes := await _throttle_minutes(settings, username, ip)) is not None:
        raise LoginThrottled(minutes)
    user_id = await BaseUser.login(username=await _stored_username(username), password=password) \
        if username and password else None
    staff = None
    if user_id is not None:
        staff = await Staff.select(Staff.id).where(
            (Staff.user == user_id) & (Staff.user.active == True) & Staff.role.is_in(["manager", "admin"])).first()  # noqa: E712
    await LoginAttempt.insert(LoginAttempt(username=username, ip=ip, succeeded=staff is not None))
    return staff["id"] if staff else None


async def logout(token: str) -> None:
    await SessionsBase.remove_session(token=token)


async def set_password(user_id: int, password: str, *, keep_session: str | None = None) -> None:
    """A new password ends every session of that user, so whoever signed in with the old one (a
    leaked password, a shared browser) is out. `keep_session` is the session that made a change of
    its own password: the person who just typed the new one stays signed in there."""
    await BaseUser.update_password(user_id, password)
    sessions = SessionsBase.delete().where(SessionsBase.user_id == user_id)
    if keep_session:
        sessions = sessions.where(SessionsBase.token != keep_session)
    await sessions


SESSION_SQL = """
SELECT u.id AS user_id, s.id AS staff_id, u.username, u.first_name, u.last_name, s.role, s.location
FROM sessions se
JOIN piccolo_user u ON u.id = se.user_id
JOIN staff s ON s.user = u.id
WHERE se.token = {} AND se.expiry_date > {} AND se.max_expiry_date > {} AND u.active
"""


async def user_for_session(token: str | None) -> StaffUser | None:
    """One query: a live session of an active staff member, or None."""
    if not token:
        return None
    local_now = datetime.now()
    rows = await SessionsBase.raw(SESSION_SQL, token, local_now, local_now)
    if not rows:
        return None
    r = rows[0]
    name = " ".join(filter(None, [r["first_name"], r["last_name"]])) or r["username"]
    return StaffUser(r["user_id"], r["staff_id"], r["username"], name, r["role"], r["location"])


def placeholder_email(username: str) -> str:
    """Piccolo's user email is required and unique: staff without an address get one on the
    reserved .invalid domain (RFC 2606), which no mail server delivers to."""
    return f"{username}@staff.invalid"


def real_email(email: str | None) -> str:
    """The staff member's address, or "" for none (empty or the placeholder)."""
    return "" if not email or email.lower().endswith(".invalid") else email


async def create_staff(username: str, password: str, role: str, *, first_name: str = "", last_name: str = "",
                       email: str | None = None, location_id: int | None = None, daily_digest: bool = False) -> int:
    """Create a login with its staff profile; admins are also piccolo-admin admins."""
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")
    if await username_taken(username):
        raise ValueError(f"the user name {username!r} is taken (user names ignore case)")
    user = await BaseUser.create_user(
        username=username, password=password, email=email or placeholder_email(username),
        first_name=first_name, last_name=last_name, active=True,
        admin=role == "admin", superuser=role == "admin",
    )
    staff = Staff(user=user.id, role=role, location=location_id, daily_digest=daily_digest)
    await staff.save()
    return staff.id


# Guards: a missing session is 401 (the app turns it into a redirect to /login), a wrong role 403.

def staff_required(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if not isinstance(connection.scope.get("user"), StaffUser):
        raise NotAuthorizedException()


def _role_guard(role: str):
    def guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
        staff_required(connection, handler)
        if not connection.scope["user"].has_role(role):
            raise PermissionDeniedException(f"This page is for {ROLE_LABEL[role].lower()}s")

    guard.__name__ = f"{role}_required"
    return guard


manager_required = _role_guard("manager")
admin_required = _role_guard("admin")
