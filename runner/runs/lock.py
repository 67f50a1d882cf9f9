"""One writer per run directory: an exclusive lock that works on Linux, macOS and Windows.

A run directory is written by one process at a time (``runner run``, ``run --resume``,
``batch fetch``...): each keeps its own end-of-file offset, cuts what it takes for a torn tail
and deletes leftover temporary files, as the only writer may. The writer holds an advisory
lock on ``RUN_DIR/.runner.lock`` (``flock`` where ``fcntl`` exists, ``msvcrt.locking`` on
Windows); a second writer is refused at once with the holder's process id. The operating
system releases the lock when its holder dies, even by SIGKILL, so a killed run never leaves
a run locked: the stale file is taken over by the next writer, and removed when it is done.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import RunBusy

try:
    import fcntl
except ImportError:  # Windows: msvcrt locks a byte range instead
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".runner.lock"
# msvcrt locks a byte range, and a locked range cannot be read by others: lock one byte far
# past the holder's note, which stays readable.
_WINDOWS_LOCK_OFFSET = 1 << 20


@dataclass
class RunLock:
    """The exclusive right to write one run directory; ``release`` (or a dying process) ends it."""

    root: Path
    _fd: int | None

    @classmethod
    def acquire(cls, root: Path, purpose: str) -> RunLock:
        """Lock ``root`` for this process, or raise RunBusy naming the process that holds it.
        ``purpose`` (``"runner run --resume"``) is what the refusal tells a second writer."""
        path = root / LOCK_FILE
        for _ in range(20):  # each round loses only to a holder that removed the file
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            if not _try_lock(fd):
                holder = _read_note(fd)
                os.close(fd)
                raise RunBusy(_refusal(root, holder))
            if _same_file(fd, path):
                _write_note(fd, purpose)
                return cls(root, fd)
            os.close(fd)  # the holder removed the file as we opened it: take the new one
        raise RunBusy(_refusal(root, None))

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the run up: the lock file goes first (so nobody takes a file about to vanish),
        then the lock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if fcntl is None:
            os.close(fd)  # Windows cannot remove a file that is open
            _remove(self.root / LOCK_FILE)
        else:
            _remove(self.root / LOCK_FILE)
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _try_lock(fd: int) -> bool:
    if fcntl is None:
        msvcrt = importlib.import_module("msvcrt")
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # BlockingIOError: another open file holds it
        return False
    return True


def _same_file(fd: int, path: Path) -> bool:
    """Whether the locked file is still the one at ``path`` (a holder releasing removes it)."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def _write_note(fd: int, purpose: str) -> None:
    note = json.dumps({"pid": os.getpid(), "command": purpose}).encode() + b"\n"
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, note)
    os.ftruncate(fd, len(note))


def _read_note(fd: int) -> dict[str, Any] | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        note = json.loads(os.read(fd, 4096).split(b"\n", 1)[0])
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) else None


def _refusal(root: Path, holder: dict[str, Any] | None) -> str:
    who = "another process"
    if holder and isinstance(holder.get("pid"), int):
        who = f"process {holder['pid']}"
        if isinstance(holder.get("command"), str):
            who += f" ({holder['command']})"
    return (
        f"{who} is writing the run directory {root}; a run has one writer at a time: wait "
        "for it to end (or stop it), then try again"
    )


def _remove(path: Path) -> None:
    # Already gone, or (Windows) opened by the next writer: then it is theirs now.
    with contextlib.suppress(OSError):
        path.unlink()
