"""The Files and Batches endpoints of the local test server, as Groq and OpenAI document them.

``tests/openai_server.py`` hands every ``/files`` and ``/batches`` request here. Time is a
clock the test moves (``server.batches.advance(seconds)``), never the wall clock, so a test can
walk a batch through its states:

    validating   for ``validate_seconds`` after creation (an input file with a bad line fails)
    in_progress  lines are answered ``lines_per_second`` (None: all at once)
    finalizing   for ``finalize_seconds`` after the last line
    completed    the output file holds the 200 answers, the error file the failed lines
    expired      the window ended first: done lines are in the output file, the rest in the
                 error file with code ``batch_expired``
    cancelling / cancelled   after ``POST /batches/{id}/cancel`` (one clock second later), the
                 rest in the error file with code ``batch_cancelled``
    failed       the input file was not a valid batch file (``errors.data`` says why)

Each line is answered with ``offline.complete(body)``, the same completion the synchronous
endpoint gives, so a batch run's records can be compared with a synchronous run's. Lines whose
body contains a marker given to ``fail_lines(marker, status)`` get that HTTP error instead.
``content_delay`` slows downloads (seconds per ``content_chunk`` bytes) so a test can kill a
fetch midway.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from runner.send import offline

START = 1_760_000_000  # the clock's first second (a fixed Unix time)
WINDOWS = {"24h": 86400, "48h": 172800, "72h": 259200, "4d": 345600, "5d": 432000}
WINDOWS |= {"6d": 518400, "7d": 604800}
TERMINAL = {"completed", "failed", "expired", "cancelled"}


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


@dataclass
class Batch:
    id: str
    input_file_id: str
    window: str
    created_at: int
    metadata: dict[str, Any] | None
    status: str = "validating"
    times: dict[str, int] = field(default_factory=dict)
    total: int = 0
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] | None = None
    cancel_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": self.input_file_id,
            "completion_window": self.window,
            "status": self.status,
            "created_at": self.created_at,
            "expires_at": self.created_at + WINDOWS[self.window],
            "request_counts": {
                "total": self.total,
                "completed": self.completed,
                "failed": self.failed,
            },
            "metadata": self.metadata,
            **self.times,
        }
        # Absent rather than null: the published schema types these as plain strings/objects.
        if self.output_file_id:
            data["output_file_id"] = self.output_file_id
        if self.error_file_id:
            data["error_file_id"] = self.error_file_id
        if self.errors:
            data["errors"] = {"object": "list", "data": self.errors}
        return data


class BatchBackend:
    """Files and batches kept in memory, moved through their states by a test-driven clock."""

    def __init__(self) -> None:
        self.now = float(START)
        self.validate_seconds = 1.0
        self.finalize_seconds = 1.0
        self.lines_per_second: float | None = None
        self.max_lines = 50_000
        self.content_delay = 0.0
        self.content_chunk = 65536
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, Batch] = {}
        self.failures: list[tuple[str, int]] = []
        self.keep_uploads = True
        self.uploads: list[int] = []  # sizes of the files uploaded, in order
        self.calls: list[tuple[str, str]] = []  # (method, path) of every call, in order
        self.created: list[dict[str, Any]] = []  # the bodies of POST /batches
        self.fail_creates = 0  # answer this many coming POST /batches with a 500
        self._lock = threading.RLock()
        self._ids = 0

    # ---- control, for tests

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
            for batch in self.batches.values():
                self._step(batch)

    def fail_lines(self, marker: str, status: int = 400) -> None:
        """Answer every line whose body contains ``marker`` with this HTTP error."""
        self.failures.append((marker, status))

    def content(self, file_id: str) -> bytes:
        return self.files[file_id].data

    # ---- HTTP

    def handle(self, handler: Any) -> bool:
        """Answer the request if it is a Files or Batches call; False if it is not one."""
        path = handler.path.split("?", 1)[0].rstrip("/")
        route = re.search(r"/(files|batches)(?:/([^/]+))?(?:/(content|cancel))?$", path)
        if route is None:
            return False
        kind, ident, action = route.groups()
        self.calls.append((handler.command, path))
        server = handler.server
        if server.api_key is not None and (
            handler.headers.get("Authorization") != f"Bearer {server.api_key}"
        ):
            _drain(handler)
            handler._send_json(401, _error("Invalid API Key", "invalid_api_key"))
            return True
        if handler.command == "POST" and kind == "files" and ident is None:
            self._upload(handler)
        elif handler.command == "GET" and kind == "files" and ident and action == "content":
            self._download(handler, ident)
        elif handler.command == "GET" and kind == "files" and ident:
            found = self.files.get(ident)
            handler._send_json(*((200, found.to_json()) if found else _not_found(ident)))
        elif handler.command == "POST" and kind == "batches" and ident is None:
            self._create(handler)
        elif kind == "batches" and ident:
            if handler.command == "POST":
                _drain(handler)
            self._batch_call(handler, ident, action)
        else:
            _drain(handler)
            handler._send_json(404, _error(f"Unknown request URL: {handler.path}", "unknown_url"))
        return True

    def _upload(self, handler: Any) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        fields = _multipart(handler.headers.get("Content-Type", ""), raw)
        if "file" not in fields or fields.get("purpose", (b"", ""))[0] != b"batch":
            handler._send_json(400, _error("a file and purpose=batch are required", "invalid"))
            return
        data, filename = fields["file"]
        self.uploads.append(len(data))
        stored = self._new_file(filename or "upload.jsonl", "batch", data)
        if not self.keep_uploads:
            stored.data = b""
        handler._send_json(200, stored.to_json())

    def _download(self, handler: Any, file_id: str) -> None:
        found = self.files.get(file_id)
        if found is None:
            handler._send_json(*_not_found(file_id))
            return
        handler._send_head(200, "application/octet-stream", len(found.data), {})
        step = self.content_chunk
        try:
            for start in range(0, len(found.data), step):
                if self.content_delay:
                    time.sleep(self.content_delay)
                handler.wfile.write(found.data[start : start + step])
                handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client was killed mid-download

    def _create(self, handler: Any) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers.get("Content-Length") or 0)))
        self.created.append(body)
        if self.fail_creates > 0:
            self.fail_creates -= 1
            handler._send_json(500, _error("The server had an error", "server_error"))
            return
        problem = None
        if body.get("input_file_id") not in self.files:
            problem = f"no file {body.get('input_file_id')!r}"
        elif body.get("endpoint") != "/v1/chat/completions":
            problem = "endpoint must be /v1/chat/completions"
        elif body.get("completion_window") not in WINDOWS:
            problem = "completion_window must be from 24h to 7d"
        if problem:
            handler._send_json(400, _error(problem, "invalid_request"))
            return
        with self._lock:
            batch = Batch(
                self._new_id("batch"),
                body["input_file_id"],
                body["completion_window"],
                int(self.now),
                body.get("metadata"),
            )
            self.batches[batch.id] = batch
        handler._send_json(200, batch.to_json())

    def _batch_call(self, handler: Any, batch_id: str, action: str | None) -> None:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                handler._send_json(*_not_found(batch_id))
                return
            cancellable = batch.status not in TERMINAL and batch.status != "cancelling"
            if action == "cancel" and handler.command == "POST" and cancellable:
                batch.status = "cancelling"
                batch.times["cancelling_at"] = int(self.now)
                batch.cancel_at = self.now
            self._step(batch)
            answer = batch.to_json()
        handler._send_json(200, answer)

    # ---- the state machine

    def _step(self, batch: Batch) -> None:
        if batch.status in TERMINAL:
            return
        lines = self._lines(batch)
        batch.total = len(lines)
        if batch.status == "cancelling":
            assert batch.cancel_at is not None
            if self.now >= batch.cancel_at + 1:
                self._finish(batch, lines, self._done(batch, batch.cancel_at), "cancelled")
            return
        started = batch.created_at + self.validate_seconds
        if self.now < started:
            return
        if batch.status == "validating":
            errors = _check_lines(lines, self.max_lines)
            if errors:
                batch.errors = errors
                batch.status = "failed"
                batch.times["failed_at"] = int(started)
                return
            batch.status = "in_progress"
            batch.times["in_progress_at"] = int(started)
        expires = batch.created_at + WINDOWS[batch.window]
        rate = self.lines_per_second
        end = started + (len(lines) / rate if rate else 0.0)
        if self.now >= expires and end > expires:
            self._finish(batch, lines, self._done(batch, expires), "expired")
            return
        done = self._done(batch, self.now)
        batch.completed, batch.failed = self._tally(lines[:done])
        if done < len(lines):
            return
        batch.status = "finalizing"
        batch.times.setdefault("finalizing_at", int(end))
        if self.now >= end + self.finalize_seconds:
            self._finish(batch, lines, len(lines), "completed")

    def _done(self, batch: Batch, moment: float) -> int:
        if batch.status == "validating":
            return 0
        started = batch.times["in_progress_at"]
        if self.lines_per_second is None:
            return batch.total
        return min(batch.total, max(0, int((moment - started) * self.lines_per_second)))

    def _tally(self, lines: list[bytes]) -> tuple[int, int]:
        failed = sum(1 for line in lines if self._failure(line) is not None)
        return len(lines) - failed, failed

    def _failure(self, line: bytes) -> int | None:
        text = line.decode("utf-8", errors="replace")
        for marker, status in self.failures:
            if marker in text:
                return status
        return None

    def _finish(self, batch: Batch, lines: list[bytes], done: int, status: str) -> None:
        output, errors = [], []
        for number, line in enumerate(lines):
            item = json.loads(line)
            custom_id, body = item["custom_id"], item["body"]
            answer_id = f"batch_req_{batch.id[6:]}_{number}"
            if number >= done:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                message = (
                    "This request could not be executed before the completion window expired."
                    if status == "expired"
                    else "This request was not executed because the batch was cancelled."
                )
                error = {"code": code, "message": message}
                errors.append(
                    {"id": answer_id, "custom_id": custom_id, "response": None, "error": error}
                )
                continue
            failure = self._failure(line)
            if failure is None:
                response = {
                    "status_code": 200,
                    "request_id": f"req_{number}",
                    "body": offline.complete(body),
                }
                output.append(
                    {"id": answer_id, "custom_id": custom_id, "response": response, "error": None}
                )
            else:
                body_error = _error(
                    "'messages' must contain at least one message", "invalid_request_error"
                )
                response = {
                    "status_code": failure,
                    "request_id": f"req_{number}",
                    "body": body_error,
                }
                errors.append(
                    {"id": answer_id, "custom_id": custom_id, "response": response, "error": None}
                )
        batch.completed, batch.failed = self._tally(lines[:done])
        batch.failed += len(lines) - done if status in ("expired", "cancelled") else 0
        if output:
            batch.output_file_id = self._new_file("output.jsonl", "batch_output", _jsonl(output)).id
        if errors:
            batch.error_file_id = self._new_file("errors.jsonl", "batch_output", _jsonl(errors)).id
        batch.status = status
        batch.times[f"{status}_at"] = int(self.now)

    def _lines(self, batch: Batch) -> list[bytes]:
        return [line for line in self.files[batch.input_file_id].data.split(b"\n") if line.strip()]

    def _new_file(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        with self._lock:
            stored = StoredFile(self._new_id("file"), filename, purpose, data, int(self.now))
            self.files[stored.id] = stored
        return stored

    def _new_id(self, prefix: str) -> str:
        with self._lock:
            self._ids += 1
            return f"{prefix}_{self._ids:06d}"


def _check_lines(lines: list[bytes], max_lines: int) -> list[dict[str, Any]]:
    """What makes an input file unacceptable, as ``errors.data`` entries."""
    if len(lines) > max_lines:
        return [{"code": "too_many_lines", "message": f"more than {max_lines} lines", "line": None}]
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        try:
            item = json.loads(line)
        except ValueError:
            return [{"code": "invalid_json_line", "message": "not JSON", "line": number}]
        if item.get("url") != "/v1/chat/completions" or item.get("method") != "POST":
            return [
                {
                    "code": "invalid_url",
                    "message": "url must be /v1/chat/completions",
                    "line": number,
                }
            ]
        if not isinstance(item.get("body"), dict) or item.get("custom_id") in seen:
            return [
                {
                    "code": "invalid_request",
                    "message": "bad body or repeated custom_id",
                    "line": number,
                }
            ]
        seen.add(item.get("custom_id"))
    return []


def _multipart(content_type: str, raw: bytes) -> dict[str, tuple[bytes, str | None]]:
    """The fields of a multipart/form-data body: name -> (value, filename)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        return {}
    fields: dict[str, tuple[bytes, str | None]] = {}
    for chunk in raw.split(b"--" + match.group(1).encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, value = chunk.partition(b"\r\n\r\n")
        disposition = head.decode("utf-8", errors="replace")
        name = re.search(r'name="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        if name:
            fields[name.group(1)] = (
                value[:-2] if value.endswith(b"\r\n") else value,
                filename.group(1) if filename else None,
            )
    return fields


def _jsonl(items: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


def _drain(handler: Any) -> None:
    handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


def _not_found(ident: str) -> tuple[int, dict[str, Any]]:
    return 404, _error(f"No such object: {ident}", "not_found")
