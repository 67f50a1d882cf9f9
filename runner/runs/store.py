"""The run directory: ``results.jsonl`` (every record, once) and ``manifest.json``.

Layout::

    runs/<run-id>/
      manifest.json    run id, times, versions, settings, spec files and hashes, counts, and
                       "results": "final" once results.jsonl holds one line per record
      results.jsonl    every record, one JSON object per line: the only copy of each record
      results.order    where each record's line is, in plan order, for a large run (below)

While a run goes, its single writer thread appends each record to ``results.jsonl`` as it
completes (one ``write`` per record, so a SIGKILL leaves whole lines and at most one torn last
line; ``fsync`` every ``FSYNC_EVERY`` records and at the end, so a power cut loses at most
those). A resumed run appends after the lines already there, and a later line for an id
supersedes an earlier one (a failed record sent again).

The run is told its plan (``plan_order``) before it starts, and as it saves each record it also
writes where the line is into ``results.order``, at the record's place in the plan
(runner/spec/results_order.py). When a run (or a resume) ends, nothing is copied when the file
is already in plan order with one line per record (a run with one request at a time); a file
of at most ``REWRITE_LIMIT`` bytes is rewritten in plan order (a second or two, so a person
greps it and git diffs it as before); a larger one stays as it is and readers read it in plan
order through ``results.order``: the end of a run of a million records takes seconds, and
needs no room for a second copy.

Positions of the lines are kept in a temporary SQLite database (``sqlite3.connect("")``: a
private file SQLite deletes itself, even after a kill) rather than in Python objects, so
writing, resuming and reading a run of a million records all run in bounded memory.

Runs made before this layout (a ``records/`` folder with one file per record) are converted
the first time they are opened: see ``RunStore.open``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import platform
import queue
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from runner.errors import Problem, RunnerError, UsageError, plural, warn
from runner.files import open_private
from runner.runs.fileio import read_at
from runner.runs.lock import RunLock
from runner.runs.shape import readable_record
from runner.spec.results_order import (
    ENTRY,
    HEADER,
    MAGIC,
    ORDER,
    ORDER_KEY,
    STATUS_CODES,
    STATUS_NAMES,
    describes,
    entries,
    ordered_lines,
)
from runner.version import __version__

MANIFEST = "manifest.json"
RESULTS = "results.jsonl"
LEGACY_RECORDS = "records"  # one file per record: the layout of runner before 0.2's store
# The manifest key that says what results.jsonl holds: FINAL, one line per record in the
# run's order; anything else (APPENDING, or no key: a run still going or killed), the lines in
# the order records completed, where a later line for an id supersedes an earlier one.
RESULTS_KEY = "results"
FINAL = "final"
APPENDING = "appending"
ORDERED = "ordered"  # final, read through results.order (RunStore._results_state; not stored)
FSYNC_EVERY = 1000  # records between two fsyncs of results.jsonl
FSYNC_SECONDS = 1.0  # ... or this long, whichever comes first
# A finished results.jsonl up to this size is rewritten in plan order (about a second); a
# larger one is read in plan order through results.order instead.
REWRITE_LIMIT = 64 << 20
_ID_PREFIX = '{"id": '  # every record line starts with its id (record.py puts it first)
_DECODER = json.JSONDecoder()
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# The largest last line without a newline that is read to see whether it is a whole record.
MAX_TAIL = 64 << 20
# Lines of one file named in warnings one by one; past that, a count.
TOLD_LINES = 20


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that ``path`` holds either its old content or the new, never half."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write text so that ``path`` holds either its old content or the new, never half."""
    with _AtomicFile(path) as handle:
        handle.write(text.encode("utf-8"))


class _AtomicFile:
    """A temporary file beside ``path`` that replaces it, fsynced, when the block ends well
    (and is deleted when it does not): readers see the old content or the new, never half."""

    def __init__(self, path: Path):
        self.path = path
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        self.temp = Path(temp)
        self.handle: BinaryIO = os.fdopen(fd, "wb", buffering=1 << 20)

    def __enter__(self) -> BinaryIO:
        return self.handle

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        try:
            if kind is None:
                self.handle.flush()
                os.fsync(self.handle.fileno())
            self.handle.close()
            if kind is None:
                os.replace(self.temp, self.path)
                _fsync_folder(self.path.parent)
        finally:
            self.temp.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable. Windows cannot open a folder (its file system
    journals the rename itself), so a folder that will not open is left as it is."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:[\\/]")


