"""The ``connector`` command line: parse, call a service, print.

Exit codes: 0 success, 1 when some records failed or a request was refused, 2 on a
configuration error, 75 (EXIT_INSTANCE_ACTIVE) when a cycle or stage did nothing because another
instance is active on the database.
"""

from __future__ import annotations

import calendar
import functools
import getpass
import json
import logging
import re
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, ParamSpec, TypeVar
from urllib.parse import parse_qs, urlsplit

import typer
from rich.console import Console
from typer.core import TyperGroup

from connector import __version__, logs
from connector.errors import (
    ConfigError,
    ConnectorError,
    InstanceActiveError,
    InvalidInputError,
    LedgerFileError,
)

# Each command imports the services it uses when it runs: `connector --help` and every command
# start without loading what they do not use (the database, the settings, the scheduler, the
# ledger, the emulators, the demo).
if TYPE_CHECKING:
    from rich.progress import Progress
    from sqlalchemy import Engine
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session, sessionmaker

    from connector.settings import Settings
    from connector.sync.demo import DemoMonth

P = ParamSpec("P")
R = TypeVar("R")
# Another instance holds the database's actor lock: nothing was done, nothing failed, nothing
# waits; try again later (EX_TEMPFAIL of sysexits.h), distinct from 1 (something waits or
# failed) and 2 (configuration).
EXIT_INSTANCE_ACTIVE = 75

console = Console()
errors = Console(stderr=True, soft_wrap=True)


def _config_first(args: list[str]) -> list[str]:
    """``args`` with every ``--config FILE`` moved to the front, where the root command reads
    it: the option may be given before or after the command."""
    moved: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":  # what follows is arguments, whatever it looks like
            rest.extend(args[index:])
            break
        if arg == "--config" and index + 1 < len(args):
            moved.extend(args[index : index + 2])
            index += 2
            continue
        (moved if arg.startswith("--config=") else rest).append(arg)
        index += 1
    return moved + rest


class _RootGroup(TyperGroup):
    """The ``connector`` command, whose ``--config`` may follow the subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _config_first(args))


def _day_option(value: Any) -> datetime:
    """An option's day (YYYY-MM-DD), refused with why when the calendar has no such day."""
    if isinstance(value, datetime):
        return value
    try:
        return datetime.combine(parse_day(str(value)), time())
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def parse_day(text: str) -> date:
    """The day ``text`` (YYYY-MM-DD) names; ValueError saying why when it names none."""
    found = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a date: write it YYYY-MM-DD")
    year, month, day = (int(part) for part in found.groups())
    if year < 1 or not 1 <= month <= 12:
        raise ValueError(f"{text} does not exist: there is no month {month} of year {year}")
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        raise ValueError(
            f"{text} does not exist: {calendar.month_name[month]} {year} has {last} days"
        )
    return date(year, month, day)


DocumentStatus = Literal["open", "paid", "void", "issued"]
DocumentKind = Literal["invoice", "credit_note"]

