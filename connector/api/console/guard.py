"""Who may see a console page: a signed-in session (else a redirect to the sign-in page), and
for every form sent, the session's CSRF token (else 403)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from connector.api.auth import instance_of
from connector.api.console import views
from connector.api.console.sessions import COOKIE, ConsoleUser, find_session, same_token
from connector.db.engine import reading
from connector.db.types import utc_now

SIGN_IN = "/sign-in"


class SignInRequiredError(Exception):
    """No session (or one that ended): the page is shown after signing in."""

    def __init__(self, wanted: str) -> None:
        super().__init__(wanted)
        self.wanted = wanted


class CsrfRefusedError(Exception):
    """A form without the session's CSRF token."""


def signed_in(request: Request) -> ConsoleUser:
    """The dependency of every console page: the signed-in user."""
    token = request.cookies.get(COOKIE)
    user = None
    if token:
        with reading(instance_of(request).factory) as session:
            user = find_session(session, token, utc_now())
    if user is None:
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequiredError(wanted)
    return user


User = Annotated[ConsoleUser, Depends(signed_in)]


def check_csrf(given: str | None, expected: str) -> None:
    if not same_token(given, expected):
        raise CsrfRefusedError


def safe_next(wanted: str | None) -> str:
    """Where to go after signing in: a page of this console only (never another site)."""
    if not wanted or not wanted.startswith("/") or wanted.startswith("//") or "\\" in wanted:
        return "/"
    return wanted


def install(app: FastAPI) -> None:
    @app.exception_handler(SignInRequiredError)
    async def _sign_in(request: Request, error: SignInRequiredError) -> Response:
        wanted = safe_next(error.wanted)
        query = "" if wanted == "/" else "?" + urlencode({"next": wanted})
        return views.redirect(SIGN_IN + query)

    @app.exception_handler(CsrfRefusedError)
    async def _csrf(request: Request, error: CsrfRefusedError) -> Response:
        return views.page(
            request,
            "error.html",
            None,
            status_code=403,
            title="Form expired",
            message="This form was not sent by the console, or its page is too old. "
            "Go back, reload the page, and try again.",
        )
