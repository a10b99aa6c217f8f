"""Tokens at rest: sealed with Fernet, with a key from the settings or an owner-only key file
made on first use; plain text of earlier versions and old keys' tokens are read and marked for
sealing again; a value no key opens is a SecretKeyError, never a crash."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connector.encryption import PREFIX, TokenCipher, default_key_file
from connector.errors import ConfigError, SecretKeyError
from connector.settings import load_settings
from tests.conftest import tree_modes

KEY = base64.urlsafe_b64encode(b"the current key of 32 bytes ....").decode()
OLD_KEY = base64.urlsafe_b64encode(b"an older key, also of 32 bytes..").decode()


def cipher_with_file(path: Path) -> TokenCipher:
    return TokenCipher(key_file=path)


def test_a_sealed_token_opens_and_hides_the_plain_text() -> None:
    cipher = TokenCipher([KEY])
    sealed = cipher.seal("refresh-token-123")
    assert sealed.startswith(PREFIX)
    assert "refresh-token-123" not in sealed
    assert Fernet(KEY.encode()).decrypt(sealed[len(PREFIX) :].encode()) == b"refresh-token-123"
    assert cipher.open(sealed) == "refresh-token-123"
    assert cipher.stale(sealed) is False


def test_plain_text_of_an_earlier_version_reads_as_it_is_and_is_stale() -> None:
    cipher = TokenCipher([KEY])
    assert cipher.open("stored-before-encryption") == "stored-before-encryption"
    assert cipher.stale("stored-before-encryption") is True


def test_an_old_keys_token_opens_and_is_stale_until_sealed_again() -> None:
    old = TokenCipher([OLD_KEY]).seal("token")
    rotated = TokenCipher([KEY], old_keys=[OLD_KEY])
    assert rotated.open(old) == "token"
    assert rotated.stale(old) is True
    again = rotated.seal(rotated.open(old))
    assert rotated.stale(again) is False
    assert TokenCipher([KEY]).open(again) == "token"  # the old key is no longer needed


def test_a_token_no_key_opens_is_a_secret_key_error() -> None:
    sealed = TokenCipher([OLD_KEY]).seal("token")
    with pytest.raises(SecretKeyError) as caught:
        TokenCipher([KEY]).open(sealed)
    assert str(caught.value) == (
        "no key in secrets.key decrypts them (was the key lost or replaced?)"
    )


@pytest.mark.usefixtures("open_umask")
def test_the_key_file_is_made_owner_only_when_a_token_is_first_sealed(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "connector.db.key"
    cipher = cipher_with_file(path)
    sealed = cipher.seal("token")
    assert tree_modes(tmp_path / "keys") == {"keys": 0o700, "keys/connector.db.key": 0o600}
    key = path.read_text().strip()
    assert Fernet(key.encode()).decrypt(sealed[len(PREFIX) :].encode()) == b"token"
    assert cipher_with_file(path).open(sealed) == "token"  # another process, the same key


def test_reading_never_makes_a_key_file(tmp_path: Path) -> None:
    path = tmp_path / "connector.db.key"
    sealed = TokenCipher([KEY]).seal("token")
    cipher = cipher_with_file(path)
    assert cipher.open("plain") == "plain"
    with pytest.raises(SecretKeyError) as caught:
        cipher.open(sealed)
    assert str(caught.value) == f"the key file {path} (secrets.key_file) is missing"
    assert not path.exists()
    cipher.prepare()
    assert path.exists()


def test_the_key_files_first_key_seals_and_every_key_opens(tmp_path: Path) -> None:
    path = tmp_path / "rotated.key"
    path.write_text(f"# rotated in March\n{KEY}\n\n{OLD_KEY}\n")
    cipher = cipher_with_file(path)
    assert cipher.open(TokenCipher([OLD_KEY]).seal("old")) == "old"
    assert TokenCipher([KEY]).open(cipher.seal("new")) == "new"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not-a-key\n", "secrets.key_file: line 1 of {path} is not a Fernet key"),
        (f"{KEY}\nshort\n", "secrets.key_file: line 2 of {path} is not a Fernet key"),
        ("\n# nothing\n", "secrets.key_file: {path} holds no key"),
    ],
)
def test_a_bad_key_file_is_a_configuration_error(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.key"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        cipher_with_file(path).seal("token")
    assert str(caught.value).startswith(message.format(path=path))
    assert "not-a-key" not in str(caught.value)


def test_the_key_file_defaults_beside_a_sqlite_database_else_in_the_config_folder(
    tmp_path: Path, config_home: Path
) -> None:
    assert default_key_file(f"sqlite:///{tmp_path}/connector.db") == Path(
        f"{tmp_path}/connector.db.key"
    )
    assert default_key_file("sqlite:///var/connector.db") == Path("var/connector.db.key")
    folder_key = config_home / "billing-connector" / "secrets.key"
    assert default_key_file("postgresql://billing@db/billing") == folder_key
    assert default_key_file("sqlite://") == folder_key


def test_settings_choose_the_key(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/connector.db"
    configured = load_settings(None, database_url=database, secrets={"key": KEY})
    cipher = TokenCipher.from_settings(configured.secrets, database)
    assert (cipher.source, cipher.key_file) == ("secrets.key", None)
    assert TokenCipher([KEY]).open(cipher.seal("token")) == "token"

    by_file = load_settings(None, database_url=database)
    cipher = TokenCipher.from_settings(by_file.secrets, database)
    assert cipher.key_file == tmp_path / "connector.db.key"

    elsewhere = load_settings(None, secrets={"key_file": str(tmp_path / "other.key")})
    assert TokenCipher.from_settings(elsewhere.secrets, database).key_file == (
        tmp_path / "other.key"
    )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"key": "not-a-key"}, "secrets.key (CONNECTOR_SECRETS__KEY): key 1 is not a Fernet key"),
        (
            {"key": f"{KEY},{OLD_KEY}"},
            "secrets.key (CONNECTOR_SECRETS__KEY): give one key; earlier keys go in "
            "secrets.old_keys",
        ),
        (
            {"old_keys": f"{OLD_KEY}, nope"},
            "secrets.old_keys (CONNECTOR_SECRETS__OLD_KEYS): key 2 is not a Fernet key",
        ),
    ],
)
def test_a_key_that_is_not_a_fernet_key_is_a_configuration_error(
    section: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, secrets=section)
    assert message in str(caught.value)
    assert "not-a-key" not in str(caught.value)
    assert KEY not in str(caught.value)
