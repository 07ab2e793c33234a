"""Login and logout pages."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlparse

from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template

from portal import auth
from portal.auth import SESSION_COOKIE
from portal.web.client import client_ip


def _safe_next(target: str | None) -> str:
    """Only ever redirect to a path on this site."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@get("/login")
async def login_page(request: Request, next: FromQuery[str | None] = None) -> Template | Redirect:
    if request.scope.get("user"):
        return Redirect(_safe_next(next), status_code=303)
    return Template("login.html", context={"next": _safe_next(next), "values": {}, "error": None})


@post("/login", status_code=200)
async def login_submit(
    request: Request, data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
) -> Template | Redirect:
    settings = request.app.state.settings
    username, password = data.get("username", ""), data.get("password", "")
    next_path = _safe_next(data.get("next"))
    try:
        token = await auth.login(settings, username, password, client_ip(request))
    except auth.LoginThrottled as e:
        return Template("login.html", status_code=429, context={
            "next": next_path, "values": {"username": username},
            "error": f"Too many failed attempts. Wait {e.minutes} minute{'' if e.minutes == 1 else 's'}, "
                     "or ask a manager to check your account."})
    if token is None:
        return Template("login.html", status_code=400, context={
            "next": next_path, "values": {"username": username},
            "error": "That user name and password do not match an active staff account."})
    response = Redirect(next_path, status_code=303)
    response.set_cookie(Cookie(
        key=SESSION_COOKIE, value=token, path="/", httponly=True, samesite="lax",
        secure=settings.cookie_secure, max_age=settings.session_hours * 3600,
    ))
    return response


@post("/logout", status_code=303)
async def logout(request: Request) -> Redirect:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await auth.logout(token)
    response = Redirect("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


routes = [login_page, login_submit, logout]
