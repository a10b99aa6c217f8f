"""How console pages are made: Jinja2 templates (autoescaped) from the package, the filters
they use, and the headers every page carries (no caching, no framing, nothing but our own
stylesheet)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined

from connector.api.console.sessions import ConsoleUser
from connector.billing.money import Currency
from connector.render import money
from connector.settings import SalesforceSettings

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
GENERIC_LOGINS = ("https://login.salesforce.com", "https://test.salesforce.com")


def when(value: datetime | None) -> str:
    """A moment as the console shows it: UTC, to the minute."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def amount(value: Decimal | None, currency: str | Currency | None = None) -> str:
    return money(value, currency)


def plain_amount(value: Decimal | None, currency: str | Currency | None = None) -> str:
    """An amount without its code, where a heading names the currency."""
    return money(value, currency, code=False)


def percent(value: Decimal | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def salesforce_url(settings: SalesforceSettings, record_id: str) -> str:
    """Where a person opens a record in Salesforce: on the org's own URL when it is known;
    else through the login page, which opens the record once signed in."""
    base = (settings.instance_url or settings.login_url).rstrip("/")
    if settings.instance_url or base not in GENERIC_LOGINS:
        return f"{base}/{quote(record_id, safe='')}"
    return f"{base}/?{urlencode({'startURL': '/' + record_id})}"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("connector.api", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when, amount=amount, plain_amount=plain_amount, percent=percent, number=number
    )
    return env


ENVIRONMENT = _environment()


def page(
    request: Request,
    template: str,
    user: ConsoleUser | None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """The page ``template`` for ``user`` (None on the sign-in page), with ``context``."""
    html = ENVIRONMENT.get_template(template).render(
        request=request, user=user, path=request.url.path, **context
    )
    return HTMLResponse(html, status_code, headers={**SECURITY_HEADERS, **(headers or {})})


def redirect(location: str) -> RedirectResponse:
    """See other: after a form, or to the sign-in page."""
    return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)