def temporary_database() -> sqlite3.Connection:
    """A private on-disk SQLite database that SQLite deletes itself (even after a kill), with
    a small page cache: an index of a million lines costs a few MB of memory."""
    db = sqlite3.connect("", check_same_thread=False)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-4096")
    return db


def record_line_id(line: bytes) -> str | None:
    """The id of one record line, read from its start without parsing the whole record."""
    text = line.decode("utf-8", "replace")
    if text.startswith(_ID_PREFIX):
        try:
            value, _ = _DECODER.raw_decode(text, len(_ID_PREFIX))
        except (ValueError, RecursionError):
            return None
        return value if isinstance(value, str) else None
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return record.get("id") if isinstance(record, dict) else None


def _whole_lines(path: Path, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(offset, line) of every whole line of ``path`` from ``start``; a last line without its
    newline (torn by a kill or a power cut) is left out, as is anything past ``end``."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the generator below
    except FileNotFoundError:
        return
    with handle:
        handle.seek(start)
        offset = start
        for line in handle:
            if not line.endswith(b"\n") or (end is not None and offset + len(line) > end):
                return
            yield offset, line
            offset += len(line)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("id"), str) else None


def unreadable_reason(line: bytes) -> str:
    """Why a line of results.jsonl is not a record, in a few words."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 at byte {exc.start + 1} of the line"
    try:
        value = json.loads(text)
    except RecursionError:
        return "JSON nested too deep"
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg} at column {exc.colno})"
    except ValueError:
        return "not JSON"
    if not isinstance(value, dict):
        return "JSON, but not an object"
    return "a JSON object without a text 'id'"


class _LineNumbers:
    """The line number of a byte offset of a file, counted as readers ask (they go forward,
    so each byte is counted about once)."""

    def __init__(self, path: Path):
        self.path, self.offset, self.line = path, 0, 1

    def at(self, offset: int) -> int:
        if offset < self.offset:
            self.offset, self.line = 0, 1
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                while self.offset < offset:
                    chunk = handle.read(min(offset - self.offset, 1 << 20))
                    if not chunk:
                        break
                    self.line += chunk.count(b"\n")
                    self.offset += len(chunk)
        except OSError:
            pass
        return self.line


class _Teller:
    """Warnings about the lines of one results.jsonl: each line named up to ``TOLD_LINES``,
    then one count of the rest."""

    def __init__(self, path: Path):
        self.path, self.numbers, self.told = path, _LineNumbers(path), 0

    def tell(self, offset: int, message: str) -> None:
        self.told += 1
        if self.told <= TOLD_LINES:
            line = self.numbers.at(offset)
            warn(Problem(str(self.path), message, line=line, severity="warning"))

    def close(self) -> None:
        if self.told > TOLD_LINES:
            more = plural(self.told - TOLD_LINES, "more line")
            warn(Problem(str(self.path), f"{more} like the ones above", severity="warning"))


class _LineIndex:
    """Where the line of each record id is in results.jsonl (offset, length, line number), and
    its status: the latest line for an id wins. Rows wait in a small batch and go to SQLite
    together. The run's plan, when it is given, is kept beside it (``plan``: id and place)."""

    BATCH = 512

    def __init__(self) -> None:
        self.db = temporary_database()
        self.db.execute(
            "CREATE TABLE line (id TEXT PRIMARY KEY, offset INTEGER NOT NULL, "
            "length INTEGER NOT NULL, number INTEGER NOT NULL, status TEXT) WITHOUT ROWID"
        )
        self.db.execute("CREATE TABLE unreadable (offset INTEGER PRIMARY KEY, length INTEGER)")
        self._pending: list[tuple[str, int, int, int, str | None]] = []

    def add(
        self, record_id: str, offset: int, length: int, number: int, status: str | None
    ) -> None:
        self._pending.append((record_id, offset, length, number, status))
        if len(self._pending) >= self.BATCH:
            self.flush()

    def add_unreadable(self, offset: int, length: int) -> None:
        """A whole line that is not a record: kept as it is when the file is rewritten."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO unreadable VALUES (?, ?)", (offset, length))

    def flush(self) -> None:
        if self._pending:
            with self.db:
                self.db.executemany("INSERT OR REPLACE INTO line VALUES (?,?,?,?,?)", self._pending)
            self._pending.clear()

    def status(self, record_id: str) -> str | None:
        """The status of the latest line for ``record_id`` handed to the database (rows still
        in the batch are not seen: they are records this process saved, never asked about)."""
        row = self.db.execute("SELECT status FROM line WHERE id = ?", (record_id,)).fetchone()
        return None if row is None else str(row[0])

    def place(self, record_id: str) -> int | None:
        """The record's place in the plan (from 0), or None: not planned, or no plan given."""
        row = self.db.execute("SELECT seq FROM plan WHERE id = ?", (record_id,)).fetchone()
        return None if row is None else int(row[0])

    def close(self) -> None:
        self.db.close()


