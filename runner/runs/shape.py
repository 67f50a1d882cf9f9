"""A record read back from a run directory, its fields checked against what runner writes.

Run directories are input like any other: a record edited by hand, written by another tool or
by an attacker can hold ``latency_ms: "slow"`` or ``output: [1, 2]``. ``readable_record``
keeps every field of the right type and leaves out the rest (a top-level field becomes
``null``, a nested one is dropped), and says which it left out, so the readers (report,
export, diff, show, score) show what can be shown and go on instead of failing on it.
"""

from __future__ import annotations

from typing import Any

_NUMBER = (int, float)
_TEXT = (str,)
_MAP = (dict,)
_LIST = (list,)

# What each field of a record is (absent and null are always allowed).
FIELDS: dict[str, tuple[type, ...]] = {
    "id": _TEXT,
    "spec": _MAP,
    "case": _MAP,
    "matrix": _MAP,
    "vars": _MAP,
    "provider": _MAP,
    "offline": (bool,),
    "cached": (bool,),
    "request": _MAP,
    "request_key": _TEXT,
    "status": _TEXT,
    "http_status": (int,),
    "response": _MAP,
    "response_text": _TEXT,
    "output": _MAP,
    "usage": _MAP,
    "error": _MAP,
    "attempts": (int,),
    "latency_ms": _NUMBER,
    "stream": _MAP,
    "started_at": _TEXT,
    "finished_at": _TEXT,
    "expectations": _MAP,
    "judges": _LIST,
}
# The fields inside the mappings above that readers use.
NESTED: dict[str, dict[str, tuple[type, ...]]] = {
    "spec": {"path": _TEXT, "name": _TEXT, "sha256": _TEXT, "file": _TEXT},
    "case": {"id": _TEXT, "row": (int,), "source": _TEXT},
    "provider": {"name": _TEXT, "base_url": _TEXT, "api_key_env": _TEXT},
    "request": {"model": _TEXT, "messages": _LIST},
    "response": {"model": _TEXT, "choices": _LIST, "id": _TEXT, "usage": _MAP},
    "output": {
        "content": _TEXT,
        "finish_reason": _TEXT,
        "truncated": (bool,),
        "valid": (bool,),
        "errors": _LIST,
        "tool_calls": _LIST,
        "reasoning": _TEXT,
    },
    "usage": {
        "prompt_tokens": _NUMBER,
        "completion_tokens": _NUMBER,
        "total_tokens": _NUMBER,
        "queue_time": _NUMBER,
        "prompt_time": _NUMBER,
        "completion_time": _NUMBER,
        "total_time": _NUMBER,
    },
    "error": {"kind": _TEXT, "message": _TEXT, "limit": _TEXT},
    "stream": {"ttft_ms": _NUMBER, "chunks": (int,)},
    "expectations": {"passed": (bool,), "total": (int,), "failed": (int,), "checks": _LIST},
}
# Lists whose items must be of one type: (field, key) -> item type.
ITEMS: dict[tuple[str, str], tuple[type, ...]] = {
    ("output", "errors"): _TEXT,
    ("output", "tool_calls"): _MAP,
    ("expectations", "checks"): _MAP,
    ("request", "messages"): _MAP,
    ("response", "choices"): _MAP,
}
_TOP_ITEMS: dict[str, tuple[type, ...]] = {"judges": _MAP}


# The same, as sets of exact types (json.loads makes no subclasses; true is not a number).
_EXACT = {key: frozenset(kinds) for key, kinds in FIELDS.items()}
_EXACT_NESTED = {
    field: {key: frozenset(kinds) for key, kinds in keys.items()} for field, keys in NESTED.items()
}


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    return value is None or type(value) in kinds


def _kind(value: Any) -> str:
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def readable_record(record: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``record`` with every field of the wrong type left out, and a sentence per field left
    out (empty when the record is as runner writes it; the record is then returned as is).
    Only the fields a record has are looked at, by exact type: it runs on every record read."""
    problems: list[str] = []
    fixed: dict[str, Any] | None = None
    for key, value in record.items():
        kinds = _EXACT.get(key)
        if kinds is None or value is None:
            continue
        if type(value) not in kinds:
            problems.append(f"'{key}' is {_kind(value)}, not {_kind(FIELDS[key][0]())}: left out")
            fixed = fixed if fixed is not None else dict(record)
            fixed[key] = None
        elif key in _TOP_ITEMS:
            if any(type(item) is not dict for item in value):
                problems.append(f"'{key}' holds items that are not mappings: left out")
                fixed = fixed if fixed is not None else dict(record)
                fixed[key] = [item for item in value if type(item) is dict]
        elif key in _EXACT_NESTED:
            inner, said = _readable_mapping(key, value)
            if said:
                problems.extend(said)
                fixed = fixed if fixed is not None else dict(record)
                fixed[key] = inner
    return (record if fixed is None else fixed), problems


def _readable_mapping(field: str, value: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    problems: list[str] = []
    inner: dict[str, Any] | None = None
    known = _EXACT_NESTED[field]
    for key, item in value.items():
        kinds = known.get(key)
        if kinds is None or item is None:
            continue
        if type(item) not in kinds:
            expected = _kind(NESTED[field][key][0]())
            problems.append(f"'{field}.{key}' is {_kind(item)}, not {expected}: left out")
            inner = inner if inner is not None else dict(value)
            inner.pop(key, None)
            continue
        item_kinds = ITEMS.get((field, key))
        if item_kinds is not None and any(type(x) not in item_kinds for x in item):
            problems.append(f"'{field}.{key}' holds items of the wrong type: left out")
            inner = inner if inner is not None else dict(value)
            inner[key] = [x for x in item if type(x) in item_kinds]
    return (value if inner is None else inner), problems
