"""Files that hold answers, created readable by their owner only (0600).

Records, reports, exports, cassettes, batch files and the response cache hold the prompts and
the answers, which may be private: like ``results.jsonl``, each is created with mode 0600, and
an existing file written again is set to 0600. On Windows a mode is mostly not a thing
(``chmod`` only sets read-only): the calls do what they can there and never fail on it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO, Any

PRIVATE = 0o600


def open_private(path: Path, mode: str = "w", **options: Any) -> IO[Any]:
    """``open(path, mode)`` for writing (``w``, ``wb``, ``a``, ``ab``, ``x``, and ``w+b`` to
    read back too), the file created 0600 or set to 0600 if it exists."""
    access = os.O_RDWR if "+" in mode else os.O_WRONLY
    flags = access | os.O_CREAT | getattr(os, "O_BINARY", 0)
    if "x" in mode:
        flags |= os.O_EXCL
    elif "a" in mode:
        flags |= os.O_APPEND
    else:
        flags |= os.O_TRUNC
    fd = os.open(path, flags, PRIVATE)
    try:
        make_private(path, fd)
        return os.fdopen(fd, mode.replace("x", "w"), **options)
    except BaseException:
        os.close(fd)
        raise


def make_private(path: Path, fd: int | None = None) -> None:
    """Set an existing file to 0600 (best effort: a file another user owns, or Windows)."""
    with contextlib.suppress(OSError, NotImplementedError, AttributeError):
        if fd is not None and hasattr(os, "fchmod"):
            os.fchmod(fd, PRIVATE)
        else:
            os.chmod(path, PRIVATE)


def create_private(path: Path) -> None:
    """Create ``path`` empty and 0600 if it does not exist, else set it to 0600: for files
    another library creates (SQLite gives its -wal and -shm files the database's mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE)
    except OSError:
        return
    try:
        make_private(path, fd)
    finally:
        os.close(fd)


def private_database(path: Path) -> None:
    """An SQLite database file made 0600 before SQLite opens it, so the -wal and -shm files
    SQLite creates beside it get the same mode; those already there are set to 0600 too."""
    create_private(path)
    for suffix in ("-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            make_private(side)
