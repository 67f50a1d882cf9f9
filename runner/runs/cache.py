"""The response cache: provider answers kept in SQLite, so an unchanged request is not paid twice.

A request is identified by its key, the sha256 of the canonical JSON of the completions URL and
the request body (never the API key), so key order and whitespace do not matter. Only answers
that came back as HTTP 200 chat completions are stored; failures are always sent again.

The database lives in the project at ``.runner/cache.sqlite`` (or in ``$RUNNER_CACHE_DIR``). It
runs in WAL mode and every ``put`` is its own committed transaction, so worker threads, other
runs and a run killed with SIGKILL all leave it readable. Each thread has its own connection:
a write waiting out another run's lock stalls only the thread that makes it. A write that
fails after all is counted and reported at the end of the run, never dropped in silence.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from runner.errors import UsageError, plural
from runner.files import private_database
from runner.spec.project import find_project_root

CACHE_DIR_ENV = "RUNNER_CACHE_DIR"
CACHE_FOLDER = ".runner"
CACHE_FILE = "cache.sqlite"

# use: read and write; refresh: write only (send everything again); off: neither.
CacheMode = Literal["use", "refresh", "off"]
CACHE_MODES: tuple[CacheMode, ...] = ("use", "refresh", "off")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key        TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    status     INTEGER NOT NULL,
    response   TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


def request_key(url: str, body: Mapping[str, Any]) -> str:
    """The cache and cassette key of one request: sha256 of canonical JSON of URL and body."""
    canonical = json.dumps(
        {"url": url, "body": body}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def cache_dir(project_root: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The folder holding the cache of a project: ``$RUNNER_CACHE_DIR`` or ``<root>/.runner``."""
    env = os.environ if environ is None else environ
    override = env.get(CACHE_DIR_ENV, "").strip()
    return Path(override) if override else project_root / CACHE_FOLDER


def cache_path_for(spec_path: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The cache database used for a run whose first spec is ``spec_path``."""
    return cache_dir(find_project_root(spec_path), environ) / CACHE_FILE


@dataclass(frozen=True)
class CachedResponse:
    """One stored answer: the raw response text exactly as the provider sent it."""

    key: str
    status: int
    text: str
    created_at: str


BUSY_SECONDS = 30.0  # how long a cache locked by another run is waited for


class ResponseCache:
    """A SQLite table of answers by request key; each thread has its own connection, so a
    write waiting for another run's lock holds up no other worker here."""

    def __init__(self, path: Path, mode: CacheMode = "use"):
        self.path = path
        self.mode = mode
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()  # the list of connections, and the write failures
        self.write_failures = 0
        self._write_error: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db()
        except (OSError, sqlite3.Error) as exc:
            self.close()
            raise UsageError(
                f"cannot open the response cache {path}: {exc} (delete it, or run with --no-cache)"
            ) from None

    def _db(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            private_database(self.path)
            db = sqlite3.connect(
                str(self.path), timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False
            )
            with self._guard:
                self._connections.append(db)
            _use_wal(db)
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute(_SCHEMA)
            self._local.db = db
        return db

    @property
    def reads(self) -> bool:
        return self.mode == "use"

    @property
    def writes(self) -> bool:
        return self.mode in ("use", "refresh")

    def get(self, key: str) -> CachedResponse | None:
        """The stored answer for ``key``, or None (always None unless the mode reads)."""
        if not self.reads:
            return None
        try:
            row = (
                self._db()
                .execute("SELECT status, response, created_at FROM responses WHERE key = ?", (key,))
                .fetchone()
            )
        except sqlite3.Error:
            return None  # an unreadable cache only costs a request
        return CachedResponse(key, row[0], row[1], row[2]) if row else None

    def contains(self, key: str) -> bool:
        return self.get(key) is not None

    def put(self, key: str, url: str, status: int, text: str) -> bool:
        """Store one answer in its own committed transaction (a no-op unless the mode writes).

        A cache that cannot be written (disk full, locked too long) never fails the run, but
        it is counted and said at the end (``write_problem``). False when it failed.
        """
        if not self.writes:
            return True
        try:
            self._db().execute(
                "INSERT OR REPLACE INTO responses (key, url, status, response) VALUES (?, ?, ?, ?)",
                (key, url, status, text),
            )
        except sqlite3.Error as exc:
            with self._guard:
                self.write_failures += 1
                self._write_error = self._write_error or str(exc)
            return False
        return True

    @property
    def write_problem(self) -> str | None:
        """What a person is told when answers could not be stored, or None."""
        if not self.write_failures:
            return None
        return (
            f"{plural(self.write_failures, 'answer')} could not be kept in the response cache "
            f"{self.path} ({self._write_error}); they are saved in the run, and sent again "
            "by the next run that asks"
        )

    def __len__(self) -> int:
        return int(self._db().execute("SELECT count(*) FROM responses").fetchone()[0])

    def clear(self) -> int:
        """Delete every stored answer, in one transaction; returns how many there were."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            count = int(db.execute("SELECT count(*) FROM responses").fetchone()[0])
            db.execute("DELETE FROM responses")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return count

    def close(self) -> None:
        """Close every thread's connection (call when no thread uses the cache any more)."""
        with self._guard:
            connections, self._connections = self._connections, []
        for db in connections:
            db.close()
        self._local = threading.local()


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL mode. SQLite answers "database is locked" at once, without its busy
    timeout, while another connection writes to a new cache: try again until the timeout."""
    deadline = time.monotonic() + BUSY_SECONDS
    pause = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
