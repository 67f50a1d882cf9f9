"""Record and replay: a run's answers saved as a cassette, and runs answered from one.

A cassette is a JSON Lines file, one line per record sorted by id, so that it diffs well in
git::

    {"id": "...", "key": "<sha256>", "request": {"url": "...", "body": {...}}, "response": {...}}

It holds the completions URL (never a key) and the body as sent, except that a local image is
kept as a reference to its file (path, size, sha256), as in the run's records; its ``key`` is
that of the body as sent, base64 and all, so replay finds it while the image is unchanged.
``runner run --replay FILE`` answers every request from it by key, without building an HTTP
client at all.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import UsageError, plural
from runner.files import open_private
from runner.providers.endpoints import OFFLINE, Endpoint
from runner.runs.cache import CachedResponse, request_key
from runner.runs.fileio import read_at
from runner.runs.store import RunStore, temporary_database

SKIPPED_NAMED = 10  # ids named in the summary of an export


@dataclass(frozen=True)
class CassetteEntry:
    """One recorded exchange: the request as sent and the provider's answer."""

    id: str
    key: str
    url: str
    body: dict[str, Any]
    response: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "request": {"url": self.url, "body": self.body},
            "response": self.response,
        }


class Cassette:
    """Recorded answers by request key, read from the file when asked for: only the position
    of each line is kept, in a temporary database, so a cassette of any size replays in
    bounded memory. Safe to use from many worker threads."""

    def __init__(self, path: Path, index: sqlite3.Connection):
        self.path = path
        self._index = index
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> Cassette:
        """Read a cassette file once, checking every line; a broken line is a usage error
        naming the line."""
        index = temporary_database()
        index.execute("CREATE TABLE entry (key TEXT PRIMARY KEY, at INTEGER, size INTEGER)")
        try:
            with index:
                index.executemany("INSERT OR REPLACE INTO entry VALUES (?, ?, ?)", _positions(path))
        except OSError as exc:
            index.close()
            raise UsageError(f"cannot read the cassette {path}: {exc.strerror}") from None
        except BaseException:
            index.close()
            raise
        return cls(path, index)

    def has(self, key: str) -> bool:
        """Whether the cassette holds an answer for ``key`` (without reading it)."""
        with self._lock:
            return (
                self._index.execute("SELECT 1 FROM entry WHERE key = ?", (key,)).fetchone()
                is not None
            )

    def get(self, key: str) -> CachedResponse | None:
        """The recorded answer for ``key``, as the cache would give it."""
        with self._lock:
            row = self._index.execute("SELECT at, size FROM entry WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        response = json.loads(read_at(self._file, row[1], row[0]))["response"]
        return CachedResponse(key, 200, json.dumps(response, ensure_ascii=False), "")

    def put(self, key: str, url: str, status: int, text: str) -> None:
        """A cassette is read-only while replaying."""

    def close(self) -> None:
        """Close the file and drop the index."""
        with self._lock:
            self._file.close()
            self._index.close()


def _positions(path: Path) -> Iterator[tuple[str, int, int]]:
    """(key, offset, length) of every line of a cassette file, each checked."""
    offset = 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            size = len(line)
            if line.strip():
                try:
                    data = json.loads(line)
                    CassetteEntry(
                        data["id"],
                        data["key"],
                        data["request"]["url"],
                        data["request"]["body"],
                        data["response"],
                    )
                    key = str(data["key"])
                except (ValueError, KeyError, TypeError, RecursionError):
                    raise UsageError(
                        f"{path}:{number}: not a cassette line (expected JSON with id, key, "
                        "request and response; make cassettes with runner export)"
                    ) from None
                yield key, offset, size
            offset += size


@dataclass(frozen=True)
class ExportResult:
    """What ``export_run`` wrote, and the ids it left out (no answer to replay)."""

    path: Path
    written: int
    skipped: tuple[str, ...]  # the first SKIPPED_NAMED ids left out
    skipped_count: int = 0
    judges: int = 0  # of the lines written, the judge requests the records held

    def describe(self) -> str:
        records = self.written - self.judges
        text = f"{plural(records, 'record')} written to {self.path}"
        if self.judges:
            text += f", with the {plural(self.judges, 'judge request')} they hold"
        if self.skipped_count:
            text += (
                f"; {self.skipped_count} left out (failed: no answer to replay): "
                + ", ".join(self.skipped)
                + (" ..." if self.skipped_count > len(self.skipped) else "")
            )
        return text


def record_entry(record: dict[str, Any]) -> CassetteEntry | None:
    """The cassette entry of one run record, or None if it has no provider answer to replay."""
    provider = record.get("provider") or {}
    if record.get("offline"):
        # Offline answers replay too (--provider offline --replay FILE), so record and replay
        # can be tried without a key; their URL is the offline endpoint's, as when replayed.
        url = Endpoint(OFFLINE, None).completions_url
    elif provider.get("base_url"):
        url = Endpoint(provider.get("name") or "", provider["base_url"]).completions_url
    else:
        return None
    if record.get("http_status") != 200 or record.get("output") is None:
        return None
    if not isinstance(record.get("response"), dict):
        return None
    body = record["request"]
    key = record.get("request_key") or request_key(url, body)
    return CassetteEntry(record["id"], key, url, body, record["response"])


def export_run(run_dir: Path, out: Path) -> ExportResult:
    """Write the cassette of a run: one line per answered record (and per answered judge
    request it holds), sorted by id.

    Records stream from the run; the lines are sorted in a temporary database, so a run of
    any size exports in bounded memory. Only the first skipped ids are kept, to name them.
    """
    store = RunStore.open(run_dir)
    written, skipped, judges, examples = 0, 0, 0, list[str]()
    sorter = temporary_database()
    try:
        sorter.execute("CREATE TABLE line (id TEXT, text TEXT)")
        rows: list[tuple[str, str]] = []
        for record in store.records():
            entry = record_entry(record)
            if entry is None:
                skipped += 1
                if len(examples) < SKIPPED_NAMED:
                    examples.append(record["id"])
                continue
            rows.append((entry.id, json.dumps(entry.to_json(), ensure_ascii=False, sort_keys=True)))
            # A judged record holds its judges' exchanges: they replay like the answers.
            for judged in record.get("judges") or ():
                judge_entry = record_entry(judged) if isinstance(judged, dict) else None
                if judge_entry is not None:
                    text = json.dumps(judge_entry.to_json(), ensure_ascii=False, sort_keys=True)
                    rows.append((judge_entry.id, text))
                    judges += 1
            if len(rows) >= 1024:
                sorter.executemany("INSERT INTO line VALUES (?, ?)", rows)
                rows.clear()
        sorter.executemany("INSERT INTO line VALUES (?, ?)", rows)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with open_private(out, "w", encoding="utf-8") as handle:
                for (text,) in sorter.execute("SELECT text FROM line ORDER BY id"):
                    handle.write(text + "\n")
                    written += 1
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror}") from None
    finally:
        sorter.close()
    return ExportResult(out, written, tuple(examples), skipped, judges)