app = typer.Typer(
    cls=_RootGroup,
    help="Bills won Salesforce deals automatically and keeps accounting in sync.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
report_app = typer.Typer(help="Reports.", no_args_is_help=True)
invoice_app = typer.Typer(help="Invoices and credit notes.", no_args_is_help=True)
payment_app = typer.Typer(help="Payments and refunds.", no_args_is_help=True)
revenue_app = typer.Typer(help="Revenue recognition.", no_args_is_help=True)
ledger_app = typer.Typer(
    help="The books: closing periods (any target), checking the Beancount ledger.",
    no_args_is_help=True,
)
xero_app = typer.Typer(help="The Xero connection.", no_args_is_help=True)
review_app = typer.Typer(help="Records held for review.", no_args_is_help=True)
email_app = typer.Typer(help="E-mail to customers.", no_args_is_help=True)
apikey_app = typer.Typer(help="Keys of the HTTP API and the console.", no_args_is_help=True)
webhook_app = typer.Typer(
    help="Webhook endpoints (Standard Webhooks) and their deliveries.", no_args_is_help=True
)
usage_app = typer.Typer(
    help="Metered usage: events in, usage and charges out.", no_args_is_help=True
)
sandbox_app = typer.Typer(
    help="A local Salesforce org for dry runs and tests.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(report_app, name="report")
app.add_typer(invoice_app, name="invoice")
app.add_typer(payment_app, name="payment")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(revenue_app, name="revenue")
app.add_typer(ledger_app, name="ledger")
app.add_typer(xero_app, name="xero")
app.add_typer(review_app, name="review")
app.add_typer(email_app, name="email")
app.add_typer(apikey_app, name="apikey")
app.add_typer(webhook_app, name="webhook")
app.add_typer(usage_app, name="usage")

DateOption = Annotated[
    datetime | None,
    typer.Option(
        "--as-of",
        parser=_day_option,
        metavar="YYYY-MM-DD",
        help="Business date (default: today, UTC).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@dataclass
class CliState:
    config: Path | None
    _settings: Settings | None = None
    context: typer.Context | None = None  # the command line's, closed when the command ends

    @property
    def settings(self) -> Settings:
        from connector.settings import load_settings

        if self._settings is None:
            self._settings = load_settings(self.config)
            logs.configure(self._settings.log_level, self._settings.log_format)
        return self._settings

    def database(self, *, create: bool = True, alone: bool = False) -> sessionmaker[Session]:
        """Sessions on the configured database, with pending migrations applied. A SQLite file
        that does not exist is created, unless ``create`` is False (commands that only read):
        then it is a configuration error. ``alone``: a cycle or a stage, which acts as
        ``connector run`` does, holding the database's actor lock until the command ends; when
        another instance holds it, nothing is done and the command exits with
        EXIT_INSTANCE_ACTIVE."""
        from connector.db.actor_lock import acting_alone
        from connector.db.engine import session_factory
        from connector.db.migrate import ensure_schema

        engine = self.engine(create=create)
        if alone and self.context is not None:
            try:  # held until the command ends, however it ends
                self.context.with_resource(acting_alone(engine))
            except InstanceActiveError as error:
                errors.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
                raise typer.Exit(EXIT_INSTANCE_ACTIVE) from None
        ensure_schema(engine)
        return session_factory(engine)

    def engine(self, *, create: bool = True) -> Engine:
        from connector.db.engine import display_url, make_engine, sqlite_file

        url = self.settings.database_url.get_secret_value()
        path = sqlite_file(url)
        if not create and path is not None and not path.is_file():
            raise ConfigError(
                f"the database {display_url(url)} does not exist: set database_url "
                "(CONNECTOR_DATABASE_URL) to the connector's database, or create it with "
                "`connector db upgrade`"
            )
        return make_engine(url, lock_timeout=self.settings.database_lock_timeout_seconds)


def _state(ctx: typer.Context) -> CliState:
    state = ctx.find_root().obj
    assert isinstance(state, CliState)
    return state


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn our errors into a clear message and an exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            try:
                return command(*args, **kwargs)
            except (SQLAlchemyError, OSError) as error:
                ctx = kwargs.get("ctx")
                state = ctx.find_root().obj if hasattr(ctx, "find_root") else None
                failure = _failure(error, state if isinstance(state, CliState) else None)
                if failure is None:  # a bug: its traceback is the report
                    raise
                raise failure from error
        except ConfigError as error:
            errors.print(f"configuration error: {error}", markup=False, highlight=False)
            raise typer.Exit(2) from None
        except ConnectorError as error:
            errors.print(f"error: {error}", markup=False, highlight=False)
            raise typer.Exit(1) from None

    return wrapper


def _failure(error: SQLAlchemyError | OSError, state: CliState | None) -> ConnectorError | None:
    """Our error for a refusal of the database or the file system, naming what and where."""
    from connector.db.engine import display_url
    from connector.db.failures import database_failure

    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return ConnectorError(f"{where}{error.strerror or error}")
    settings = state._settings if state is not None else None
    if settings is None:
        return database_failure(error, "in use", lock_timeout=0)
    return database_failure(
        error,
        display_url(settings.database_url.get_secret_value()),
        lock_timeout=settings.database_lock_timeout_seconds,
    )


def _today() -> date:
    return datetime.now(UTC).date()


def _day(value: datetime | None) -> date:
    return value.date() if value is not None else _today()


def _print_once(notice: str, secret: str) -> None:
    """A new secret: ``notice`` on stderr, the secret alone on stdout, for scripts
    (``KEY=$(connector apikey create ...)``); it is never shown again."""
    errors.print(notice, markup=False, highlight=False, soft_wrap=True)
    print(secret)


def _print_json(data: Any) -> None:
    from connector.render import json_default

    console.print_json(json.dumps(data, default=json_default))


def _show_version(value: bool) -> None:
    if value:
        console.print(__version__)
        raise typer.Exit()


@app.callback()
def options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML settings file, before or after the command (default: "
            "$CONNECTOR_CONFIG_FILE or config/connector.toml).",
        ),
    ] = None,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    ctx.obj = CliState(config, context=ctx)


@app.command()
def version() -> None:
    """Print the connector's version."""
    console.print(__version__)


@db_app.command("upgrade")
@handles_errors
def db_upgrade(ctx: typer.Context) -> None:
    """Apply pending schema migrations."""
    from connector.db.engine import display_url
    from connector.db.migrate import current_revision, upgrade

    state = _state(ctx)
    url = state.settings.database_url.get_secret_value()
    engine = state.engine()
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    message = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    console.print(
        f"{display_url(url)}: {message} revision {after}", highlight=False, soft_wrap=True
    )


@db_app.command("current")
@handles_errors
def db_current(ctx: typer.Context) -> None:
    """Show the schema revision of the database and the latest one."""
    from connector.db.engine import display_url
    from connector.db.migrate import current_revision, head_revision

    state = _state(ctx)
    url = state.settings.database_url.get_secret_value()
    current = current_revision(state.engine(create=False))
    console.print(
        f"{display_url(url)}: revision {current or 'none'} (latest {head_revision()})",
        highlight=False,
        soft_wrap=True,
    )


@app.command("import")
@handles_errors
def import_command(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="YAML file of customers, prices, contracts, events.")
    ],
    as_of: DateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import customers, products, prices, contracts and events from a YAML file."""
    from connector.db.engine import transaction
    from connector.sync.importer import import_file
    from connector.sync.limits import plausibility_limits

    state = _state(ctx)
    factory = state.database()
    with transaction(factory) as session:
        result = import_file(
            session,
            file,
            as_of=_day(as_of),
            default_currency=state.settings.billing.default_currency,
            limits=plausibility_limits(state.settings),
        )
    if as_json:
        _print_json(result.to_dict())
    else:
        for section, count in result.imported.items():
            console.print(f"{section}: {count} imported")
        if result.pending_events:
            console.print(f"events: {result.pending_events} dated later, left for a later import")
        for message in result.errors:
            errors.print(f"error: {message}", markup=False, highlight=False)
    if result.errors:
        raise typer.Exit(1)


@app.command()
@handles_errors
def bill(ctx: typer.Context, as_of: DateOption = None, as_json: JsonOption = False) -> None:
    """Invoice every period started by the as-of date and not yet invoiced."""
    from connector.render import billing_summary
    from connector.sync.billing_run import due_count, run_billing

    state = _state(ctx)
    factory = state.database(alone=True)
    day = _day(as_of)
    total = due_count(factory, day)
    if as_json or not console.is_terminal or total < state.settings.billing.batch_size:
        result = run_billing(factory, state.settings, day)
    else:
        with _progress() as progress:
            task = progress.add_task("billing", total=total)
            result = run_billing(factory, state.settings, day, lambda n: progress.advance(task, n))
    if as_json:
        _print_json(result.to_dict())
    else:
        console.print(billing_summary(result))
        for subscription_id, reason in sorted(result.failed.items()):
            errors.print(
                f"error: subscription {subscription_id}: {reason}", markup=False, highlight=False
            )
    if result.failed:
        raise typer.Exit(1)


@app.command()
@handles_errors
def pull(ctx: typer.Context, as_of: DateOption = None, as_json: JsonOption = False) -> None:
    """Pull accounts and won deals changed in Salesforce into the billing core."""
    from connector.render import pull_summary
    from connector.sync import crm_pull

    state = _state(ctx)
    factory = state.database(alone=True)
    result = crm_pull.pull(factory, state.settings, as_of=_day(as_of))
    if as_json:
        _print_json(result.to_dict())
    else:
        console.print(pull_summary(result))
    if result.stopped:
        errors.print(f"stopped early: {result.stopped}", markup=False, highlight=False)
    if result.quarantined or result.held or result.stopped:
        raise typer.Exit(1)


@app.command()
@handles_errors
def push(
    ctx: typer.Context,
    as_json: JsonOption = False,
    retry_parked: Annotated[
        bool,
        typer.Option(
            "--retry-parked", help="Try the documents the target refused again (cause fixed)."
        ),
    ] = False,
) -> None:
    """Read back payments recorded in accounting, then post new documents there."""
    from connector.db import outbox
    from connector.db.engine import transaction
    from connector.sync import push as sync_push

    state = _state(ctx)
    factory = state.database(alone=True)
    target = sync_push.make_target(state.settings, factory)
    sync_push.check_target(target)  # a configuration error stops it before anything is done
    if retry_parked:
        with transaction(factory) as session:
            again = outbox.retry_parked(session, target.name)
        console.print(f"{again} parked documents back in line", highlight=False)
    try:
        payments = sync_push.read_payments(factory, state.settings, target)  # before allocating
    except LedgerFileError:  # one of the connector's batch files: the push moves it aside
        payments = None
    posted = sync_push.push(factory, state.settings, target)
    if payments is None:  # the ledger loads again, or the error names finance's file
        payments = sync_push.read_payments(factory, state.settings, target)
    if as_json:
        _print_json({"push": posted.to_dict(), "payments": payments.to_dict()})
    else:
        console.print(
            f"{posted.target}: {posted.posted} posted, {posted.already_there} already there, "
            f"{posted.pending} to retry, {len(posted.parked)} parked; payments read back: "
            f"{payments.recorded} recorded, {payments.known} known",
            highlight=False,
        )
    for key, why in {**posted.parked, **payments.refused}.items():
        errors.print(f"error: {key}: {why}", markup=False, highlight=False)
    if posted.reposted and not as_json:
        console.print(
            f"no longer in the ledger, posted again: {', '.join(posted.reposted)}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    for why in posted.moved_aside.values():
        errors.print(f"error: {why}", markup=False, highlight=False, soft_wrap=True)
    if payments.stopped:
        errors.print(f"payments not read: {payments.stopped}", markup=False, highlight=False)
    if posted.parked or posted.pending or payments.refused or posted.moved_aside:
        raise typer.Exit(1)


@app.command()
@handles_errors
def send(
    ctx: typer.Context,
    as_json: JsonOption = False,
    retry_parked: Annotated[
        bool,
        typer.Option(
            "--retry-parked", help="Try the messages the mail server refused again (cause fixed)."
        ),
    ] = False,
) -> None:
    """The send stage once: render new documents as PDF, then e-mail new documents and the
    reminders due to their customers (each message once). Exit 1 while a message waits:
    refused, deferred by the server, or for its customer's billing address."""
    from connector.db.engine import transaction
    from connector.sync import sending
    from connector.sync.cycle import Runtime, send_stage

    state = _state(ctx)
    factory = state.database(alone=True)
    if retry_parked:
        with transaction(factory) as session:
            again = sending.retry_parked(session)
        console.print(f"{again} parked messages back in line", highlight=False)
    result = send_stage(Runtime(factory, state.settings)).sent
    if as_json:
        _print_json(result.to_dict())
    elif not state.settings.email.enabled:
        console.print(
            f"e-mail is disabled (email.enabled): {result.not_sent} messages not sent",
            highlight=False,
        )
    else:
        console.print(
            f"{result.sent} sent, {result.deferred} deferred, {len(result.parked)} parked, "
            f"{result.waiting} waiting for a billing address, {result.no_pdf} without a PDF yet",
            highlight=False,
            soft_wrap=True,
        )
    for what, answer in result.parked.items():
        errors.print(f"error: {what}: {answer}", markup=False, highlight=False)
    if result.parked or result.deferred or result.waiting or result.no_pdf:
        raise typer.Exit(1)


@email_app.command("seal-password")
@handles_errors
def email_seal_password(ctx: typer.Context) -> None:
    """Read the SMTP password from the terminal (or standard input) and print it sealed with
    the secrets key, for email.password: the configuration then holds no clear password."""
    from connector.encryption import TokenCipher

    settings = _state(ctx).settings
    plain = getpass.getpass("SMTP password: ") if sys.stdin.isatty() else sys.stdin.readline()
    plain = plain.rstrip("\r\n")
    if not plain:
        raise InvalidInputError("no password given")
    cipher = TokenCipher.from_settings(settings.secrets, settings.database_url.get_secret_value())
    print(cipher.seal(plain))


@revenue_app.command("close")
@handles_errors
def revenue_close(
    ctx: typer.Context, as_of: DateOption = None, as_json: JsonOption = False
) -> None:
    """Journal the revenue recognized through the as-of date (each day once)."""
    from connector.sync.revenue_close import close_revenue

    result = close_revenue(_state(ctx).database(alone=True), _day(as_of))
    if as_json:
        _print_json(result.to_dict())
    else:
        console.print(
            f"revenue through {result.as_of}: {result.journals} journals for "
            f"{result.documents} documents",
            highlight=False,
        )


@xero_app.command("connect")
@handles_errors
def xero_connect(
    ctx: typer.Context,
    code: Annotated[
        str, typer.Option(help="The code Xero sent to the redirect URI after consent.")
    ] = "",
    url: Annotated[str, typer.Option(help="Or the whole URL the browser was redirected to.")] = "",
) -> None:
    """Connect Xero (authorization_code): without --code, print the consent URL; with it,
    store the tokens and list the organisations they reach."""
    from connector.accounting.xero.target import xero_auth

    state = _state(ctx)
    auth = xero_auth(state.settings, state.database())
    if url and not code:
        query = parse_qs(urlsplit(url).query)
        if "error" in query:
            raise ConfigError(f"Xero refused the consent: {query['error'][0]}")
        code = (query.get("code") or [""])[0]
        if not code:
            raise ConfigError(f"no code= in {url}")
    if state.settings.xero.grant == "authorization_code":
        if not code:
            consent, _ = auth.authorization_url()
            console.print(
                "Open this URL, consent, then run `connector xero connect --url '<the URL you "
                f"were sent to>'`:\n{consent}",
                highlight=False,
                soft_wrap=True,
            )
            return
        auth.connect(code)
        console.print("Xero connected; the refresh token is stored in the database.")
    _print_tenants(auth.tenants(), state.settings.xero.tenant_id)


@xero_app.command("tenants")
@handles_errors
def xero_tenants(ctx: typer.Context) -> None:
    """List the organisations the connection reaches (set one as xero.tenant_id)."""
    from connector.accounting.xero.target import xero_auth

    state = _state(ctx)
    _print_tenants(
        xero_auth(state.settings, state.database()).tenants(), state.settings.xero.tenant_id
    )


def _print_tenants(tenants: list[dict[str, Any]], chosen: str) -> None:
    for tenant in tenants:
        mark = " (xero.tenant_id)" if tenant.get("tenantId") == chosen else ""
        console.print(
            f"{tenant.get('tenantId')}  {tenant.get('tenantName')}  "
            f"{tenant.get('tenantType')}{mark}",
            highlight=False,
        )


@ledger_app.command("check")
@handles_errors
def ledger_check(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Check the ledger (bean-check) and reconcile it with the billing core."""
    from connector.accounting.ledger import Ledger
    from connector.db.engine import transaction
    from connector.sync import push as sync_push
    from connector.sync.ledger_check import check_ledger

    state = _state(ctx)
    factory = state.database()
    target = sync_push.make_target(state.settings, factory)
    if not isinstance(target, Ledger):
        raise ConfigError("ledger check needs accounting.target = ledger")
    with transaction(factory) as session:
        result = check_ledger(session, target)
    if as_json:
        _print_json(result.to_dict())
    else:
        for difference in result.differences:
            console.print(difference, highlight=False, markup=False, soft_wrap=True)
        console.print(
            f"{target.path}: {result.documents} documents, {result.customers} customers, "
            f"{len(result.differences)} differences, {result.waiting} waiting to be posted",
            highlight=False,
            soft_wrap=True,
        )
    if not result.ok:
        raise typer.Exit(1)


@ledger_app.command("close")
@handles_errors
def ledger_close(  # noqa: PLR0917 - one parameter per option
    ctx: typer.Context,
    through: Annotated[
        str,
        typer.Option(
            "--through",
            help="Close the books through this day (YYYY-MM-DD): nothing is dated on or "
            "before it any more.",
        ),
    ],
    reopen: Annotated[
        bool,
        typer.Option("--reopen", help="Move the closing back to an earlier day (reopen)."),
    ] = False,
    by: Annotated[
        str | None, typer.Option("--by", help="Who closes (default: the user running this).")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why (kept with the closing).")] = None,
    as_of: DateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Close the books through a day: later entries dated on or before it (a late credit note,
    revenue caught up, a void) are booked on the first open day instead."""
    from connector.sync import closing

    state = _state(ctx)
    try:
        day = parse_day(through)
    except ValueError as error:
        errors.print(f"error: --through: {error}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    try:
        result = closing.close_books(
            state.database(),
            day,
            by=by or _user(),
            today=_day(as_of),
            reopen=reopen,
            reason=reason,
            targets=[state.settings.accounting.target],
        )
    except closing.ClosingRefusedError as error:
        errors.print(f"error: {error}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        _print_json(result.to_dict())
        return
    books = result.books
    if not result.changed:
        console.print(f"the books are already closed through {day}", highlight=False)
    else:
        was = f" (was {result.previous})" if result.previous else ""
        verb = "reopened: now closed" if books.reopened else "closed"
        console.print(
            f"books {verb} through {books.closed_through}{was} by {books.closed_by}; "
            f"entries dated on or before it are booked on {books.first_open_day}",
            highlight=False,
        )
    for target, count in result.waiting.items():
        if count:
            console.print(
                f"{target}: {count} documents waiting to be posted (those dated on or before "
                f"{books.closed_through} will be booked on {books.first_open_day})",
                highlight=False,
            )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        return "unknown"


@app.command()
@handles_errors
def sync(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Run one full cycle and exit.")] = False,
    as_of: DateOption = None,
    as_json: JsonOption = False,
) -> None:
    """One full cycle: pull, bill, close revenue, push to accounting, read payments, write
    back. Exit 0 when everything synced, 1 when something is quarantined or failed."""
    from connector.render import json_default
    from connector.sync.cycle import run_cycle

    if not once:
        raise ConfigError("sync runs one cycle: give --once (connector run schedules cycles)")
    state = _state(ctx)
    result = run_cycle(state.database(alone=True), state.settings, _day(as_of))
    if as_json:
        _print_json(result.to_dict())
    else:
        for stage, summary in result.stages.items():
            console.print(f"{stage}: {json.dumps(summary, default=json_default)}", soft_wrap=True)
        for stage, error in result.errors.items():
            errors.print(f"error: {stage}: {error}", markup=False, highlight=False)
    if not result.clean:
        raise typer.Exit(1)


@app.command()
@handles_errors
def run(ctx: typer.Context) -> None:
    """Run the scheduled jobs in the foreground. A second instance on the same database stands
    by and takes over when the first stops; SIGTERM or Ctrl-C ends after the batch in hand."""
    from jobs.service import serve, stop_on_signals

    settings = _state(ctx).settings
    with stop_on_signals() as stop:
        code = serve(settings, stop)
    raise typer.Exit(code)


@app.command()
@handles_errors
def serve(ctx: typer.Context) -> None:
    """Serve the HTTP API, the webhooks' console and /metrics alone, without the scheduler: a
    second replica beside `connector run`. It serves reads and health; requests that need the
    active instance (running a stage) answer 503. SIGTERM or Ctrl-C stops it."""
    from jobs.service import serve as serve_service
    from jobs.service import stop_on_signals

    settings = _state(ctx).settings
    with stop_on_signals() as stop:
        code = serve_service(settings, stop, scheduling=False)
    raise typer.Exit(code)


@apikey_app.command("create")
@handles_errors
def apikey_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="What the key is for (unique).")],
    scope: Annotated[
        str, typer.Option("--scope", help="read, or write (which reads too).")
    ] = "read",
) -> None:
    """Make an API key and print it, once: only its hash is kept."""
    from connector.api.keys import create_key
    from connector.db.engine import transaction

    with transaction(_state(ctx).database()) as session:
        info, key = create_key(session, name, scope)
    _print_once(
        f"API key {info.name!r} ({info.scope}). It is shown this once; keep it secret:", key
    )


@apikey_app.command("list")
@handles_errors
def apikey_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """The API keys: name, scope, first characters, created, last used, revoked."""
    from connector.api.keys import list_keys
    from connector.db.engine import reading
    from connector.render import key_table

    with reading(_state(ctx).database(create=False)) as session:
        keys = list_keys(session)
    if as_json:
        _print_json([key.to_dict() for key in keys])
    else:
        console.print(key_table(keys))


@apikey_app.command("revoke")
@handles_errors
def apikey_revoke(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The key's name.")]
) -> None:
    """Revoke a key: it stops working at once, and the console sessions opened with it end."""
    from connector.api.keys import revoke_key
    from connector.db.engine import transaction

    with transaction(_state(ctx).database(create=False)) as session:
        info = revoke_key(session, name)
    console.print(f"revoked {info.name!r} ({info.prefix}…)", markup=False, highlight=False)


@webhook_app.command("add")
@handles_errors
def webhook_add(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Argument(help="Where to post: https://, or http:// to localhost only.")
    ],
    events: Annotated[
        str,
        typer.Option(
            "--events",
            help="Event types, comma-separated (customer.created,invoice.paid,...), or * for all.",
        ),
    ],
) -> None:
    """Add an endpoint and print its signing secret (whsec_...), once: receivers verify each
    request with it (the standardwebhooks library)."""
    from connector.db.engine import transaction
    from connector.encryption import TokenCipher
    from connector.webhooks.endpoints import add_endpoint

    state = _state(ctx)
    settings = state.settings
    cipher = TokenCipher.from_settings(settings.secrets, settings.database_url.get_secret_value())
    with transaction(state.database()) as session:
        info, secret = add_endpoint(session, cipher, url, events)
    _print_once(
        f"webhook endpoint {info.id}: {info.url} ({', '.join(info.events)}). Its signing "
        "secret is shown this once; keep it secret:",
        secret,
    )


@webhook_app.command("list")
@handles_errors
def webhook_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """The endpoints: URL, events, enabled (or why not), and their deliveries per state."""
    from connector.db.engine import reading
    from connector.render_webhooks import endpoint_table
    from connector.webhooks.endpoints import list_endpoints

    with reading(_state(ctx).database(create=False)) as session:
        endpoints = list_endpoints(session)
    if as_json:
        _print_json([endpoint.to_dict() for endpoint in endpoints])
    else:
        console.print(endpoint_table(endpoints))


@webhook_app.command("remove")
@handles_errors
def webhook_remove(
    ctx: typer.Context, endpoint_id: Annotated[int, typer.Argument(help="The endpoint's id.")]
) -> None:
    """Remove an endpoint with its deliveries: nothing more is sent to it."""
    from connector.db.engine import transaction
    from connector.webhooks.endpoints import remove_endpoint

    with transaction(_state(ctx).database(create=False)) as session:
        info = remove_endpoint(session, endpoint_id)
    console.print(f"removed webhook endpoint {info.id} ({info.url})", markup=False)


@webhook_app.command("enable")
@handles_errors
def webhook_enable(
    ctx: typer.Context, endpoint_id: Annotated[int, typer.Argument(help="The endpoint's id.")]
) -> None:
    """Enable an endpoint its receiver disabled (410 Gone): the deliveries disabled with it are
    sent again, with their event ids, by the next webhooks run."""
    from connector.db.engine import transaction
    from connector.webhooks.endpoints import enable_endpoint

    with transaction(_state(ctx).database(create=False)) as session:
        info, again = enable_endpoint(session, endpoint_id)
    console.print(
        f"webhook endpoint {info.id} ({info.url}) is enabled; "
        f"{again} {'delivery' if again == 1 else 'deliveries'} to send again",
        markup=False,
        highlight=False,
    )


@webhook_app.command("deliveries")
@handles_errors
def webhook_deliveries(
    ctx: typer.Context,
    endpoint: Annotated[
        int | None, typer.Option("--endpoint", help="Only this endpoint's (its id).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """The latest deliveries, newest first: event, state, tries, last answer, next try."""
    from connector.db.engine import reading
    from connector.render_webhooks import delivery_table
    from connector.sync.webhook_status import recent_deliveries

    with reading(_state(ctx).database(create=False)) as session:
        found = recent_deliveries(session, endpoint, limit)
    if as_json:
        _print_json([row.to_dict() for row in found])
    else:
        console.print(delivery_table(found))


def _usage_mapping(state: CliState) -> Any:
    from connector.sync.usage_mapping import usage_mapping_of

    return usage_mapping_of(state.settings)


@usage_app.command("import")
@handles_errors
def usage_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or JSON Lines file of usage events.")],
    file_format: Annotated[
        str | None,
        typer.Option("--format", help="csv or jsonl (default: from the file's extension)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import usage events from a file, streamed; exit 1 when some were refused."""
    from connector.sync.usage_events import Limits
    from connector.sync.usage_import import import_events

    state = _state(ctx)
    settings = state.settings.usage
    mapping = _usage_mapping(state)
    factory = state.database()

    def refused(line: int, transaction_id: str | None, reason: str) -> None:
        if not as_json:
            which = f" ({transaction_id})" if transaction_id else ""
            errors.print(f"{file}:{line}{which}: {reason}", markup=False, highlight=False)

    summary = import_events(
        factory,
        mapping.metrics,
        file,
        file_format=file_format,
        limits=Limits.of(settings.max_future_seconds, settings.max_age_days),
        batch_size=settings.batch_size,
        on_refused=refused,
    )
    if as_json:
        _print_json(summary.to_dict())
    else:
        console.print(
            f"{file}: {summary.accepted} imported, {summary.duplicates} duplicates, "
            f"{summary.refused} refused",
            highlight=False,
            soft_wrap=True,
        )
    if summary.refused:
        raise typer.Exit(1)


@usage_app.command("show")
@handles_errors
def usage_show(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Our customer id or its Salesforce Account Id.")],
    start: Annotated[
        datetime | None,
        typer.Option(
            "--from",
            parser=_day_option,
            metavar="YYYY-MM-DD",
            help="First day (default: the first of --to's month).",
        ),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option(
            "--to",
            parser=_day_option,
            metavar="YYYY-MM-DD",
            help="Last day (default: the last of --from's month).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A customer's usage in its subscriptions' current periods, priced by their metered items,
    with the next invoice's fixed fees; --from/--to: those days instead (no fees)."""
    from connector.billing.periods import Period
    from connector.render_usage import usage_table
    from connector.sync.usage_report import current_usage, month_of

    state = _state(ctx)
    factory = state.database(create=False)
    now = datetime.now(UTC)
    period = None
    if end is not None and start is None:
        start = datetime.combine(month_of(end.date()).start, datetime.min.time(), UTC)
    if start is not None:
        first = start.date()
        last = end.date() if end is not None else month_of(first).end
        if last < first:
            raise InvalidInputError(f"--to {last} is before --from {first}")
        period = Period(first, last)
    report = current_usage(factory, state.settings, customer, now, period)
    if as_json:
        _print_json(report.to_dict())
    else:
        console.print(usage_table(report))


@app.command()
@handles_errors
def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Last run of each job, cursors, records waiting with their reasons, the outbox of each
    accounting target, refused write-backs, and API usage today. Exit 1 while anything waits
    for a person (a record, a parked document, a failed run), 0 when all is well."""
    from connector.db.engine import transaction
    from connector.render import status_report
    from connector.sync import status as sync_status
    from connector.sync.cycle import STAGES

    state = _state(ctx)
    factory = state.database(create=False)
    with transaction(factory) as session:
        report = sync_status.status(
            session,
            _today(),
            jobs=STAGES,
            targets=[state.settings.accounting.target],
            home_country=state.settings.tax.home_country,
            email_enabled=state.settings.email.enabled,
        )
    if as_json:
        _print_json(report.to_dict())
    else:
        console.print(status_report(report))
    attention = report.attention()
    for line in attention:  # exit 1 while anything waits for a person: monitoring can trust it
        errors.print(f"attention: {line}", markup=False, highlight=False, soft_wrap=True)
    if attention:
        raise typer.Exit(1)


@report_app.command("mrr")
@handles_errors
def report_mrr(
    ctx: typer.Context,
    as_of: DateOption = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            parser=_day_option,
            metavar="YYYY-MM-DD",
            help="Start of the movement window (default: a month earlier).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """MRR, ARR, ARPU, customers, MRR movements, churn, LTV and retention per currency."""
    from connector.render import metrics_dict, metrics_tables
    from connector.sync.reports import subscription_metrics

    factory = _state(ctx).database(create=False)
    metrics = subscription_metrics(factory, _day(as_of), since.date() if since else None)
    if as_json:
        _print_json([metrics_dict(m) for m in metrics])
    elif not metrics:
        console.print("no subscriptions yet")
    else:
        for table in metrics_tables(metrics):
            console.print(table)


@report_app.command("aging")
@handles_errors
def report_aging(ctx: typer.Context, as_of: DateOption = None, as_json: JsonOption = False) -> None:
    """Aged receivables per customer and currency: not yet due, 1–30, 31–60, 61–90 and over
    90 days past due, totals per currency, and unapplied credit (never netted); then each
    past-due invoice with the collections (dunning) step it reached and any open dispute."""
    from connector.render import aging_dict, aging_report
    from connector.render_collections import collections_dict, collections_table
    from connector.sync import aging as sync_aging

    day = _day(as_of)
    with _state(ctx).database(create=False)() as session:
        report = sync_aging.aged_receivables(session, day)
        invoices = sync_aging.past_due_invoices(session, day)
    if as_json:
        _print_json({**aging_dict(report, day), "invoices": collections_dict(invoices)})
        return
    console.print(aging_report(report, day, console.width))
    if invoices:
        console.print(collections_table(invoices, day))


@review_app.command("list")
@handles_errors
def review_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Records held for review with the reason, and the latest approvals."""
    from connector.render import review_report
    from connector.sync import review as sync_review

    with _state(ctx).database(create=False)() as session:
        report = sync_review.review(session)
    if as_json:
        _print_json(report.to_dict())
    else:
        console.print(review_report(report))


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment
        return "unknown"


@review_app.command("approve")
@handles_errors
def review_approve(
    ctx: typer.Context,
    record_id: Annotated[
        str, typer.Argument(metavar="SALESFORCE_ID", help="Id of the held record.")
    ],
    by: Annotated[
        str | None, typer.Option("--by", help="Who approves it (default: the OS user).")
    ] = None,
    as_of: DateOption = None,
) -> None:
    """Apply a record held for an implausible date or amount as it is; the approval is
    recorded with who and when, for this version of the record."""
    from connector.sync import review as sync_review

    state = _state(ctx)
    who = by if by is not None else _os_user()
    done = sync_review.approve(
        state.database(), state.settings, record_id, by=who, as_of=_day(as_of)
    )
    approval = done.approval
    console.print(
        f"{approval.object} {record_id} approved by {approval.approved_by} at "
        f"{approval.approved_at.isoformat(timespec='seconds')}: {done.state}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if done.reason:
        errors.print(f"waiting: {done.reason}", markup=False, highlight=False)
        raise typer.Exit(1)


@invoice_app.command("list")
@handles_errors
def invoice_list(
    ctx: typer.Context,
    status: Annotated[
        DocumentStatus | None,
        typer.Option(help="Invoices open, paid or void; credit notes issued."),
    ] = None,
    kind: Annotated[DocumentKind | None, typer.Option(help="Only this kind.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most recent N documents.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List the most recent invoices and credit notes."""
    from connector.render import document_table
    from connector.sync.reports import list_documents

    factory = _state(ctx).database(create=False)
    with factory() as session:
        rows = list_documents(session, status=status, kind=kind, limit=limit)
    if as_json:
        _print_json([{"customer": name, **_document_dict(doc)} for doc, name in rows])
    else:
        console.print(document_table(rows, console.width))


@invoice_app.command("show")
@handles_errors
def invoice_show(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="Invoice or credit note number.")],
    as_json: JsonOption = False,
) -> None:
    """Show one invoice or credit note with its lines and taxes."""
    from connector.db.documents import find_document
    from connector.render import document_detail
    from connector.sync.reports import document_view

    factory = _state(ctx).database(create=False)
    with factory() as session:
        view = document_view(session, find_document(session, number))
    if as_json:
        _print_json(
            {
                "customer": view.customer,
                "credited_invoice": view.credited_invoice,
                **_document_dict(view.document),
                "lines": [_row_dict(line) for line in view.lines],
                "taxes": [_row_dict(tax) for tax in view.taxes],
            }
        )
    else:
        console.print(document_detail(view))


@invoice_app.command("pdf")
@handles_errors
def invoice_pdf(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="Invoice or credit note number.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="File to write (default: NUMBER.pdf here), owner-only."),
    ] = None,
) -> None:
    """Write an invoice or credit note as PDF: the file kept for its current version (rendered
    and kept now if the cycle has not rendered it yet)."""
    from connector.documents.pdf import document_pdf
    from connector.private_files import write_private

    state = _state(ctx)
    pdf = document_pdf(state.database(create=False), state.settings, number)
    path = out or Path(pdf.filename)
    write_private(path, pdf.content)
    console.print(
        f"{path}: {pdf.filename}, version {pdf.version}, {len(pdf.content):,} bytes",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@invoice_app.command("void")
@handles_errors
def invoice_void(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="Invoice number.")],
    reason: Annotated[str | None, typer.Option(help="Why it is voided.")] = None,
) -> None:
    """Void an invoice issued in error; the next billing run bills its period again."""
    from connector.db.engine import transaction
    from connector.sync import contracts

    factory = _state(ctx).database()
    with transaction(factory) as session:
        invoice = contracts.void_invoice(session, number, reason)
    console.print(f"{invoice.number} is void")


@invoice_app.command("dispute")
@handles_errors
def invoice_dispute(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="Invoice number.")],
    reason: Annotated[
        str | None, typer.Option(help="Why the customer disputes it (opens the dispute).")
    ] = None,
    resolve: Annotated[
        bool, typer.Option("--resolve", help="Resolve the open dispute (collections resume).")
    ] = False,
) -> None:
    """Open a dispute of an invoice (no reminder goes out while it is open), or resolve it."""
    from connector.db.engine import transaction
    from connector.sync import disputes

    if resolve == (reason is not None):
        errors.print("error: give either --reason TEXT or --resolve", markup=False)
        raise typer.Exit(1)
    factory = _state(ctx).database()
    with transaction(factory) as session:
        if reason is not None:
            view = disputes.open_dispute(session, number, reason)
        else:
            view = disputes.resolve_dispute(session, number)
    if view.resolved_at is None:
        console.print(
            f"{view.number} disputed since {view.opened_at.isoformat(timespec='seconds')}: "
            f"{view.reason}; no reminder goes out until it is resolved",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    else:
        console.print(
            f"{view.number}: dispute resolved at {view.resolved_at.isoformat(timespec='seconds')}"
            "; collections resume",
            markup=False,
            highlight=False,
        )


@payment_app.command("record")
@handles_errors
def payment_record(  # noqa: PLR0917 - one parameter per option
    ctx: typer.Context,
    invoice: Annotated[str, typer.Argument(help="Invoice number the payment is for.")],
    amount: Annotated[str, typer.Argument(help="Amount received, in the invoice's currency.")],
    on: Annotated[
        datetime | None,
        typer.Option(
            "--date",
            parser=_day_option,
            metavar="YYYY-MM-DD",
            help="Day received (default: today, UTC).",
        ),
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="Bank reference; recording it twice changes nothing.")
    ] = None,
    as_json: JsonOption = False,
    again: Annotated[
        bool,
        typer.Option(
            "--again",
            help="Another payment of the same amount, day and invoice, recorded without a "
            "reference (refused otherwise, as the same payment recorded twice).",
        ),
    ] = False,
) -> None:
    """Record a payment for an invoice; any excess pays other open invoices or stays as credit."""
    from connector.billing.money import currency as currency_of
    from connector.billing.money import round_money, to_decimal
    from connector.db import tables
    from connector.db.documents import find_document
    from connector.db.engine import transaction
    from connector.render import money
    from connector.sync import settlement

    factory = _state(ctx).database()
    with _refusing_duplicates(), transaction(factory) as session:
        payment = settlement.record_payment(
            session,
            amount=to_decimal(amount, what="amount"),
            received_on=_day(on),
            invoice_number=invoice,
            reference=reference,
            again=again,
            max_amount=_state(ctx).settings.billing.max_amount,
        )
        doc = find_document(session, invoice)
        customer = session.get_one(tables.Customer, doc.customer_id).name
        kept = payment.credit_kept or Decimal(0)
    due = round_money(settlement.due_of(doc), currency_of(doc.currency))
    if as_json:
        _print_json(
            {
                "invoice": doc.number,
                "currency": doc.currency,
                "amount": payment.amount,
                "paid": doc.amount_paid,
                "due": due,
                "status": doc.status,
                "customer": customer,
                "credit_kept": kept,
            }
        )
        return
    console.print(
        f"{doc.number}: paid {money(doc.amount_paid, doc.currency)}, "
        f"due {money(due, doc.currency)}, {doc.status}"
    )
    if kept:
        console.print(f"{money(kept, doc.currency)} kept as credit for {customer}")


@contextmanager
def _refusing_duplicates() -> Iterator[None]:
    """The same payment or refund recorded twice: say how to record another one."""
    from connector.sync import settlement

    try:
        yield
    except settlement.DuplicatePaymentError as error:
        errors.print(
            f"error: {error}; if it is another one, record it with --again (or give each its "
            "--reference)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


@payment_app.command("refund")
@handles_errors
def payment_refund(  # noqa: PLR0917 - one parameter per option
    ctx: typer.Context,
    number: Annotated[
        str,
        typer.Argument(
            help="An invoice or credit note of the customer: the refund is paid out of the "
            "customer's credit in its currency."
        ),
    ],
    amount: Annotated[str, typer.Argument(help="Amount paid back, in that currency.")],
    on: Annotated[
        datetime | None,
        typer.Option(
            "--date",
            parser=_day_option,
            metavar="YYYY-MM-DD",
            help="Day refunded (default: today, UTC).",
        ),
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="Bank reference; recording it twice changes nothing.")
    ] = None,
    again: Annotated[
        bool,
        typer.Option(
            "--again",
            help="Another refund of the same amount and day to the customer, without a "
            "reference (refused otherwise, as the same refund recorded twice).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Pay a customer's credit back (a credit note on a paid invoice, an over-payment)."""
    from connector.billing.money import to_decimal
    from connector.db.engine import transaction
    from connector.render import money
    from connector.sync import corrections

    factory = _state(ctx).database()
    with _refusing_duplicates(), transaction(factory) as session:
        done = corrections.refund(
            session,
            number,
            amount=to_decimal(amount, what="amount"),
            on=_day(on),
            reference=reference,
            again=again,
        )
    refund = done.refund
    if as_json:
        _print_json(
            {
                "refund_id": refund.id,
                "customer": done.customer,
                "currency": refund.currency,
                "amount": refund.amount,
                "refunded_on": refund.received_on,
                "reference": refund.reference,
                "credit_left": done.credit_left,
            }
        )
        return
    console.print(
        f"refunded {money(refund.amount)} {refund.currency} to {done.customer} on "
        f"{refund.received_on}; credit left {money(done.credit_left)} {refund.currency}",
        highlight=False,
        markup=False,
    )


def _line_credits(text: str) -> dict[int, str | None]:
    """``1,3=20.00``: line 1 in full, 20.00 of line 3."""
    credits: dict[int, str | None] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        position, equals, value = part.partition("=")
        if not position.strip().isdigit() or (equals and not value.strip()):
            raise InvalidInputError(
                f"--lines {text!r}: give line numbers, each optionally =amount (1,3=20.00)"
            )
        credits[int(position)] = value.strip() or None
    if not credits:
        raise InvalidInputError("--lines names no line")
    return credits


@invoice_app.command("credit")
@handles_errors
def invoice_credit(  # noqa: PLR0917 - one parameter per option
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="Invoice number.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why it is credited (kept, and on its lines).")
    ],
    amount: Annotated[
        str | None,
        typer.Option(
            help="Amount before tax, spread over the invoice's lines in proportion to what "
            "each still holds (default: all it still holds)."
        ),
    ] = None,
    lines: Annotated[
        str | None,
        typer.Option(
            "--lines",
            help="Lines to credit, numbered as `invoice show` lists them: 1,3 (all they "
            "still hold) or 1=20.00,3 (amounts before tax).",
        ),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            help="The correction's reference: issuing it again changes nothing (default: the "
            "invoice and the reason)."
        ),
    ] = None,
    as_of: DateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a credit note on an invoice, paid or not: it reduces what the invoice still owes,
    and what is left is the customer's credit (refund it with `payment refund`)."""
    from connector.billing.money import currency as currency_of
    from connector.billing.money import round_money, to_decimal
    from connector.render import money
    from connector.sync import corrections

    state = _state(ctx)
    done = corrections.credit_invoice(
        state.database(),
        state.settings,
        number,
        reason=reason,
        on=_day(as_of),
        amount=None if amount is None else to_decimal(amount, what="amount"),
        lines=None if lines is None else _line_credits(lines),
        reference=reference,
    )
    note, invoice = done.credit_note, done.invoice
    kept = round_money(note.credit_kept or Decimal(0), currency_of(note.currency))
    if as_json:
        _print_json(
            {
                "credit_note": note.number,
                "invoice": invoice.number,
                "issued": done.issued,
                "customer": done.customer,
                "currency": note.currency,
                "subtotal": note.subtotal,
                "tax": note.tax_total,
                "total": note.total,
                "credit_kept": kept,
                "reference": note.reference,
                "reason": note.reason,
            }
        )
        return
    verb = "credits" if done.issued else "was already issued for this correction, crediting"
    console.print(
        f"{note.number} {verb} {invoice.number}: {money(note.subtotal)} + tax "
        f"{money(note.tax_total)} = {money(note.total)} {note.currency}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if kept:
        console.print(
            f"{money(kept)} {note.currency} kept as credit for {done.customer}",
            highlight=False,
            markup=False,
        )


@app.command()
@handles_errors
def demo(
    ctx: typer.Context,
    months: Annotated[int, typer.Option(min=1, max=24, help="Months to simulate.")] = 12,
    directory: Annotated[
        Path,
        typer.Option(
            "--dir", help="Throwaway directory for the demo's database, ledger and org (reset)."
        ),
    ] = Path("var/demo"),
    smtp: Annotated[
        str | None,
        typer.Option(
            "--smtp",
            metavar="HOST:PORT",
            help="E-mail the documents and reminders to this local SMTP sink (plain SMTP), "
            "e.g. 127.0.0.1:1025 of `python -m aiosmtpd -n -l 127.0.0.1:1025`.",
        ),
    ] = None,
) -> None:
    """Start the Salesforce sandbox with demo deals and run a simulated year of monthly
    cycles: pull, bill, close revenue, post to the ledger, chase late payers, render and
    (with --smtp) e-mail documents, read payments, write back."""
    from connector.render import demo_report
    from connector.sync.demo import reset_directory, run_demo

    settings = _state(ctx).settings
    reset_directory(directory)  # refused before anything starts when it is not the demo's
    if settings.log_level != "DEBUG":  # the report says what the job lines would
        logging.getLogger("connector").setLevel(logging.ERROR)
    with _progress() as progress:
        task = progress.add_task("starting the Salesforce sandbox", total=months)

        def advance(month: DemoMonth) -> None:
            progress.update(task, advance=1, description=f"cycle as of {month.last_day}")

        report = run_demo(
            settings, directory, months=months, on_month=advance, smtp=_smtp_address(smtp)
        )
    console.print(
        demo_report(report, fava=_command("fava"), connector=_command("connector")),
        soft_wrap=True,
    )


def _smtp_address(value: str | None) -> tuple[str, int] | None:
    """``HOST:PORT`` as (host, port); a configuration error (exit 2) when it is not one."""
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--smtp {value!r}: give HOST:PORT, e.g. 127.0.0.1:1025")
    return host, int(port)


def _command(name: str) -> str:
    """How to run ``name`` (connector, fava), installed beside this interpreter, from this
    shell: its name when the PATH finds that one (an activated virtual environment), else its
    path, relative when under the working directory (.venv/bin/fava)."""
    installed = Path(sys.executable).parent / name
    if not installed.exists():
        return name
    found = shutil.which(name)
    if found is not None and Path(found).resolve() == installed.resolve():
        return name
    try:
        return str(installed.relative_to(Path.cwd()))
    except ValueError:
        return str(installed)


@sandbox_app.command("serve")
@handles_errors
def sandbox_serve(  # noqa: PLR0917 - one parameter per option
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: a free one).")] = 8443,
    data: Annotated[
        str,
        typer.Option(help="SQLite file holding the org (created if missing), or :memory:."),
    ] = "var/sandbox.db",
    seed: Annotated[
        str | None, typer.Option(help="Fill a new org with sample data: demo or demo:N.")
    ] = None,
    info_file: Annotated[
        Path | None,
        typer.Option(help="Write connection details (JSON) here once the org is serving."),
    ] = None,
    api_version: Annotated[str, typer.Option(help="API version given in --info-file.")] = "59.0",
    daily_api_limit: Annotated[
        int, typer.Option(min=1, help="API calls allowed per UTC day.")
    ] = 15_000,
    session_ttl: Annotated[
        float, typer.Option(min=1, help="Seconds a session lives without use.")
    ] = 7200.0,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Inject faults: kind=503,count=3[,path=query][,sobject=Account]."),
    ] = None,
    fault_seed: Annotated[
        int, typer.Option(help="Seed for faults given as a rate (the same draws each run).")
    ] = 0,
    jwt_public_key: Annotated[
        Path | None, typer.Option(help="PEM public key that JWT bearer assertions must match.")
    ] = None,
    single_currency: Annotated[
        bool,
        typer.Option(
            "--single-currency",
            help="An org without multi-currency: no CurrencyIsoCode field, every record in USD.",
        ),
    ] = False,
    xero: Annotated[
        bool,
        typer.Option(
            "--xero", help="Also serve a fake Xero Accounting API (a free port, the same CA)."
        ),
    ] = False,
    xero_fault: Annotated[
        list[str] | None,
        typer.Option(
            help="Inject faults into the fake Xero: kind=429,count=1[,retry_after=30]"
            "[,method=PUT][,path=Invoices]."
        ),
    ] = None,
) -> None:
    """Serve a local HTTPS Salesforce org in the foreground (Ctrl-C stops it)."""
    from sandbox.salesforce.faults import parse_rule
    from sandbox.salesforce.server import Sandbox, SandboxConfig
    from sandbox.xero.faults import parse_xero_rule
    from sandbox.xero.server import XeroConfig, XeroSandbox

    if xero_fault and not xero:
        raise ConfigError("--xero-fault needs --xero (the fake Xero it injects faults into)")
    xero_faults = [parse_xero_rule(rule) for rule in xero_fault or []]
    config = SandboxConfig(
        data=None if data == ":memory:" else Path(data),
        host=host,
        port=port,
        seed=seed,
        api_version=api_version,
        daily_api_limit=daily_api_limit,
        session_ttl=session_ttl,
        faults=[parse_rule(rule) for rule in fault or []],
        fault_seed=fault_seed,
        jwt_public_key_file=jwt_public_key,
        multi_currency=not single_currency,
    )
    sandbox = Sandbox(config).start()
    xero_org: XeroSandbox | None = None
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        if xero:
            xero_org = XeroSandbox(
                XeroConfig(
                    host=host,
                    state_dir=sandbox.state_dir,
                    faults=list(xero_faults),
                    fault_seed=fault_seed,
                )
            ).start()
        if info_file is not None:
            sandbox.write_info(info_file, xero_org.info() if xero_org else None)
        console.print(
            f"Salesforce sandbox serving at {sandbox.instance_url}\n"
            f"  CA file: {sandbox.ca_file}\n"
            f"  username: {sandbox.credentials.username}\n"
            f"  data: {config.data or 'in memory'}"
            + (f"\n  connection details: {info_file}" if info_file else ""),
            highlight=False,
        )
        if xero_org is not None:
            console.print(
                f"Xero sandbox serving at {xero_org.url}\n"
                f"  API: {xero_org.api_url}\n"
                f"  token URL: {xero_org.token_url}\n"
                f"  client id: {xero_org.config.client_id}\n"
                f"  tenant id: {xero_org.config.tenant_id}",
                highlight=False,
            )
        stop.wait()
    finally:
        if xero_org is not None:
            xero_org.stop()
        sandbox.stop()
        if info_file is not None:
            info_file.unlink(missing_ok=True)


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _document_dict(doc: Any) -> dict[str, Any]:
    return _row_dict(doc, skip={"customer_id", "created_at"})


def _row_dict(row: Any, skip: set[str] | None = None) -> dict[str, Any]:
    skip = skip or set()
    return {
        column.key: getattr(row, column.key)
        for column in row.__table__.columns
        if column.key not in skip
    }


def main() -> None:
    app()
