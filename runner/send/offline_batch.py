"""The Batch API of the offline provider: files and batches kept on disk, answered locally.

``runner batch submit/status/fetch`` on ``--provider offline`` go through the same steps as on
a real provider: the input file is written and "uploaded", a batch is created, its status is
read, and the output file is downloaded and turned into records by the same code. Only the
calls differ: they read and write a folder of the run (``batch/offline/``) instead of the
network, and each request is answered by the offline provider, deterministically.

A batch is ``in_progress`` when created and ``completed`` when its status is next read, so
``submit`` shows it running and ``status`` or ``fetch`` shows it done, as with a provider.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Protocol

from runner.errors import RunnerError
from runner.files import create_private, open_private
from runner.providers.endpoints import Endpoint

CREATED = 1767225600  # fixed, as the offline provider's answers: the same input, the same files
WINDOW_SECONDS = {"h": 3600, "d": 86400}


class BatchCalls(Protocol):
    """The Batch API calls a batch run makes (``BatchClient`` over HTTP, or offline)."""

    def upload(self, endpoint: Endpoint, path: Path) -> dict[str, Any]: ...

    def create_batch(
        self, endpoint: Endpoint, file_id: str, window: str, metadata: dict[str, str]
    ) -> dict[str, Any]: ...

    def get_batch(self, endpoint: Endpoint, batch_id: str) -> dict[str, Any]: ...

    def cancel_batch(self, endpoint: Endpoint, batch_id: str) -> dict[str, Any]: ...

    def download(self, endpoint: Endpoint, file_id: str, target: Path) -> int: ...

    def close(self) -> None: ...


class OfflineBatchError(RunnerError):
    """A file or batch the offline Batch API does not hold (removed from the run folder)."""


class OfflineBatches:
    """Batch API calls answered from ``folder`` (``RUN_DIR/batch/offline``)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def upload(self, endpoint: Endpoint, path: Path) -> dict[str, Any]:
        digest = _file_digest(path)
        file_id = f"file-offline-{digest[:24]}"
        target = self._path("files", file_id, ".jsonl")
        target.parent.mkdir(parents=True, exist_ok=True)
        create_private(target)
        shutil.copyfile(path, target)
        return self._file_object(file_id, path.name, "batch")

    def create_batch(
        self, endpoint: Endpoint, file_id: str, window: str, metadata: dict[str, str]
    ) -> dict[str, Any]:
        source = self._path("files", file_id, ".jsonl")
        if not source.is_file():
            raise OfflineBatchError(f"the offline Batch API holds no file {file_id}")
        seed = json.dumps([file_id, metadata], sort_keys=True).encode("utf-8")
        batch_id = f"batch_offline_{hashlib.sha256(seed).hexdigest()[:24]}"
        lines = _count_lines(source)
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": file_id,
            "completion_window": window,
            "status": "in_progress",
            "created_at": CREATED,
            "in_progress_at": CREATED,
            "expires_at": CREATED + _window_seconds(window),
            "request_counts": {"total": lines, "completed": 0, "failed": 0},
            "metadata": metadata,
        }
        self._save_batch(batch)
        return batch

    def get_batch(self, endpoint: Endpoint, batch_id: str) -> dict[str, Any]:
        batch = self._load_batch(batch_id)
        if batch["status"] == "in_progress":
            batch = self._complete(batch)
            self._save_batch(batch)
        return batch

    def cancel_batch(self, endpoint: Endpoint, batch_id: str) -> dict[str, Any]:
        batch = self._load_batch(batch_id)
        if batch["status"] == "in_progress":
            counts = batch["request_counts"]
            batch = {
                **batch,
                "status": "cancelled",
                "cancelled_at": CREATED,
                "request_counts": {**counts, "failed": counts["total"]},
            }
            self._save_batch(batch)
        return batch

    def download(self, endpoint: Endpoint, file_id: str, target: Path) -> int:
        source = self._path("files", file_id, ".jsonl")
        if not source.is_file():
            raise OfflineBatchError(f"the offline Batch API holds no file {file_id}")
        temp = target.with_name(f".{target.name}.tmp")
        create_private(temp)
        shutil.copyfile(source, temp)
        os.replace(temp, target)
        return target.stat().st_size

    def close(self) -> None:
        """Nothing to release: there is no connection."""

    # ---- the work

    def _complete(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Answer every line of the batch's input with the offline provider."""
        from runner.send import offline

        source = self._path("files", batch["input_file_id"], ".jsonl")
        output_id = f"file-offline-out-{batch['id'].rsplit('_', 1)[-1]}"
        target = self._path("files", output_id, ".jsonl")
        done = 0
        with open(source, "rb") as lines, open_private(target, "w", encoding="utf-8") as out:
            for number, line in enumerate(lines):
                if not line.strip():
                    continue
                item = json.loads(line)
                response = {
                    "status_code": 200,
                    "request_id": f"req_offline_{number}",
                    "body": offline.complete(item.get("body") or {}),
                }
                answer = {
                    "id": f"batch_req_offline_{number}",
                    "custom_id": item.get("custom_id"),
                    "response": response,
                    "error": None,
                }
                out.write(json.dumps(answer, ensure_ascii=False) + "\n")
                done += 1
        return {
            **batch,
            "status": "completed",
            "finalizing_at": CREATED,
            "completed_at": CREATED,
            "output_file_id": output_id,
            "request_counts": {"total": done, "completed": done, "failed": 0},
        }

    def _path(self, kind: str, ident: str, suffix: str) -> Path:
        safe = "".join(ch for ch in ident if ch.isalnum() or ch in "-_")
        return self.folder / kind / f"{safe}{suffix}"

    def _file_object(self, file_id: str, name: str, purpose: str) -> dict[str, Any]:
        size = self._path("files", file_id, ".jsonl").stat().st_size
        return {
            "id": file_id,
            "object": "file",
            "bytes": size,
            "created_at": CREATED,
            "filename": name,
            "purpose": purpose,
            "status": "processed",
        }

    def _save_batch(self, batch: dict[str, Any]) -> None:
        path = self._path("batches", batch["id"], ".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.tmp")
        with open_private(temp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(batch, indent=2) + "\n")
        os.replace(temp, path)

    def _load_batch(self, batch_id: str) -> dict[str, Any]:
        path = self._path("batches", batch_id, ".json")
        try:
            batch = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise OfflineBatchError(
                f"the offline Batch API holds no batch {batch_id} (looked in {path})"
            ) from None
        if not isinstance(batch, dict):
            raise OfflineBatchError(f"{path} holds no batch object")
        return batch


class BatchClients:
    """Each call goes to the offline Batch API for the offline provider, to ``remote`` (HTTP)
    for any other; the remote client is made only when a call needs it."""

    def __init__(self, offline: OfflineBatches, remote: Any):
        self._offline = offline
        self._make_remote = remote
        self._remote: BatchCalls | None = None

    def _for(self, endpoint: Endpoint) -> BatchCalls:
        if endpoint.offline:
            return self._offline
        if self._remote is None:
            self._remote = self._make_remote()
        assert self._remote is not None
        return self._remote

    def upload(self, endpoint: Endpoint, path: Path) -> dict[str, Any]:
        return self._for(endpoint).upload(endpoint, path)

    def create_batch(
        self, endpoint: Endpoint, file_id: str, window: str, metadata: dict[str, str]
    ) -> dict[str, Any]:
        return self._for(endpoint).create_batch(endpoint, file_id, window, metadata)

    def get_batch(self, endpoint: Endpoint, batch_id: str) -> dict[str, Any]:
        return self._for(endpoint).get_batch(endpoint, batch_id)

    def cancel_batch(self, endpoint: Endpoint, batch_id: str) -> dict[str, Any]:
        return self._for(endpoint).cancel_batch(endpoint, batch_id)

    def download(self, endpoint: Endpoint, file_id: str, target: Path) -> int:
        return self._for(endpoint).download(endpoint, file_id, target)

    def close(self) -> None:
        if self._remote is not None:
            self._remote.close()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def _window_seconds(window: str) -> int:
    number, unit = window[:-1], window[-1:]
    return int(number) * WINDOW_SECONDS[unit] if number.isdigit() and unit in "hd" else 86400
