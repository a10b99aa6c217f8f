"""The console's sign-in through the real server: redirects to the sign-in page, the session
cookie and its flags, CSRF on every form, sign-out, revoked keys and expired sessions."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from connector.api.console.sessions import COOKIE, SIGN_IN_COOKIE, token_hash
from connector.api.keys import revoke_key
from connector.db import tables
from connector.db.engine import transaction
from connector.db.types import utc_now
from tests.api.conftest import Served

SECURITY_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(served: Served, key: str, next_page: str = "/") -> requests.Response:
    """Open the sign-in page and send its form with ``key``; the answer, not followed."""
    form = served.get("/sign-in")
    return served.http.post(
        served.url + "/sign-in",
        data={"key": key, "csrf_token": csrf_of(form.text), "next": next_page},
        allow_redirects=False,
        timeout=30,
    )


def page(served: Served, path: str) -> requests.Response:
    return served.http.get(served.url + path, allow_redirects=False, timeout=30)


def test_pages_redirect_to_the_sign_in_page_until_signed_in(served: Served) -> None:
    for path in ("/", "/waiting", "/outbox", "/mrr", "/invoices", "/invoices/INV-1/pdf"):
        answer = page(served, path)
        assert answer.status_code == 303, path
        expected = "/sign-in" if path == "/" else "/sign-in?next=" + path.replace("/", "%2F")
        assert answer.headers["location"] == expected
    answer = page(served, "/invoices?status=open&customer=3")
    assert answer.headers["location"] == "/sign-in?next=%2Finvoices%3Fstatus%3Dopen%26customer%3D3"


def test_the_sign_in_page_sets_a_strict_cookie_for_its_form(served: Served) -> None:
    answer = page(served, "/sign-in")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert {name: answer.headers[name] for name in SECURITY_HEADERS} == SECURITY_HEADERS
    token = csrf_of(answer.text)
    assert answer.headers["set-cookie"] == (
        f"{SIGN_IN_COOKIE}={token}; HttpOnly; Max-Age=3600; Path=/; SameSite=strict"
    )
    assert 'name="key" type="password"' in answer.text


def test_signing_in_opens_a_session_and_sets_its_cookie(
    served: Served, factory: sessionmaker[Session]
) -> None:
    key = served.key("read", name="ops laptop")
    before = utc_now()

    answer = sign_in(served, key, "/invoices?status=open")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/invoices?status=open"
    cookies = answer.raw.headers.getlist("set-cookie")
    token = served.http.cookies[COOKIE]
    assert cookies == [
        f"{COOKIE}={token}; HttpOnly; Max-Age=43200; Path=/; SameSite=strict",
        f'{SIGN_IN_COOKIE}=""; expires={_expires(cookies[1])}; HttpOnly; Max-Age=0; Path=/; '
        "SameSite=strict",
    ]
    with factory() as session:
        row = session.scalars(select(tables.ConsoleSession)).one()
        api_key = session.get_one(tables.ApiKey, row.api_key_id)
    assert row.token_hash == token_hash(token)
    assert api_key.name == "ops laptop"
    assert len(row.csrf_token) == 43
    lasts = row.expires_at - before
    assert timedelta(hours=12) <= lasts <= timedelta(hours=12, minutes=5)

    overview = page(served, "/")
    assert overview.status_code == 200
    assert "ops laptop" in overview.text
    assert key not in overview.text and key[:10] not in overview.text  # never the key


def _expires(cookie: str) -> str:
    found = re.search(r"expires=([^;]+);", cookie)
    assert found
    return found.group(1)


def test_the_cookie_is_secure_when_the_settings_say_so(served: Served) -> None:
    settings = served.instance.settings
    served.instance.settings = settings.model_copy(
        update={"api": settings.api.model_copy(update={"secure_cookies": True})}
    )
    form = page(served, "/sign-in")
    assert "; Secure" in form.headers["set-cookie"]
    answer = served.http.post(
        served.url + "/sign-in",
        data={"key": served.key(), "csrf_token": csrf_of(form.text), "next": "/"},
        cookies={SIGN_IN_COOKIE: csrf_of(form.text)},  # a Secure cookie is not sent over http
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 303
    session_cookie = answer.raw.headers.getlist("set-cookie")[0]
    assert session_cookie.startswith(f"{COOKIE}=")
    assert session_cookie.endswith("; HttpOnly; Max-Age=43200; Path=/; SameSite=strict; Secure")


def test_a_wrong_key_is_refused_without_a_session(
    served: Served, factory: sessionmaker[Session]
) -> None:
    served.key()
    answer = sign_in(served, "ck_" + "x" * 43)
    assert answer.status_code == 401
    assert "That API key is unknown or revoked." in answer.text
    assert COOKIE not in served.http.cookies
    with factory() as session:
        assert session.scalars(select(tables.ConsoleSession)).all() == []


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_the_sign_in_form_needs_its_token(served: Served, token: str | None) -> None:
    key = served.key()
    page(served, "/sign-in")
    data = {"key": key, "next": "/"} | ({} if token is None else {"csrf_token": token})
    answer = served.http.post(served.url + "/sign-in", data=data, allow_redirects=False, timeout=30)
    assert answer.status_code == 403
    assert "Sign-in form expired" in answer.text
    assert COOKIE not in served.http.cookies


def test_the_sign_in_form_is_refused_without_its_cookie(served: Served) -> None:
    key = served.key()
    token = csrf_of(page(served, "/sign-in").text)
    served.http.cookies.clear()  # another site's form: the Strict cookie is not sent
    answer = served.http.post(
        served.url + "/sign-in",
        data={"key": key, "csrf_token": token, "next": "/"},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "wanted", ["//evil.example/", "https://evil.example/", "\\\\evil.example", "javascript:x"]
)
def test_after_signing_in_only_console_pages_are_next(served: Served, wanted: str) -> None:
    answer = sign_in(served, served.key(), wanted)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


def test_signing_out_needs_the_session_token_and_ends_the_session(
    served: Served, factory: sessionmaker[Session]
) -> None:
    sign_in(served, served.key())
    token = csrf_of(page(served, "/").text)

    for forged in ({}, {"csrf_token": ""}, {"csrf_token": token[:-1] + "x"}):
        refused = served.http.post(
            served.url + "/sign-out", data=forged, allow_redirects=False, timeout=30
        )
        assert refused.status_code == 403
        assert "Form expired" in refused.text
    assert page(served, "/").status_code == 200  # still signed in

    answer = served.http.post(
        served.url + "/sign-out", data={"csrf_token": token}, allow_redirects=False, timeout=30
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in"
    assert answer.headers["set-cookie"].startswith(f'{COOKIE}=""; expires=')
    assert answer.headers["set-cookie"].endswith("; HttpOnly; Max-Age=0; Path=/; SameSite=strict")
    with factory() as session:
        assert session.scalars(select(tables.ConsoleSession)).all() == []
    assert page(served, "/").status_code == 303


def test_an_old_cookie_does_not_come_back_after_signing_out(served: Served) -> None:
    sign_in(served, served.key())
    cookie = served.http.cookies[COOKIE]
    served.http.post(
        served.url + "/sign-out",
        data={"csrf_token": csrf_of(page(served, "/").text)},
        allow_redirects=False,
        timeout=30,
    )
    answer = requests.get(served.url + "/", cookies={COOKIE: cookie}, allow_redirects=False)
    assert answer.status_code == 303


def test_each_session_has_its_own_csrf_token(served: Served) -> None:
    key = served.key()
    sign_in(served, key)
    first = csrf_of(page(served, "/").text)
    with requests.Session() as other:
        form = other.get(served.url + "/sign-in", timeout=30)
        other.post(
            served.url + "/sign-in",
            data={"key": key, "csrf_token": csrf_of(form.text), "next": "/"},
            timeout=30,
        )
        second = csrf_of(other.get(served.url + "/", timeout=30).text)
        refused = other.post(
            served.url + "/sign-out", data={"csrf_token": first}, allow_redirects=False
        )
    assert first != second
    assert refused.status_code == 403


def test_revoking_the_key_ends_its_sessions(served: Served, factory: sessionmaker[Session]) -> None:
    key = served.key("write", name="ops desk")
    sign_in(served, key)
    assert page(served, "/").status_code == 200
    with transaction(factory) as session:
        revoke_key(session, "ops desk")
    answer = page(served, "/waiting")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=%2Fwaiting"
    assert sign_in(served, key).status_code == 401


def test_an_expired_session_signs_out(served: Served, factory: sessionmaker[Session]) -> None:
    sign_in(served, served.key())
    with transaction(factory) as session:
        session.execute(update(tables.ConsoleSession).values(expires_at=utc_now()))
    assert page(served, "/").status_code == 303


def test_expired_sessions_are_removed_at_the_next_sign_in(
    served: Served, factory: sessionmaker[Session]
) -> None:
    key = served.key()
    sign_in(served, key)
    with transaction(factory) as session:
        session.execute(
            update(tables.ConsoleSession).values(expires_at=utc_now() - timedelta(minutes=1))
        )
    served.http.cookies.clear()
    sign_in(served, key)
    with factory() as session:
        rows = session.scalars(select(tables.ConsoleSession)).all()
    assert [row.token_hash for row in rows] == [token_hash(served.http.cookies[COOKIE])]


def test_console_pages_are_not_in_the_api_document(served: Served) -> None:
    paths = served.get("/openapi.json").json()["paths"]
    assert not {"/", "/sign-in", "/sign-out", "/waiting", "/invoices"} & set(paths)
