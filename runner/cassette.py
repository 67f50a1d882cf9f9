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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.cache import CachedResponse, request_key
from runner.errors import UsageError
from runner.providers import Endpoint
from runner.store import RunStore


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


@dataclass(frozen=True)
class Cassette:
    """Recorded answers by request key."""

    path: Path
    entries: dict[str, CassetteEntry]

    @classmethod
    def load(cls, path: Path) -> Cassette:
        """Read a cassette file; a broken line is a usage error naming the line."""
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UsageError(f"cannot read the cassette {path}: {exc.strerror}") from None
        entries: dict[str, CassetteEntry] = {}
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                entry = CassetteEntry(
                    data["id"],
                    data["key"],
                    data["request"]["url"],
                    data["request"]["body"],
                    data["response"],
                )
            except (ValueError, KeyError, TypeError):
                raise UsageError(
                    f"{path}:{number}: not a cassette line (expected JSON with id, key, "
                    "request and response; make cassettes with runner export)"
                ) from None
            entries[entry.key] = entry
        return cls(path, entries)

    def get(self, key: str) -> CachedResponse | None:
        """The recorded answer for ``key``, as the cache would give it."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        return CachedResponse(key, 200, json.dumps(entry.response, ensure_ascii=False), "")

    def put(self, key: str, url: str, status: int, text: str) -> None:
        """A cassette is read-only while replaying."""

    def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True)
class ExportResult:
    """What ``export_run`` wrote, and the ids it left out (no answer to replay)."""

    path: Path
    written: int
    skipped: tuple[str, ...]

    def describe(self) -> str:
        text = f"{self.written} record(s) written to {self.path}"
        if self.skipped:
            text += (
                f"; {len(self.skipped)} left out (failed or offline, nothing to replay): "
                + ", ".join(self.skipped[:10])
                + (" ..." if len(self.skipped) > 10 else "")
            )
        return text


def record_entry(record: dict[str, Any]) -> CassetteEntry | None:
    """The cassette entry of one run record, or None if it has no provider answer to replay."""
    provider = record.get("provider") or {}
    if record.get("offline") or not provider.get("base_url"):
        return None
    if record.get("http_status") != 200 or record.get("output") is None:
        return None
    if not isinstance(record.get("response"), dict):
        return None
    url = Endpoint(provider.get("name") or "", provider["base_url"]).completions_url
    body = record["request"]
    key = record.get("request_key") or request_key(url, body)
    return CassetteEntry(record["id"], key, url, body, record["response"])


def export_run(run_dir: Path, out: Path) -> ExportResult:
    """Write the cassette of a run: one line per answered record, sorted by id."""
    store = RunStore.open(run_dir)
    lines: list[str] = []
    skipped: list[str] = []
    for record in sorted(store.records(), key=lambda r: r["id"]):
        entry = record_entry(record)
        if entry is None:
            skipped.append(record["id"])
            continue
        lines.append(json.dumps(entry.to_json(), ensure_ascii=False, sort_keys=True))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}") from None
    return ExportResult(out, len(lines), tuple(skipped))
