"""The run directory: one JSON record per request, ``results.jsonl``, and ``manifest.json``.

Layout::

    runs/<run-id>/
      manifest.json        run id, times, versions, settings, spec files and hashes, counts
      results.jsonl        every record, one per line, in plan order when the run ends
      records/<id>.json    one file per request, written atomically (temp file + rename)

Every write goes to a temporary file that is renamed into place, so a run killed at any moment
leaves whole records or none; ``runner run --resume`` then sends only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import queue
import re
import secrets
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runner import __version__
from runner.errors import RunnerError, UsageError

MANIFEST = "manifest.json"
RESULTS = "results.jsonl"
RECORDS = "records"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def safe_file_name(record_id: str) -> str:
    """A file name for a record id that cannot leave the records folder.

    Ids that are not already safe names get a hash of the id appended, so that two ids
    which clean up to the same text ("a/b", "a-b") still get two files.
    """
    name = _UNSAFE.sub("-", record_id).strip(".-") or "record"
    if name == record_id and len(name) <= 150:
        return name
    digest = hashlib.sha256(record_id.encode("utf-8")).hexdigest()[:10]
    return f"{name[:140]}-{digest}"


def _is_record_name(name: str) -> bool:
    return name.endswith(".json") and not name.startswith(".")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that ``path`` holds either its old content or the new, never half."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write text so that ``path`` holds either its old content or the new, never half."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(fd, data) :]
        os.close(fd)
        fd = -1
        os.replace(temp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        Path(temp).unlink(missing_ok=True)
        raise


@dataclass
class RunStore:
    """Reads and writes one run directory; safe to call from many worker threads."""

    root: Path

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.records_dir.mkdir(parents=True, exist_ok=True)
        self._results: Any = None  # results.jsonl, opened for appending on the first record

    @property
    def records_dir(self) -> Path:
        return self.root / RECORDS

    @property
    def run_id(self) -> str:
        return self.root.name

    @classmethod
    def create(cls, out_dir: Path) -> RunStore:
        """A new, empty run directory under ``out_dir``."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        root = out_dir / f"{stamp}-{secrets.token_hex(3)}"
        try:
            root.mkdir(parents=True)
        except OSError as exc:
            raise UsageError(f"cannot create the run directory {root}: {exc.strerror}") from None
        return cls(root)

    @classmethod
    def open(cls, root: Path) -> RunStore:
        """An existing run directory, for --resume."""
        if not (root / MANIFEST).is_file():
            raise UsageError(f"{root} is not a run directory (it has no {MANIFEST})")
        store = cls(root)
        store.remove_leftovers()
        return store

    def remove_leftovers(self) -> None:
        """Delete temporary files a killed run left half-written (they never hold a record)."""
        for folder in (self.root, self.records_dir):
            for temp in folder.glob(".*.tmp"):
                temp.unlink(missing_ok=True)

    def record_path(self, record_id: str) -> Path:
        return self.records_dir / f"{safe_file_name(record_id)}.json"

    def save_record(self, record: dict[str, Any]) -> None:
        """Save one record atomically and append it to results.jsonl.

        Records are written as compact one-line JSON (``jq . FILE`` shows them indented):
        Python's JSON encoder is several times slower with indentation, and saving is on
        the path of every request.
        """
        line = json.dumps(record, ensure_ascii=False) + "\n"
        write_text_atomic(self.record_path(record["id"]), line)
        with self._lock:
            if self._results is None:
                self._results = open(self.root / RESULTS, "a", encoding="utf-8")  # noqa: SIM115
            self._results.write(line)
            self._results.flush()

    def close(self) -> None:
        """Close results.jsonl (the record files are closed as they are written)."""
        with self._lock:
            if self._results is not None:
                self._results.close()
                self._results = None

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record saved so far, in file-name order (unreadable leftovers are skipped)."""
        # Plain names, not Path objects: a 100,000-record run sorts them in a few MB.
        names = sorted(e.name for e in os.scandir(self.records_dir) if _is_record_name(e.name))
        for name in names:
            try:
                yield json.loads((self.records_dir / name).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue

    def completed_ids(self) -> set[str]:
        """Ids of records that need not be sent again: the provider answered them."""
        return {r["id"] for r in self.records() if r.get("status") != "failed"}

    def rewrite_results(self, record_ids: Iterable[str]) -> dict[str, int]:
        """Rebuild results.jsonl from the record files, one line per record, in the order of
        ``record_ids`` (the run's plan: spec, case, combination); count the statuses.

        Ids without a record file (not sent yet) are left out and counted as ``not_sent``. The
        ids are a generator and records stream through one at a time, so a run of any size
        rebuilds in fixed memory.
        """
        fd, temp = tempfile.mkstemp(dir=self.root, prefix=f".{RESULTS}.", suffix=".tmp")
        counts = {"total": 0, "ok": 0, "failed": 0, "invalid_output": 0, "not_sent": 0}
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for record_id in record_ids:
                try:
                    with open(self.record_path(record_id), encoding="utf-8") as record_file:
                        text = record_file.read()
                    status = json.loads(text)["status"]
                except (OSError, ValueError, KeyError):
                    counts["not_sent"] += 1
                    continue
                handle.write(text if text.endswith("\n") else text + "\n")
                counts["total"] += 1
                counts[status] = counts.get(status, 0) + 1
        os.replace(temp, self.root / RESULTS)
        return counts

    def read_manifest(self) -> dict[str, Any]:
        return json.loads((self.root / MANIFEST).read_text(encoding="utf-8"))

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_atomic(self.root / MANIFEST, manifest)


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
        text=True,
        timeout=5,
        check=False,
    )
    return done.stdout if done.returncode == 0 else None


_STOP = object()


class RecordWriter:
    """Saves a run's records on one background thread, in the order they are handed over.

    Many worker threads creating files in one folder at once contend in the kernel (with 50
    workers, saving cost about 1 ms of CPU a record instead of 0.3); one writer does the same
    work without that, and the workers go back to sending. The queue is bounded, so a slow disk
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
