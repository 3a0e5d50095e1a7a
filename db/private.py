"""The data directory and the database file are their owner's alone (0700 / 0600), from the first byte."""

from __future__ import annotations

import os
import stat
from pathlib import Path

# SQLite's companions of a database file: written beside it with the same data.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


class PrivatePathError(RuntimeError):
    """The data directory or the database file is open to other users and cannot be made private."""


def _posix() -> bool:
    return os.name == "posix"


def ensure_private_dir(path: Path) -> None:
    """Create path 0700 (parents as the system makes them), or tighten an existing one to 0700."""
    path = Path(path)
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.is_dir():
        raise PrivatePathError(f"{path} is not a directory; the studio keeps its data in a directory")
    _tighten(path, 0o700, "directory")


def ensure_private_file(path: Path) -> None:
    """Create path empty with mode 0600 if missing, or tighten it (and its SQLite companions) to 0600."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        except FileExistsError:
            pass  # another process made it between the check and the open
        else:
            os.close(fd)
    for candidate in (path, *(Path(f"{path}{suffix}") for suffix in SQLITE_COMPANIONS)):
        if candidate.exists():
            _tighten(candidate, 0o600, "file")


def _tighten(path: Path, mode: int, what: str) -> None:
    if not _posix():
        return
    current = stat.S_IMODE(path.stat().st_mode)
    if not current & 0o077:
        return
    try:
        os.chmod(path, current & ~0o077 | (mode & 0o700))
    except OSError as exc:
        raise PrivatePathError(
            f"The studio's {what} {path} is open to other users (mode {current:o}) and cannot be made "
            f"private ({exc.strerror}); run `chmod {mode:o} {path}` as its owner"
        ) from None
