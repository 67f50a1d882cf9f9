"""Answers a resumed run already holds: records that failed only because a judge failed.

Such a record keeps the model's answer (``output`` and ``response``); only its verdict is
missing. Resuming must ask the judge again, not the model: the response cache usually has the
answer, but not with ``--no-cache``, nor when the cache was cleared or moved. So before a run
resumes, the answers of those records are indexed in a private temporary database (a run of
any size stays in bounded memory), and the sender takes a job's answer from here when the
cache has none, provided the job's request is the one the record was answered for.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from runner.runs.cache import CachedResponse, request_key
from runner.runs.store import RunStore, temporary_database
from runner.spec.expectations import JUDGE_KIND


class EarlierAnswers:
    """The kept answers of a run's judge-failed records, by record id."""

    def __init__(self) -> None:
        self._db = temporary_database()
        self._db.execute(
            "CREATE TABLE answer (id TEXT PRIMARY KEY, request TEXT, text TEXT, at TEXT)"
        )
        self.count = 0
        self._lock = threading.Lock()  # workers ask from their own threads

    @classmethod
    def of(cls, store: RunStore) -> EarlierAnswers | None:
        """The judge-failed answers of ``store``'s run; None when it has none."""
        answers = cls()
        for record in store.records():
            answers._add(record)
        if not answers.count:
            answers.close()
            return None
        return answers

    def _add(self, record: Mapping[str, Any]) -> None:
        error, response, request = (
            record.get("error"),
            record.get("response"),
            record.get("request"),
        )
        if not (
            isinstance(error, dict)
            and error.get("kind") == JUDGE_KIND
            and isinstance(response, dict)
            and isinstance(request, dict)
            and isinstance(record.get("id"), str)
        ):
            return
        self._db.execute(
            "INSERT OR REPLACE INTO answer VALUES (?, ?, ?, ?)",
            (
                record["id"],
                request_key("", request),
                json.dumps(response, ensure_ascii=False),
                str(record.get("finished_at") or ""),
            ),
        )
        self.count += 1

    def get(self, record_id: str, request: Mapping[str, Any]) -> CachedResponse | None:
        """The answer kept for ``record_id``, if it answered this very ``request``."""
        with self._lock:
            row = self._db.execute(
                "SELECT request, text, at FROM answer WHERE id = ?", (record_id,)
            ).fetchone()
        if row is None or row[0] != request_key("", request):
            return None
        return CachedResponse(key=row[0], status=200, text=row[1], created_at=row[2])

    def close(self) -> None:
        self._db.close()
