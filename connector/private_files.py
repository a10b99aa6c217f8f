"""Files and folders the connector creates are its owner's alone, whatever the umask.

Every file the connector creates (the SQLite database and its ``-wal``/``-journal`` files, the
ledger and its batch files, keys, the sandbox's data, certificates and info file) is made with
mode 0600, and every folder with 0700: a umask can take bits away, never add them, and these
helpers set the exact mode after creating. Files and folders that already exist keep theirs
(finance may have opened the ledger to a group on purpose).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


def make_directories(path: Path) -> None:
    """Create ``path`` and its missing parents, each new one owner-only; existing ones are left
    as they are."""
    missing: list[Path] = []
    current = path.expanduser()
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIRECTORY_MODE)
        except FileExistsError:
            if directory.is_dir():  # made meanwhile by another process
                continue
            raise NotADirectoryError(
                errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(directory)
            ) from None
        os.chmod(directory, DIRECTORY_MODE)


def opener(path: str | os.PathLike[str], flags: int) -> int:
    """An ``opener`` for :func:`open`: a file it creates is owner-only
    (``open(path, "wb", opener=opener)``)."""
    descriptor = os.open(path, flags, FILE_MODE)
    try:
        if flags & os.O_CREAT:
            os.fchmod(descriptor, FILE_MODE)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def create_empty(path: Path) -> bool:
    """Create ``path`` empty and owner-only unless it exists; True when it was created.

    SQLite gives a database's ``-wal``, ``-shm`` and ``-journal`` files the mode of the
    database file, so an empty database file made here keeps all of them owner-only."""
    make_directories(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(descriptor, FILE_MODE)
    finally:
        os.close(descriptor)
    return True


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` whole and owner-only: a temporary file beside it, flushed, then renamed
    over it (an existing file of any mode is replaced by an owner-only one)."""
    with _temporary_copy(path, data) as temporary:
        temporary.replace(path)


def create_private(path: Path, data: bytes) -> bool:
    """Write a new file whole and owner-only, never over an existing one (a temporary file,
    flushed, then linked into place); False when ``path`` already existed."""
    with _temporary_copy(path, data) as temporary:
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
    return True


@contextlib.contextmanager
def _temporary_copy(path: Path, data: bytes) -> Iterator[Path]:
    """``data`` in an owner-only file beside ``path``, on disk, removed afterwards."""
    make_directories(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb", opener=opener) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        yield temporary
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
