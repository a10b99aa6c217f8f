"""One exception hierarchy for the whole connector.

Every error the connector raises on purpose derives from :class:`ConnectorError`, so callers
can tell our refusals (bad input, bad configuration, a rule of the billing core) from bugs.
Messages name what was wrong and where, so that a user can fix it without reading code.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Root of every error the connector raises on purpose."""


class ConfigError(ConnectorError):
    """The configuration (settings, a TOML file, environment variables) is invalid."""


class StopRequestedError(ConnectorError):
    """A stop was requested (SIGTERM, SIGINT): the work in hand ended after a committed batch
    and the next run resumes where it left off."""


class InvalidInputError(ConnectorError, ValueError):
    """A value handed to the billing core breaks one of its rules.

    ``where`` names the record or field at fault (for example ``price PRO-USD: tier 2``).
    """

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class BillingError(ConnectorError):
    """An operation would break an invariant of the billing core (numbering, state)."""


class NotFoundError(ConnectorError, LookupError):
    """A record that was asked for does not exist."""


class StorageError(ConnectorError):
    """The database refused an operation or is not in the expected state."""


class CrmError(ConnectorError):
    """Salesforce refused a call, or could not be reached after every retry.

    ``code`` is Salesforce's error code (``MALFORMED_QUERY``, ``INVALID_FIELD``...) when it gave
    one, ``status`` the HTTP status.
    """

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        self.code = code
        self.status = status
        super().__init__(message)


class LoginError(CrmError):
    """Logging in to Salesforce failed (wrong credentials, app or key): fix the settings."""


class QuotaExhaustedError(CrmError):
    """The daily API budget is spent: the cycle ends with its state saved and resumes later."""


class AccountingError(ConnectorError):
    """An accounting target refused a call, or could not be reached after every retry."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class AccountingAuthError(AccountingError):
    """The accounting target refused our credentials or tokens: someone must reconnect it."""


class AccountingLimitError(AccountingError):
    """The target's API limit for now is spent (its daily limit, or a wait longer than we wait
    out): the push ends cleanly and the next cycle resumes."""


class LedgerFileError(AccountingError):
    """A file of the Beancount ledger does not load (not UTF-8, a syntax error, cut short):
    the message names it with its line. The ledger's stages wait until it is fixed."""


class SecretKeyError(ConnectorError):
    """Stored secrets cannot be decrypted with the configured key (the key was lost, replaced
    or not found): whatever they unlocked must be connected again."""


class InstanceActiveError(ConnectorError):
    """Another instance of the connector (``connector run``, or a one-off cycle or stage) holds
    the database's actor lock: nothing was done, and running again once it is done is safe."""


class EmailError(ConnectorError):
    """The SMTP server could not be reached, or refused the login: nothing more is sent until
    the next run (messages already sent stay sent; the others wait)."""
