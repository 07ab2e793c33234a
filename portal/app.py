"""create_app(settings) -> Litestar: the whole web app wired on one screen."""

from __future__ import annotations

import asyncio
import logging

from litestar import Litestar, Request, Response, Router
from litestar.config.csrf import CSRFConfig
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from piccolo.engine import engine_finder

from portal.lib import db, logsafe, queue
from portal.lib.errors import NotFound
from portal.settings import ROOT, Settings, get_settings
from portal.web import (
    admin,
    alerts,
    api_keys,
    api_v1,
    audit,
    auth,
    backups,
    billing,
    brand,
    cards,
    checkin,
    closes,
    dashboards,
    exports,
    health,
    hooks,
    members,
    memberships,
    messages,
    metrics,
    mpesa,
    pay,
    plans,
    reconcile,
    reminders,
    sales,
    staff,
    unmatched,
    webhooks,
)
from portal.web import discounts as discount_pages
from portal.web import payers as payer_pages
from portal.web.middleware import PortalMiddleware, RequestLog, security_headers
from portal.web.templating import configure_jinja, sent_by_htmx

log = logging.getLogger(__name__)


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") or sent_by_htmx(request)


def _not_logged_in(request: Request, exc: Exception) -> Response:
    target = f"/login?next={request.url.path}"
    if sent_by_htmx(request):
        return Response(content="", status_code=401, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


def _error_page(status: int, message: str):
    def handler(request: Request, exc: Exception) -> Response:
        detail = getattr(exc, "detail", "") or message
        if request.url.path.startswith("/api/"):  # an address no API route has: the API's kind of error
            return api_v1.problem(status, detail)
        if status == 403 and "CSRF" in str(detail):
            detail = "This form has expired. Go back, reload the page and try again."
        if not _wants_html(request) and request.url.path.startswith("/healthz"):
            return Response({"error": detail}, status_code=status)
        return Template("errors/error.html", context={"status": status, "message": detail}, status_code=status)

    return handler


def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code >= 500:
        return _server_error(request, exc)
    if request.url.path.startswith("/api/"):
        return api_v1.problem(exc.status_code, str(exc.detail))
    if not _wants_html(request):
        return Response({"status_code": exc.status_code, "detail": exc.detail}, status_code=exc.status_code)
    return _error_page(exc.status_code, exc.detail)(request, exc)


def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_page(500, "Something went wrong on our side. It has been logged; please try again.")(request, exc)


async def _start(app: Litestar) -> None:
    settings: Settings = app.state.settings
    # The pages' connections, plus one for each job the in-process worker may run at once.
    q = await queue.start(settings, pool_size=10 + (queue.job_slots(settings) if settings.worker_in_process else 0))
    if settings.worker_in_process:
        from tasks.worker import make_worker

        worker = make_worker(settings, q, in_process=True)
        app.state.worker = worker
        app.state.worker_task = asyncio.create_task(worker.start())
        log.info("worker running in-process (gateway and bulk queues)")


async def _stop(app: Litestar) -> None:
    worker = getattr(app.state, "worker", None)
    if worker is not None:
        from tasks.worker import shutdown_grace

        await worker.stop(grace=shutdown_grace(app.state.settings))
    try:
        q = queue.get_queue()
        await q.disconnect()
        queue.set_queue(None)
    except RuntimeError:
        pass
    engine = engine_finder()
    await engine.close_connection_pool()
    db.release_embedded()


def create_app(settings: Settings | None = None, *, manage_resources: bool = True) -> Litestar:
    """`manage_resources=False` is for tests that run the pool, queue and worker themselves."""
    settings = settings or get_settings()
    logsafe.install(settings)  # however the app is served, its logs carry no secret
    csrf = CSRFConfig(
        secret=settings.secret_key or "unset-secret-key-check-for-serving-refuses-this",
        cookie_name="portal_csrf",
        header_name="x-csrftoken",
        cookie_secure=settings.cookie_secure,
        cookie_samesite="lax",
        # Gateways authenticate their own way; piccolo-admin has its own CSRF middleware.
        # The API takes a bearer key and no cookie (portal/web/api_v1.py): nothing for CSRF to protect.
        exclude=["^/hooks/", "^/admin", "^/healthz", "^/api/v1/"],
    )
    # The staff pages stay out of the OpenAPI document: it is public and describes the API only.
    pages = Router(path="/", include_in_schema=False, route_handlers=[
        *auth.routes, *members.routes, *billing.routes, *hooks.routes, *mpesa.routes, *unmatched.routes, *alerts.routes, *cards.routes, *messages.routes, *pay.routes, *plans.routes, *staff.routes, *health.routes, *brand.routes, *dashboards.routes, *closes.routes, *reminders.routes, *audit.routes, *api_keys.routes, *webhooks.routes,
        *metrics.routes, *backups.routes, *exports.routes, *checkin.routes,
        *memberships.routes,
        *reconcile.routes,
        *payer_pages.routes,
        *discount_pages.routes,
        *sales.routes,
    ])
    app = Litestar(
        route_handlers=[
            pages,
            api_v1.router,
            admin.mount,
            create_static_files_router(path="/static", directories=[ROOT / "static"], cache_control=None),
        ],
        template_config=TemplateConfig(
            directory=ROOT / "templates", engine=JinjaTemplateEngine, engine_callback=configure_jinja(settings)
        ),
        csrf_config=csrf,
        middleware=[DefineMiddleware(PortalMiddleware)],
        before_send=[security_headers(hsts=settings.cookie_secure, extra_form_action=settings.card_checkout_origin)],
        exception_handlers={
            NotAuthorizedException: _not_logged_in,
            PermissionDeniedException: _error_page(403, "You do not have access to this page."),
            NotFoundException: _error_page(404, "There is nothing here."),
            NotFound: _error_page(404, "There is nothing here."),
            HTTPException: _http_error,
            Exception: _server_error,
        },
        on_startup=[_start] if manage_resources else [],
        on_shutdown=[_stop] if manage_resources else [],
        debug=False,
        # Logging is set up once per process (portal.lib.logs), not per app: Litestar's own config
        # starts a thread for every app made and never stops it for apps run without a lifespan.
        logging_config=None,
        # The API's schema only, as JSON at /api/v1/openapi.json (no /schema, no viewer from a CDN:
        # static/api-docs.html reads the JSON).
        openapi_config=OpenAPIConfig(
            title=f"{settings.gym_name} API", version="1.0.0", path="/api/v1",
            render_plugins=[JsonRenderPlugin(path="/openapi.json")],
            components=Components(security_schemes={"bearer": SecurityScheme(
                type="http", scheme="bearer", description="An API key made at /settings/api-keys")}),
            security=[{"bearer": []}],
            description="Members, plans, payments, dues and access status. Errors are application/problem+json.",
        ),
    )
    app.state.settings = settings
    # Around the router, inside Litestar's before-send hooks: every request gets its line and its
    # X-Request-ID, a router 404 or 405 too (route middleware never sees those).
    app.asgi_handler = RequestLog(app.asgi_handler)
    return app
