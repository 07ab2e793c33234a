from enum import Enum

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import Boolean, ForeignKey, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from tables.locations import Location


class Staff(Table, tablename="staff"):
    """The portal's view of a Piccolo user: a role and a home location.

    Passwords, `active` and sessions stay on Piccolo's own user and session tables, so
    piccolo-admin and the portal share one login.
    """

    class Role(str, Enum):
        front_desk = "front_desk"
        manager = "manager"
        admin = "admin"

    user = ForeignKey(references=BaseUser, on_delete=OnDelete.restrict, unique=True, null=False)
    role = Varchar(length=20, choices=Role, default=Role.front_desk)
    location = ForeignKey(references=Location, on_delete=OnDelete.restrict, null=True)
    daily_digest = Boolean(default=False, help_text="Managers and admins: the owner's digest email each morning")
    weekly_money_edits = Boolean(default=False, help_text="Managers and admins: every refund, void, discount and "
                                 "reopened close of the week, by email each Monday")
    created_at = Timestamptz()


class LoginAttempt(Table, tablename="login_attempt"):
    """Every login try, for rate limiting across web processes and for the audit trail."""

    username = Varchar(length=100, index=True)
    ip = Varchar(length=64, index=True)
    succeeded = Boolean(default=False)
    at = Timestamptz(index=True)
