"""The audit log for managers: who changed what and when, newest first (the rows come from
portal.audit; /admin/ remains for admins)."""

from __future__ import annotations

from litestar import Request, get
from litestar.response import Template

from portal.audit import AuditFilters, audit_page, filter_choices
from portal.auth import manager_required
from portal.web.templating import is_htmx


@get("/audit", guards=[manager_required])
async def audit_list(request: Request) -> Template:
    filters = AuditFilters.parse(request.query_params)
    context = {"page": await audit_page(filters), "f": filters, **await filter_choices()}
    template = "audit/_table.html" if is_htmx(request) else "audit/index.html"
    return Template(template, context=context, status_code=422 if filters.errors else 200)


routes = [audit_list]
