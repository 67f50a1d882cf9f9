"""A run's answers as a person reads them in a terminal (``runner show``, and ``runner run``
after a small run): each record's text, its structured output as indented JSON, its tool calls
with their arguments, its error, and each failed check with what was expected and what came.

Records stream from the run one at a time, from the first, so a run of any size starts
printing at once and a run still going shows what it has.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import plural
from runner.grade.judge import judge_label
from runner.runs.store import RunStore

TEXT_LIMIT = 2_000  # characters of an answer shown; the rest are counted
INLINE_ARGUMENTS = 100  # tool arguments shorter than this stay on the call's line
INDENT = "  "


@dataclass(frozen=True)
class RecordFilter:
    """Which records to show: by id (an id, its prefix up to a ``/``, or a case id), only those
    that failed (the request, the output check or an expectation), and how many at most."""

    ids: tuple[str, ...] = ()
    failed: bool = False
    limit: int | None = None

    def matches(self, record: dict[str, Any]) -> bool:
        if self.failed and not record_failed(record):
            return False
        if not self.ids:
            return True
        record_id = str(record.get("id"))
        case = record.get("case")
        case_id = case.get("id") if isinstance(case, dict) else None
        return any(
            record_id == wanted
            or record_id.startswith(wanted.rstrip("/") + "/")
            or case_id == wanted
            for wanted in self.ids
        )


def record_failed(record: dict[str, Any]) -> bool:
    """True when the request failed, its output was invalid, or an expectation failed."""
    if record.get("status") != "ok":
        return True
    expectations = record.get("expectations")
    return isinstance(expectations, dict) and not expectations.get("passed")


@dataclass
class ShownRun:
    """The records of one run that a filter selects, as lines of text; ``shown`` and
    ``total`` are complete once ``lines()`` is consumed."""

    run_dir: Path
    selection: RecordFilter = field(default_factory=RecordFilter)
    shown: int = 0
    total: int = 0  # records read: all of the run's, unless --limit stopped the reading
    stopped: bool = False

    def lines(self) -> Iterator[str]:
        store = RunStore.open(self.run_dir)
        for record in store.records():
            if self.selection.limit is not None and self.shown >= self.selection.limit:
                self.stopped = True
                return
            self.total += 1
            if not self.selection.matches(record):
                continue
            if self.shown:
                yield ""
            self.shown += 1
            yield from map(printable, record_lines(record))

    def describe(self) -> str:
        """A closing line: how many records were shown, and of how many."""
        what = "failed record" if self.selection.failed else "record"
        if self.stopped:
            return f"the first {plural(self.shown, what)} shown from {self.run_dir} (--limit)"
        return f"{self.shown} of {plural(self.total, what)} shown from {self.run_dir}"


# Control characters an answer (or anything else in a run) may hold: printed as they are, they
# would move the cursor, retitle the window or clear the screen of whoever runs runner show.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(line: str) -> str:
    """A line safe to print on a terminal: control characters shown as escapes (\\x1b)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", line)


def record_lines(record: dict[str, Any]) -> Iterator[str]:
    """One record, compactly: a heading, the answer, then what went wrong."""
    yield _heading(record)
    output = record.get("output") if isinstance(record.get("output"), dict) else None
    if output is not None:
        yield from _indented(_answer_lines(output))
        yield from _indented(f"invalid output: {e}" for e in _list(output.get("errors")))
    error = record.get("error")
    if isinstance(error, dict) and (record.get("status") == "failed" or output is None):
        kind = f" ({error['kind']})" if error.get("kind") else ""
        yield f"{INDENT}error{kind}: {error.get('message') or 'no answer'}"
    yield from _indented(_check_lines(record.get("expectations")))


def _heading(record: dict[str, Any]) -> str:
    parts = [str(record.get("status") or "unknown")]
    expectations = record.get("expectations")
    if isinstance(expectations, dict):
        total, failed = expectations.get("total") or 0, expectations.get("failed") or 0
        if failed:
            parts.append(f"{failed} of {plural(total, 'check')} failed")
        elif expectations.get("passed") is False:
            parts.append("checks failed")
        else:
            parts.append(f"{plural(total, 'check')} passed")
    if record.get("offline"):
        parts.append("offline")
    elif record.get("cached"):
        parts.append("cached")
    return f"{record.get('id')}  [{', '.join(parts)}]"


def _answer_lines(output: dict[str, Any]) -> Iterator[str]:
    parsed = output.get("parsed")
    content = output.get("content")
    if parsed is not None:
        yield from json.dumps(parsed, indent=2, ensure_ascii=False).splitlines()
    elif isinstance(content, str) and content:
        yield from _cut(content).rstrip("\n").split("\n")
    for call in _list(output.get("tool_calls")):
        if isinstance(call, dict):
            yield from _call_lines(call)
    if parsed is None and not content and not output.get("tool_calls"):
        yield "(no text)"
    if output.get("truncated") or output.get("finish_reason") == "length":
        yield "(cut short: the answer reached the token limit)"


def _call_lines(call: dict[str, Any]) -> Iterator[str]:
    arguments = call.get("arguments")
    compact = json.dumps(arguments, ensure_ascii=False)
    name = call.get("name")
    if len(compact) <= INLINE_ARGUMENTS:
        yield f"calls {name} {compact}"
        return
    yield f"calls {name}"
    yield from _indented(json.dumps(arguments, indent=2, ensure_ascii=False).splitlines())


def _check_lines(expectations: Any) -> Iterator[str]:
    if not isinstance(expectations, dict):
        return
    for check in _list(expectations.get("checks")):
        if not isinstance(check, dict) or check.get("passed"):
            continue
        target = f" {check['target']}" if check.get("target") else ""
        if check.get("check") == "judge":  # a verdict reads best as the judge's reason
            score = f", score {check['score']}" if check.get("score") is not None else ""
            yield f"FAIL judge {judge_label(check)}{score}: {check.get('message')}"
            continue
        expected = check.get("expected")
        wanted = f"/{expected}/" if check.get("check") == "regex" else _value(expected)
        yield (
            f"FAIL {check.get('check')}{target}: expected {wanted}, "
            f"got {_value(check.get('actual'))}"
        )


def _value(value: Any) -> str:
    """A check's value as it was written: text in quotes without JSON escapes (a regex
    ``\\S`` reads as ``"\\S"``, not doubled), anything else as compact JSON."""
    if isinstance(value, str):
        return '"' + _cut(value, 200).replace("\n", "\\n") + '"'
    return _cut(json.dumps(value, ensure_ascii=False), 200)


def _cut(text: str, limit: int = TEXT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def _list(value: Any) -> list[Any]:
    """A field that should be a list, as one (a run folder may hold anything)."""
    return value if isinstance(value, list) else []


def _indented(lines: Iterable[str]) -> Iterator[str]:
    return (f"{INDENT}{line}" if line else "" for line in lines)
