"""The response cache: provider answers kept in SQLite, so an unchanged request is not paid twice.

A request is identified by its key, the sha256 of the canonical JSON of the completions URL and
the request body (never the API key), so key order and whitespace do not matter. Only answers
that came back as HTTP 200 chat completions are stored; failures are always sent again.

The database lives in the project at ``.runner/cache.sqlite`` (or in ``$RUNNER_CACHE_DIR``). It
runs in WAL mode and every ``put`` is its own committed transaction, so worker threads, other
runs and a run killed with SIGKILL all leave it readable.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from runner.errors import UsageError
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


class ResponseCache:
    """A SQLite table of answers by request key; one connection shared under a lock."""

    def __init__(self, path: Path, mode: CacheMode = "use"):
        self.path = path
        self.mode = mode
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA busy_timeout = 30000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(
                f"cannot open the response cache {path}: {exc} (delete it, or run with --no-cache)"
            ) from None

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
            with self._lock:
                row = self._db.execute(
                    "SELECT status, response, created_at FROM responses WHERE key = ?", (key,)
                ).fetchone()
        except sqlite3.Error:
            return None  # an unreadable cache only costs a request
        return CachedResponse(key, row[0], row[1], row[2]) if row else None

    def contains(self, key: str) -> bool:
        return self.get(key) is not None

    def put(self, key: str, url: str, status: int, text: str) -> None:
        """Store one answer in its own committed transaction (a no-op unless the mode writes).

        A cache that cannot be written (disk full, locked too long) never fails the run.
        """
        if not self.writes:
            return
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO responses (key, url, status, response) "
                    "VALUES (?, ?, ?, ?)",
                    (key, url, status, text),
                )
        except sqlite3.Error:
            return

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM responses").fetchone()[0])

    def clear(self) -> int:
        """Delete every stored answer; returns how many there were."""
        with self._lock:
            count = int(self._db.execute("SELECT count(*) FROM responses").fetchone()[0])
            self._db.execute("DELETE FROM responses")
        return count

    def close(self) -> None:
        with self._lock:
            self._db.close()
