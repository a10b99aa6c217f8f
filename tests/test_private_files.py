"""Files and folders the connector creates are owner-only whatever the umask; existing ones
keep their mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connector.private_files import (
    create_empty,
    create_private,
    make_directories,
    opener,
    write_private,
)
from tests.conftest import tree_modes

pytestmark = pytest.mark.usefixtures("open_umask")


def test_new_folders_and_their_new_parents_are_0700_existing_ones_keep_theirs(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    make_directories(shared / "a" / "b" / "c")
    make_directories(shared / "a" / "b" / "c")  # again: nothing changes
    assert tree_modes(shared) == {
        "shared": 0o755,
        "shared/a": 0o700,
        "shared/a/b": 0o700,
        "shared/a/b/c": 0o700,
    }


def test_a_file_in_the_way_of_a_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(NotADirectoryError) as refused:
        make_directories(tmp_path / "taken" / "below")
    assert refused.value.filename == str(tmp_path / "taken")


def test_write_private_replaces_a_readable_file_with_an_owner_only_one(tmp_path: Path) -> None:
    path = tmp_path / "new" / "info.json"
    write_private(path, b"first")
    assert tree_modes(tmp_path / "new") == {"new": 0o700, "new/info.json": 0o600}
    os.chmod(path, 0o644)
    write_private(path, b"second")
    assert path.read_bytes() == b"second"
    assert tree_modes(tmp_path / "new") == {"new": 0o700, "new/info.json": 0o600}


def test_create_private_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "secret.key"
    assert create_private(path, b"one") is True
    assert create_private(path, b"two") is False
    assert path.read_bytes() == b"one"
    assert tree_modes(tmp_path / "keys") == {"keys": 0o700, "keys/secret.key": 0o600}


def test_create_empty_makes_an_owner_only_file_once(tmp_path: Path) -> None:
    path = tmp_path / "var" / "connector.db"
    assert create_empty(path) is True
    path.write_bytes(b"data")
    assert create_empty(path) is False
    assert path.read_bytes() == b"data"
    assert tree_modes(tmp_path / "var") == {"var": 0o700, "var/connector.db": 0o600}


def test_the_opener_makes_files_owner_only(tmp_path: Path) -> None:
    with open(tmp_path / "lock", "a", opener=opener) as handle:
        handle.write("1\n")
    with open(tmp_path / "text", "w", encoding="utf-8", opener=opener) as handle:
        handle.write("text")
    assert {name: mode for name, mode in tree_modes(tmp_path).items() if "/" in name} == {
        f"{tmp_path.name}/lock": 0o600,
        f"{tmp_path.name}/text": 0o600,
    }