class CompletedIds:
    """The ids of a run's records that need not be sent again (the provider answered them):
    ``record_id in completed`` asks the run's line index, so nothing grows with the run."""

    def __init__(self, store: RunStore, count: int):
        self._store = store
        self._count = count

    def __contains__(self, record_id: object) -> bool:
        status = self._store._status(str(record_id))
        return status is not None and status != "failed"

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        for record in self._store.records():
            if record.get("status") != "failed":
                yield record["id"]


@dataclass
class RunStore:
    """Reads and writes one run directory; ``save_record`` is called from one thread at a time
    (the ``RecordWriter``), reading is safe alongside.

    Reading a run, the whole API: ``RunStore.open(path)``, then ``read_manifest()``,
    ``records()`` (lazily, one dict at a time) and ``count()``.
    """

    root: Path

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._out: BinaryIO | None = None  # results.jsonl, opened for appending on first use
        self._size = 0  # where the next line goes
        self._lines = 0  # whole lines in results.jsonl
        self._index: _LineIndex | None = None
        self._order: BinaryIO | None = None  # results.order, once the plan is given
        self._unsynced = 0
        self._synced_at = time.monotonic()
        self._writer: RunLock | None = None  # held while this process writes the run

    @property
    def results_path(self) -> Path:
        return self.root / RESULTS

    @property
    def run_id(self) -> str:
        return self.root.name

    @classmethod
    def create(cls, out_dir: Path) -> RunStore:
        """A new, empty run directory under ``out_dir``."""
        if os.name != "nt" and _WINDOWS_DRIVE.match(str(out_dir)):
            raise UsageError(
                f"the runs folder {out_dir} starts with a drive letter, which only Windows "
                "has; on this system give a folder such as runs or ~/runs (with /)"
            )
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        root = out_dir / f"{stamp}-{secrets.token_hex(3)}"
        try:
            root.mkdir(parents=True)
        except OSError as exc:
            raise UsageError(f"cannot create the run directory {root}: {exc.strerror}") from None
        store = cls(root)
        store._index = _LineIndex()
        return store

    @classmethod
    def open(cls, root: Path) -> RunStore:
        """An existing run directory, to read or to resume.

        Opening a run of this layout only reads it: temporary files a kill left behind are
        deleted when the run is written to again (a reader must not delete the temporary file
        of a run finishing in another process). A run saved by an older runner (one file per
        record in ``records/``) is converted in place first: its records go into
        results.jsonl, one line each (the record files win over older lines), and the folder
        is removed.
        """
        if not (root / MANIFEST).is_file():
            raise UsageError(f"{root} is not a run directory (it has no {MANIFEST})")
        store = cls(root)
        try:
            if (root / LEGACY_RECORDS).is_dir():
                store._convert_legacy()
        except OSError as exc:
            raise UsageError(
                f"cannot update the run directory {root} ({exc.strerror}): it was saved by an "
                "older runner, with one file per record, and is converted to results.jsonl "
                "the first time it is opened; open it once where it can be written, or copy it"
            ) from None
        return store

    def lock(self, purpose: str) -> None:
        """Become the run's only writer, or raise RunBusy naming the process that is
        (``runner/runs/lock.py``); ``purpose`` is what a second writer is told."""
        if self._writer is None:
            self._writer = RunLock.acquire(self.root, purpose)

    def unlock(self) -> None:
        """Stop being the run's writer (the lock file is removed)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def remove_leftovers(self) -> None:
        """Delete temporary files a killed run left half-written (they never hold a record)."""
        for temp in self.root.glob(".*.tmp"):
            temp.unlink(missing_ok=True)

    # Reading ---------------------------------------------------------------------------

    def read_manifest(self) -> dict[str, Any]:
        path = self.root / MANIFEST
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as exc:  # not JSON or not UTF-8: edited, merged
            raise UsageError(
                f"{path} is not a run manifest runner can read ({exc}); restore it from the "
                "run's copy in git or a backup"
            ) from None
        if not isinstance(manifest, dict):
            raise UsageError(f"{path} is not a run manifest: it holds no JSON object")
        return manifest

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_atomic(self.root / MANIFEST, manifest)

    def is_final(self) -> bool:
        """True when the run (or its last resume) ended, so results.jsonl holds every record
        once in plan order, or results.order says that order; False while it runs or after a
        kill."""
        return self._results_state() != APPENDING

    def _results_state(self) -> str:
        """FINAL (results.jsonl is in plan order), ORDERED (read it through results.order) or
        APPENDING (in the order records completed; a later line for an id wins)."""
        if not (self.root / MANIFEST).is_file():
            return APPENDING
        manifest = self.read_manifest()
        if manifest.get(RESULTS_KEY) != FINAL:
            return APPENDING
        if manifest.get(ORDER_KEY) is None:
            return FINAL
        if describes(self.root):
            return ORDERED
        warn(
            Problem(
                str(self.root / ORDER),
                f"does not match {RESULTS} (missing, cut short, or either was edited): the "
                "records are read in the order they were saved",
                hint=f"run runner run --resume {self.root} to put them in order again",
                severity="warning",
            )
        )
        return APPENDING

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record, one dict at a time, in bounded memory.

        After a run ends, in plan order (spec, case, combination). While a run goes or after
        it was killed, in the order records completed, each id once (its latest line).

        A run directory is input like any other: a line that is not a record is skipped, and a
        field of the wrong type (``latency_ms: "slow"``) is left out (``runs/shape.py``); each
        is a warning naming ``results.jsonl:LINE``.
        """
        teller = _Teller(self.results_path)
        for offset, line in self.record_lines():
            record = _parse(line)
            if record is None:
                teller.tell(offset, f"{unreadable_reason(line)}: this line is skipped")
                continue
            shown, problems = readable_record(record)
            if problems:
                teller.tell(offset, f"record {shown.get('id')!r}: " + "; ".join(problems))
            yield shown
        teller.close()

    def line_record(self, line: bytes) -> dict[str, Any]:
        """One line of ``record_lines()`` as a record, its fields of the wrong type left out
        (``runs/shape.py``), with a warning naming the record; a line that is not a record is
        a warning and an empty record with the id its start gives, if any."""
        record = _parse(line)
        if record is None:
            record_id = record_line_id(line)
            named = f"record {record_id!r}: " if record_id is not None else ""
            message = f"{named}{unreadable_reason(line)}"
            warn(Problem(str(self.results_path), message, severity="warning"))
            return {"id": record_id} if record_id is not None else {}
        shown, problems = readable_record(record)
        if problems:
            message = f"record {shown.get('id')!r}: " + "; ".join(problems)
            warn(Problem(str(self.results_path), message, severity="warning"))
        return shown

    def record_lines(self) -> Iterator[tuple[int, bytes]]:
        """(offset in results.jsonl, line) of every record, as ``records()`` orders them,
        without parsing them: for readers that need only some records or some fields."""
        state = self._results_state()
        if state == FINAL:
            yield from _whole_lines(self.results_path)
            return
        if state == ORDERED:
            for offset, _, line in ordered_lines(self.root):
                yield offset, line
            return
        # Completion order: a later line for an id supersedes the earlier ones.
        index = temporary_database()
        try:
            index.execute("CREATE TABLE latest (id TEXT PRIMARY KEY, offset INTEGER) WITHOUT ROWID")
            end, lines = 0, 0
            rows: list[tuple[str, int]] = []
            for offset, line in _whole_lines(self.results_path):
                end, lines = offset + len(line), lines + 1
                record_id = record_line_id(line)
                if record_id is not None:
                    rows.append((record_id, offset))
                if len(rows) >= 4096:
                    index.executemany("INSERT OR REPLACE INTO latest VALUES (?, ?)", rows)
                    rows.clear()
            index.executemany("INSERT OR REPLACE INTO latest VALUES (?, ?)", rows)
            (distinct,) = index.execute("SELECT count(*) FROM latest").fetchone()
            for offset, line in _whole_lines(self.results_path, end=end):
                if distinct != lines:
                    record_id = record_line_id(line)
                    found = index.execute(
                        "SELECT offset FROM latest WHERE id = ?", (record_id,)
                    ).fetchone()
                    if record_id is not None and (found is None or found[0] != offset):
                        continue  # an earlier line of a record sent again
                yield offset, line
        finally:
            index.close()

    def count(self) -> int:
        """How many records the run holds (read from the file, not the manifest)."""
        state = self._results_state()
        if state == ORDERED:
            return sum(1 for entry in entries(self.root / ORDER) if entry.length)
        if state == APPENDING:
            return sum(1 for _ in self.record_lines())
        count = 0
        for _ in _whole_lines(self.results_path):
            count += 1
        return count

    # Writing ---------------------------------------------------------------------------

    def save_record(self, record: dict[str, Any]) -> None:
        """Append one record to results.jsonl as one line of compact JSON (``jq .`` indents
        it): one ``write`` call, so a kill leaves the line whole or torn, never interleaved."""
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            out = self._appending()
            offset = self._size
            out.write(line)
            out.flush()
            self._size += len(line)
            self._lines += 1
            status = record.get("status")
            assert self._index is not None
            self._index.add(record["id"], offset, len(line), self._lines, status)
            if self._order is not None:
                place = self._index.place(record["id"])
                if place is not None:
                    self._order.seek(HEADER.size + place * ENTRY.size)
                    self._order.write(_entry(offset, len(line), self._lines, status))
            self._unsynced += 1
            if self._unsynced >= FSYNC_EVERY or time.monotonic() - self._synced_at > FSYNC_SECONDS:
                self._sync()

    def _appending(self) -> BinaryIO:
        """results.jsonl opened for appending: a torn last line is cut off first, the index
        of the lines already there is built, and the manifest says the file is appended to."""
        if self._out is not None:
            return self._out
        self._ensure_index()
        self._mark_appending()
        out: BinaryIO = open_private(self.results_path, "ab", buffering=0)  # type: ignore[assignment]
        out.seek(self._size)
        self._out = out
        return out

    def _ensure_index(self) -> _LineIndex:
        """The index of the lines in results.jsonl, built by reading it once (on resume)."""
        if self._index is not None:
            return self._index
        self.remove_leftovers()
        index = _LineIndex()
        size = lines = 0
        for offset, line in _whole_lines(self.results_path):
            size, lines = offset + len(line), lines + 1
            record = _parse(line)
            if record is not None:
                status = record.get("status")
                known = status if isinstance(status, str) else None
                index.add(record["id"], offset, len(line), lines, known)
            else:
                index.add_unreadable(offset, len(line))
        index.flush()
        if self.results_path.exists() and self.results_path.stat().st_size != size:
            whole = self._end_the_tail(index, size, lines + 1)
            lines += whole != size
            size = whole
        self._index, self._size, self._lines = index, size, lines
        return index

    def _end_the_tail(self, index: _LineIndex, size: int, number: int) -> int:
        """What follows the last newline: a whole record whose newline is missing (a file
        edited by hand) gets its newline and is kept (as line ``number``); anything else is the
        torn tail of a killed write, and is cut off. The size of the file after."""
        with open(self.results_path, "rb") as handle:
            handle.seek(size)
            tail = handle.read(MAX_TAIL + 1)
        record = _parse(tail) if len(tail) <= MAX_TAIL else None
        if record is None:
            os.truncate(self.results_path, size)  # the torn tail of a killed write
            return size
        with open(self.results_path, "ab") as out:
            out.write(b"\n")
        status = record.get("status")
        known = status if isinstance(status, str) else None
        index.add(record["id"], size, len(tail) + 1, number, known)
        index.flush()
        return size + len(tail) + 1

    def plan_order(self, record_ids: Iterable[str]) -> None:
        """Take the run's plan (its record ids in plan order: spec, case, combination) before
        its records are saved. results.order gets an entry for every record already saved
        (a resume), and then one as each record is saved, so the run ends without a rewrite."""
        with self._lock:
            index = self._ensure_index()
            index.flush()
            self._mark_appending()  # before results.order changes: readers must not use it
            db = index.db
            db.execute("DROP TABLE IF EXISTS plan")
            db.execute("CREATE TABLE plan (id TEXT PRIMARY KEY, seq INTEGER) WITHOUT ROWID")
            places = itertools.count()
            with db:
                db.executemany(
                    "INSERT OR IGNORE INTO plan VALUES (?, ?)",
                    zip(record_ids, places, strict=False),
                )
            planned = next(places)  # zip stops at the last id without taking another place
            if self._order is not None:
                self._order.close()
            order: BinaryIO = open_private(self.root / ORDER, "w+b")  # type: ignore[assignment]
            order.write(HEADER.pack(MAGIC, 0))
            order.truncate(HEADER.size + planned * ENTRY.size)  # every entry empty: no record
            saved = db.execute(
                "SELECT plan.seq, line.offset, line.length, line.number, line.status "
                "FROM line JOIN plan ON plan.id = line.id ORDER BY plan.seq"
            )
            for place, offset, length, number, status in saved:
                order.seek(HEADER.size + place * ENTRY.size)
                order.write(_entry(offset, length, number, status))
            self._order = order

    def _sync(self) -> None:
        if self._out is not None:
            os.fsync(self._out.fileno())
        if self._order is not None:
            self._order.flush()  # a kill loses none of it; a resume makes it again anyway
        self._unsynced, self._synced_at = 0, time.monotonic()

    def _status(self, record_id: str) -> str | None:
        with self._lock:
            return self._ensure_index().status(record_id)

    def completed_ids(self) -> CompletedIds:
        """The ids that need not be sent again (``in`` and ``len`` work; nothing is loaded)."""
        with self._lock:
            index = self._ensure_index()
            index.flush()
            (count,) = index.db.execute(
                "SELECT count(*) FROM line WHERE status IS NOT 'failed'"
            ).fetchone()
        return CompletedIds(self, int(count))

    def close(self) -> None:
        """Flush and fsync results.jsonl and close it."""
        with self._lock:
            if self._out is not None:
                self._sync()
                self._out.close()
                self._out = None

    def finish_results(self, record_ids: Iterable[str]) -> dict[str, int]:
        """Put the run's records in plan order, one per record (the latest line for its id),
        and count their statuses; the manifest then says ``"results": "final"``.

        ``record_ids`` (the plan) is read only when ``plan_order`` was not called first (a
        batch's records). Ids without a line (not sent yet) are counted as ``not_sent``. A file
        already in plan order stays as it is; one of at most ``REWRITE_LIMIT`` bytes is
        rewritten in plan order, atomically; a larger one keeps results.order for its readers
        (the manifest names it), so a run of any size ends without a second copy of its file.
        """
        self.close()
        if self._order is None:
            self.plan_order(record_ids)  # the lines already saved are placed by one join
        with self._lock:
            order = self._order
            assert order is not None and self._index is not None
            order.flush()
            counts = {"total": 0, "ok": 0, "failed": 0, "invalid_output": 0, "not_sent": 0}
            in_order, last = True, -1
            for entry in entries(self.root / ORDER):
                if not entry.length:
                    counts["not_sent"] += 1
                    continue
                counts["total"] += 1
                counts[STATUS_NAMES.get(entry.status, "failed")] += 1
                in_order, last = in_order and entry.offset > last, entry.offset
            db = self._index.db
            # a line that is not a record makes a rewrite, which keeps it at the end, named
            in_order = in_order and counts["total"] == self._lines
            ordered = not in_order and self._size > REWRITE_LIMIT
            if ordered:
                order.seek(0)
                order.write(HEADER.pack(MAGIC, self._size))
                order.flush()
                os.fsync(order.fileno())
            elif not in_order:
                with _AtomicFile(self.results_path) as out:
                    # read to the end (its file closed) before the new file replaces it:
                    # Windows cannot replace an open file
                    for _, _, line in ordered_lines(self.root):
                        out.write(line)
                    with open(self.results_path, "rb") as source:
                        self._keep_unreadable(db, source, out)
            elif not self.results_path.exists():
                open_private(self.results_path, "ab").close()  # a run that saved nothing
            order.close()
            self._order = None
            self._index.close()
            self._index = None  # the lines may have moved; a later append indexes them again
            self._mark_final(ordered)
            if not ordered:
                (self.root / ORDER).unlink(missing_ok=True)
        return counts

    def _keep_unreadable(self, db: sqlite3.Connection, source: BinaryIO, out: BinaryIO) -> None:
        """The lines that are not records, byte for byte at the end of the rewritten file,
        each a warning with its line number: a run directory may hold what runner did not
        write, and a rewrite must not lose it."""
        teller = _Teller(self.results_path)
        rows = db.execute("SELECT offset, length FROM unreadable ORDER BY offset")
        for offset, length in rows:
            line = read_at(source, length, offset)
            out.write(line)
            teller.tell(offset, f"{unreadable_reason(line)}: kept as it is, at the end of the file")
        teller.close()

    def rewrite_records(self, transform: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
        """Replace every record by ``transform(record)``, streamed and atomic (all or none);
        the number of records. For a finished run (no writer may be running): the file keeps
        its order, one line per record, and the manifest is left as it is but for the
        results key."""
        return self.rewrite_record_stream(lambda records: map(transform, records))

    def rewrite_record_stream(
        self, transform: Callable[[Iterator[dict[str, Any]]], Iterable[dict[str, Any]]]
    ) -> int:
        """``rewrite_records`` for a transform of the whole stream, which must give one record
        for each record, in order (it may work on a few ahead, as ``runner score`` does).

        Nothing is lost: a line that is not a record (and a torn last line) is written back
        byte for byte where it was, and a field of the wrong type, which the transform sees
        left out, is written back as it was; each is a warning with its line number."""
        self.close()
        count = 0
        teller = _Teller(self.results_path)
        kept: deque[tuple[int, bytes]] = deque()  # (records before it, line)
        pairs: deque[tuple[dict[str, Any], dict[str, Any]]] = deque()  # (as read, as shown)

        def readable() -> Iterator[dict[str, Any]]:
            for offset, line in self.record_lines():
                record = _parse(line)
                if record is None:
                    kept.append((len(pairs) + count, line))
                    teller.tell(offset, f"{unreadable_reason(line)}: kept as it is")
                    continue
                shown, problems = readable_record(record)
                if problems:
                    teller.tell(offset, f"record {shown.get('id')!r}: " + "; ".join(problems))
                pairs.append((record, shown))
                yield shown

        with self._lock:
            with _AtomicFile(self.results_path) as out:
                for record in transform(readable()):
                    while kept and kept[0][0] <= count:
                        out.write(kept.popleft()[1])
                    raw, shown = pairs.popleft()
                    if raw is not shown:
                        record = _restored(raw, shown, record)
                    line = json.dumps(record, ensure_ascii=False) + "\n"
                    out.write(line.encode("utf-8"))
                    count += 1
                for _, unread in kept:
                    out.write(unread)
                self._copy_torn_tail(out, teller)
                if (self.root / ORDER).exists():
                    self._mark_appending()  # results.order is not read once the file moves
            teller.close()
            if self._index is not None:
                self._index.close()
                self._index = None
            self._mark_final()
            (self.root / ORDER).unlink(missing_ok=True)  # the new file is in plan order
        return count

    def _copy_torn_tail(self, out: BinaryIO, teller: _Teller) -> None:
        """Bytes after the last newline (a line cut short), copied to ``out`` as they are."""
        try:
            with open(self.results_path, "rb") as source:
                end = source.seek(0, os.SEEK_END)
                start = end
                while start > 0:
                    step = min(start, 1 << 16)
                    source.seek(start - step)
                    newline = source.read(step).rfind(b"\n")
                    if newline >= 0:
                        start = start - step + newline + 1
                        break
                    start -= step
                if start == end:
                    return
                source.seek(start)
                shutil.copyfileobj(source, out)
        except OSError:
            return
        teller.tell(start, "a last line without its end (cut short): kept as it is")

    def _mark_final(self, ordered: bool = False) -> None:
        """The manifest says results.jsonl is final: in plan order, or (``ordered``) read in
        plan order through results.order."""
        if not (self.root / MANIFEST).is_file():
            return
        manifest = self.read_manifest()
        wanted = {**manifest, RESULTS_KEY: FINAL}
        wanted.pop(ORDER_KEY, None)
        if ordered:
            wanted[ORDER_KEY] = ORDER
        if wanted != manifest:
            self.write_manifest(wanted)

    def _mark_appending(self) -> None:
        """The manifest says results.jsonl is appended to (readers take the latest line of
        each id), before the file or results.order change."""
        if not (self.root / MANIFEST).is_file():
            return
        manifest = self.read_manifest()
        if manifest.get(RESULTS_KEY, APPENDING) != APPENDING or ORDER_KEY in manifest:
            wanted = {**manifest, RESULTS_KEY: APPENDING}
            wanted.pop(ORDER_KEY, None)
            self.write_manifest(wanted)

    # Runs saved by older versions -----------------------------------------------------

    def _convert_legacy(self) -> None:
        """Fold ``records/<name>.json`` (one file per record) into results.jsonl.

        The old writer saved the record file and then appended its line, so the files are the
        truth: lines keep their order (plan order, for a finished run), each id once with the
        content of its file; records with a file and no line follow. Then the folder goes. A
        kill at any point leaves the folder in place, and the next open converts again.
        """
        folder = self.root / LEGACY_RECORDS
        self.remove_leftovers()
        latest = temporary_database()
        try:
            latest.execute("CREATE TABLE latest (id TEXT PRIMARY KEY, offset INTEGER)")
            latest.execute("CREATE TABLE written (name TEXT PRIMARY KEY)")
            with latest:
                latest.executemany(
                    "INSERT OR REPLACE INTO latest VALUES (?, ?)",
                    (
                        (record_id, offset)
                        for offset, line in _whole_lines(self.results_path)
                        if (record_id := record_line_id(line)) is not None
                    ),
                )
            with _AtomicFile(self.results_path) as out:
                for offset, line in _whole_lines(self.results_path):
                    record_id = record_line_id(line)
                    found = latest.execute(
                        "SELECT offset FROM latest WHERE id = ?", (record_id,)
                    ).fetchone()
                    if record_id is None:
                        out.write(line)  # not a record: kept as it is
                        continue
                    if found is None or found[0] != offset:
                        continue
                    name = f"{_legacy_file_name(record_id)}.json"
                    out.write(_record_file_line(folder / name) or line)
                    latest.execute("INSERT OR IGNORE INTO written VALUES (?)", (name,))
                for entry in os.scandir(folder):
                    if not entry.name.endswith(".json") or entry.name.startswith("."):
                        continue
                    if latest.execute(
                        "SELECT 1 FROM written WHERE name = ?", (entry.name,)
                    ).fetchone():
                        continue
                    text = _record_file_line(Path(entry.path))
                    if text is not None:
                        out.write(text)
        finally:
            latest.close()
        self._mark_final()
        shutil.rmtree(folder)


def _restored(
    raw: dict[str, Any], shown: dict[str, Any], written: dict[str, Any]
) -> dict[str, Any]:
    """``written`` with each field that reading left out (it had the wrong type) as it was
    in the file, unless the rewrite itself changed that field."""
    restored = dict(written)
    for key, value in raw.items():
        if shown.get(key) is not value and written.get(key) is shown.get(key):
            restored[key] = value
    return restored


def _entry(offset: int, length: int, number: int, status: str | None) -> bytes:
    """One entry of results.order (runner/spec/results_order.py)."""
    return ENTRY.pack(offset, length, number, STATUS_CODES.get(status or "failed", 2))


def _record_file_line(path: Path) -> bytes | None:
    """A legacy record file as one results line, or None if it is missing or not whole."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    record = _parse(data)
    if record is None:
        return None
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def _legacy_file_name(record_id: str) -> str:
    """The file name the older layout gave a record id (``records/<name>.json``)."""
    name = _UNSAFE.sub("-", record_id).strip(".-") or "record"
    if name == record_id and len(name) <= 150:
        return name
    digest = hashlib.sha256(record_id.encode("utf-8")).hexdigest()[:10]
    return f"{name[:140]}-{digest}"


def environment_info() -> dict[str, str]:
    """The versions a run was made with, for its manifest."""
    return {
        "runner_version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def git_info(folder: Path) -> dict[str, Any] | None:
    """The git commit of the repository holding ``folder`` and whether it has uncommitted
    changes; None when git is missing or ``folder`` is not in a repository with a commit."""
    try:
        head = _git(folder, "rev-parse", "HEAD")
        status = _git(folder, "status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return None
    if head is None or status is None:
        return None
    return {"commit": head.strip(), "dirty": bool(status.strip())}


def _git(folder: Path, *args: str) -> str | None:
    done = subprocess.run(
        ["git", *args],
        cwd=folder,
        capture_output=True,
        # git writes UTF-8 (file names too, with core.quotePath false), whatever the locale's
        # encoding (cp1252 on Windows); a name that is not UTF-8 must not stop the run.
        encoding="utf-8",
        errors="replace",
        timeout=5,
        check=False,
    )
    return done.stdout if done.returncode == 0 else None


_STOP = object()


class RecordWriter:
    """Saves a run's records on one background thread, in the order they are handed over.

    Workers hand a record over and go back to sending; one thread appends to results.jsonl,
    so lines never interleave and no lock is contended. The queue is bounded, so a slow disk
    slows the workers down instead of filling memory.
    """

    def __init__(self, store: RunStore, depth: int = 64):
        self._store = store
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(depth, 1))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write, name="runner-writer", daemon=True)
        self._thread.start()

    def put(self, record: dict[str, Any]) -> None:
        """Hand over one record; raises if an earlier record could not be saved."""
        self._raise_error()
        self._queue.put(record)

    def close(self) -> None:
        """Wait until every record handed over is saved."""
        self._queue.put(_STOP)
        self._thread.join()
        self._raise_error()

    def _write(self) -> None:
        while (record := self._queue.get()) is not _STOP:
            if self._error is None:
                try:
                    self._store.save_record(record)
                except BaseException as exc:  # reported to the run by put() and close()
                    self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise RunnerError(
                f"cannot save records in {self._store.root}: {self._error}"
            ) from self._error
