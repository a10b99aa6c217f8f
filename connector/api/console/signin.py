"""Signing in with an API key, and out.

The sign-in form carries a token that its page set in a short cookie (SameSite=Strict, so
another site cannot send the form for someone: no sign-in forgery). A key that is right opens
a session (:mod:`connector.api.console.sessions`) and sets its cookie: HttpOnly,
SameSite=Strict, Path=/, Secure when ``[api] secure_cookies``. The key itself is never shown,
kept, or logged."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from connector.api.auth import instance_of
from connector.api.console import views
from connector.api.console.guard import SIGN_IN, User, check_csrf, safe_next
from connector.api.console.sessions import (
    COOKIE,
    SIGN_IN_COOKIE,
    close_session,
    new_token,
    open_session,
    same_token,
)
from connector.api.keys import authenticate, note_use
from connector.db.engine import reading, transaction
from connector.db.types import utc_now

log = logging.getLogger("connector.api")
router = APIRouter(include_in_schema=False)
SIGN_IN_SECONDS = 3600  # how long a sign-in form may wait


def _form(request: Request, wanted: str, error: str | None = None, status: int = 200) -> Response:
    token = new_token()
    response = views.page(
        request, "signin.html", None, status, next=wanted, csrf_token=token, error=error
    )
    _cookie(request, response, SIGN_IN_COOKIE, token, SIGN_IN_SECONDS)
    return response


def _cookie(request: Request, response: Response, name: str, value: str, seconds: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=seconds,
        path="/",
        secure=instance_of(request).settings.api.secure_cookies,
        httponly=True,
        samesite="strict",
    )


def _forget(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name,
        path="/",
        secure=instance_of(request).settings.api.secure_cookies,
        httponly=True,
        samesite="strict",
    )


@router.get(SIGN_IN)
def sign_in_page(request: Request, next: str | None = None) -> Response:
    return _form(request, safe_next(next))


@router.post(SIGN_IN)
def sign_in(
    request: Request,
    key: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    check = request.cookies.get(SIGN_IN_COOKIE)
    if check is None or not same_token(csrf_token, check):
        return views.page(
            request,
            "error.html",
            None,
            status_code=403,
            title="Sign-in form expired",
            message="This sign-in form was not sent by the console, or it waited too long. "
            "Open the sign-in page again.",
        )
    instance = instance_of(request)
    with reading(instance.factory) as session:
        info = authenticate(session, key.strip())
    if info is None:
        log.info("console sign-in refused: unknown or revoked key")
        return _form(request, safe_next(next), "That API key is unknown or revoked.", 401)
    hours = instance.settings.api.session_hours
    with transaction(instance.factory) as session:
        token = open_session(session, info, utc_now(), hours)
        note_use(session, info)
    log.info("console sign-in with the key %s (%s…)", info.name, info.prefix)
    response = views.redirect(safe_next(next))
    _cookie(request, response, COOKIE, token, int(hours * 3600))
    _forget(request, response, SIGN_IN_COOKIE)
    return response


@router.post("/sign-out")
def sign_out(request: Request, user: User, csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(csrf_token, user.csrf_token)
    with transaction(instance_of(request).factory) as session:
        close_session(session, user.session_id)
    response = views.redirect(SIGN_IN)
    _forget(request, response, COOKIE)
    return response
