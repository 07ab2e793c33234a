"""The admins' backup warning, loaded into the staff header by htmx (so a page costs no query for
it, and non-admins never ask)."""

from __future__ import annotations

from litestar import get
from litestar.response import Template

from portal import backups
from portal.auth import admin_required


@get("/backups/warning", guards=[admin_required])
async def backup_warning() -> Template:
    return Template("backups/_warning.html", context={"text": await backups.admin_warning()})


routes = [backup_warning]
