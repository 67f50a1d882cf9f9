"""Replace every record of a finished run, for re-scoring (``runner score``).

A stand-in until the store offers ``RunStore.rewrite_records``: each record file is replaced
atomically, then results.jsonl is rebuilt from them in its own order (which is the plan's).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from runner.store import RESULTS, RunStore, write_text_atomic


def rewrite_records(store: RunStore, transform: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """Save ``transform(record)`` in place of every record of ``store``; how many there were."""
    count = 0
    for record in store.records():
        line = json.dumps(transform(record), ensure_ascii=False) + "\n"
        write_text_atomic(store.record_path(record["id"]), line)
        count += 1
    store.rewrite_results(_result_order(store))
    return count


def _result_order(store: RunStore) -> list[str]:
    path = store.root / RESULTS
    if not path.is_file():
        return sorted(r["id"] for r in store.records())
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line)["id"] for line in lines if line.strip()]
