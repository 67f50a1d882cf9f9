"""The run directory: one JSON record per request, ``results.jsonl``, and ``manifest.json``.

Layout::

    runs/<run-id>/
      manifest.json        run id, times, versions, settings, spec files and hashes, counts
      results.jsonl        every record, one per line, sorted by record id when the run ends
      records/<id>.json    one file per request, written atomically (temp file + rename)

Every write goes to a temporary file that is renamed into place, so a run killed at any moment
leaves whole records or none; ``runner run --resume`` then sends only what is missing.
"""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runner import __version__
from runner.errors import UsageError

MANIFEST = "manifest.json"
RESULTS = "results.jsonl"
RECORDS = "records"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def safe_file_name(record_id: str) -> str:
    """A file name for a record id that cannot leave the records folder."""
    name = _UNSAFE.sub("-", record_id).strip(".-") or "record"
    return name[:150]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that ``path`` holds either its old content or the new, never half."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@dataclass
class RunStore:
    """Reads and writes one run directory; safe to call from many worker threads."""

    root: Path

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.records_dir.mkdir(parents=True, exist_ok=True)

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
        return cls(root)

    def record_path(self, record_id: str) -> Path:
        return self.records_dir / f"{safe_file_name(record_id)}.json"

    def save_record(self, record: dict[str, Any]) -> None:
        """Save one record atomically and append it to results.jsonl."""
        write_json_atomic(self.record_path(record["id"]), record)
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock, open(self.root / RESULTS, "a", encoding="utf-8") as handle:
            handle.write(line)

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record saved so far (unreadable leftovers are skipped)."""
        for path in sorted(self.records_dir.glob("*.json")):
            try:
                yield json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue

    def completed_ids(self) -> set[str]:
        """Ids of records that need not be sent again: the provider answered them."""
        return {r["id"] for r in self.records() if r.get("status") != "failed"}

    def rewrite_results(self) -> None:
        """Rebuild results.jsonl from the record files: one line per record, sorted by id."""
        fd, temp = tempfile.mkstemp(dir=self.root, prefix=f".{RESULTS}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for record in sorted(self.records(), key=lambda r: r["id"]):
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(temp, self.root / RESULTS)

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
