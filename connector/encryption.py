"""Secrets at rest: OAuth tokens are encrypted (Fernet) before they reach the database.

The key is ``secrets.key`` (earlier keys in ``secrets.old_keys``), else the key file
(``secrets.key_file``; by default ``<database>.key`` beside a SQLite database, else
``billing-connector/secrets.key`` in the user's config folder): one key per line, the first
encrypts, every one decrypts. The key file is made, owner-only, the first time a token is
sealed. Reading never makes one, so a process that looks for it in the wrong place cannot
replace the key: it reports the key file missing.

A sealed value is ``fernet:<token>``. A value without the prefix is plain text an earlier
version stored: it reads as it is, and :meth:`TokenCipher.stale` tells the caller to seal it
again, as it does a value sealed with an old key. A value no key decrypts raises
:class:`SecretKeyError`: whatever it unlocked must be connected again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from connector import private_files
from connector.db.engine import normalize_url
from connector.errors import ConfigError, SecretKeyError
from connector.settings import SecretsSettings, fernet_keys

PREFIX = "fernet:"
CONFIG_FOLDER = "billing-connector"
KEY_FILE_NAME = "secrets.key"


def config_folder() -> Path:
    """The user's folder of configuration (``$XDG_CONFIG_HOME``, else ``~/.config``)."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def default_key_file(database_url: str) -> Path:
    """``<database>.key`` beside a SQLite database file, else the user's config folder's."""
    url = normalize_url(database_url)
    database = url.database or ""
    on_disk = database not in ("", ":memory:") and not database.startswith("file:")
    if url.get_backend_name() == "sqlite" and on_disk:
        return Path(database + ".key").expanduser()
    return config_folder() / CONFIG_FOLDER / KEY_FILE_NAME


class TokenCipher:
    """Seals and opens tokens with the configured keys (loaded when first needed)."""

    def __init__(
        self,
        keys: Sequence[str] = (),
        *,
        key_file: Path | None = None,
        old_keys: Sequence[str] = (),
    ) -> None:
        if not keys and key_file is None:
            raise ValueError("a key or a key file is needed")
        self._configured = list(keys)
        self._old = list(old_keys)
        self.key_file = None if keys else key_file
        self.source = "secrets.key" if keys else f"the key file {key_file} (secrets.key_file)"
        self._fernets: list[Fernet] | None = None

    @classmethod
    def from_settings(cls, settings: SecretsSettings, database_url: str) -> TokenCipher:
        key = settings.key.get_secret_value().strip()
        key_file = Path(settings.key_file).expanduser() if settings.key_file else None
        return cls(
            [key] if key else [],
            key_file=key_file or default_key_file(database_url),
            old_keys=fernet_keys(settings.old_keys.get_secret_value()),
        )

    # -- sealing ---------------------------------------------------------------------------
    def prepare(self) -> None:
        """Load the keys (making the key file when there is none), so that sealing cannot
        fail afterwards: call it before asking for tokens that must then be stored."""
        self._keys(create=True)

    def seal(self, plain: str) -> str:
        token = MultiFernet(self._keys(create=True)).encrypt(plain.encode("utf-8"))
        return PREFIX + token.decode("ascii")

    def open(self, stored: str) -> str:
        """The plain text of ``stored`` (as it is when it was never sealed)."""
        if not stored.startswith(PREFIX):
            return stored
        try:
            plain = MultiFernet(self._keys(create=False)).decrypt(stored[len(PREFIX) :].encode())
        except InvalidToken:
            raise SecretKeyError(
                f"no key in {self.source} decrypts them (was the key lost or replaced?)"
            ) from None
        return plain.decode("utf-8")

    def stale(self, stored: str) -> bool:
        """True when ``stored`` should be sealed again: plain text, or an older key's."""
        if not stored.startswith(PREFIX):
            return True
        try:
            self._keys(create=False)[0].decrypt(stored[len(PREFIX) :].encode())
        except (InvalidToken, SecretKeyError):
            return True
        return False

    # -- keys ------------------------------------------------------------------------------
    def _keys(self, *, create: bool) -> list[Fernet]:
        if self._fernets is None:
            texts = self._configured or self._read_key_file(create=create)
            self._fernets = [Fernet(key) for key in [*texts, *self._old]]
        return self._fernets

    def _read_key_file(self, *, create: bool) -> list[str]:
        path = self.key_file
        assert path is not None
        if create and not path.exists():
            private_files.create_private(path, Fernet.generate_key() + b"\n")
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            raise SecretKeyError(f"{self.source} is missing") from None
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not a key file"
            raise ConfigError(f"secrets.key_file: cannot read {path}: {reason}") from None
        keys = []
        for number, line in enumerate(text.splitlines(), start=1):
            key = line.strip()
            if not key or key.startswith("#"):
                continue
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise ConfigError(
                    f"secrets.key_file: line {number} of {path} is not a Fernet key "
                    "(32 bytes in URL-safe base64)"
                ) from None
            keys.append(key)
        if not keys:
            raise ConfigError(f"secrets.key_file: {path} holds no key")
        return keys
