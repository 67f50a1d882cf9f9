"""Compare two runs record by record: what changed in the answers, and which records came or went.

Records are paired by ``id``. A pair differs when its status, HTTP status, error kind, output
text, parsed JSON, tool calls, validity, finish reason or expectation results differ (an
expectation that passed in A and fails in B is shown as ``PASS -> FAIL`` with the reason).
Token counts and latency are shown as information only: they never make two runs different.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.store import RunStore

MAX_DIFF_LINES = 40
PASS, FAIL, NO_CHECKS = "PASS", "FAIL", "no checks"


@dataclass(frozen=True)
class Change:
    """One field of a record that differs between the runs."""

    field: str
    before: Any
    after: Any
    detail: tuple[str, ...] = ()  # a unified diff of text, or the parsed keys that changed

    def describe(self) -> list[str]:
        if self.field == "content":
            return ["content:", *(f"  {line}" for line in self.detail)]
        if self.field == "parsed" and self.detail:
            return [f"parsed: keys changed: {', '.join(self.detail)}"]
        if self.field == "expectations":
            return [f"expectations: {self.before} -> {self.after}", *self.detail]
        return [f"{self.field}: {_short(self.before)} -> {_short(self.after)}"]

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "before": self.before,
            "after": self.after,
            "detail": list(self.detail),
        }


@dataclass(frozen=True)
class RecordDiff:
    """The differences of one record present in both runs."""

    id: str
    changes: tuple[Change, ...] = ()
    info: tuple[Change, ...] = ()  # tokens and latency: shown, never counted

    @property
    def differs(self) -> bool:
        return bool(self.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "differs": self.differs,
            "changes": [c.to_json() for c in self.changes],
            "info": [c.to_json() for c in self.info],
        }


@dataclass(frozen=True)
class RunDiff:
    """Everything that differs between run A and run B."""

    run_a: Path
    run_b: Path
    added: tuple[str, ...] = ()  # ids only in B
    missing: tuple[str, ...] = ()  # ids only in A
    records: tuple[RecordDiff, ...] = ()  # paired records that differ, or whose tokens changed
    paired: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> tuple[RecordDiff, ...]:
        return tuple(r for r in self.records if r.differs)

    @property
    def identical(self) -> bool:
        return not (self.added or self.missing or self.changed)

    def turned(self, before: str, after: str) -> int:
        """How many records' expectations went from ``before`` to ``after`` (PASS, FAIL)."""
        return sum(
            1
            for record in self.records
            for c in record.changes
            if c.field == "expectations" and (c.before, c.after) == (before, after)
        )

    def describe(self) -> str:
        """The comparison as a person reads it."""
        lines = [f"comparing {self.run_a} (A) with {self.run_b} (B)"]
        for record in self.records:
            lines.append(f"{'changed' if record.differs else 'same':<8}{record.id}")
            for change in record.changes:
                lines.extend(f"  {line}" for line in change.describe())
            for change in record.info:
                lines.extend(f"  {line} (info)" for line in change.describe())
        lines.extend(f"added   {record_id}  (only in B)" for record_id in self.added)
        lines.extend(f"missing {record_id}  (only in A)" for record_id in self.missing)
        lines.append(
            f"{self.paired} paired: {len(self.changed)} changed, {self.unchanged} unchanged; "
            f"{len(self.added)} added, {len(self.missing)} missing"
            + ("; the runs give the same answers" if self.identical else "")
        )
        broke, fixed = self.turned(PASS, FAIL), self.turned(FAIL, PASS)
        if broke or fixed:
            lines.append(f"expectations: {broke} turned PASS -> FAIL, {fixed} FAIL -> PASS")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_a": str(self.run_a),
            "run_b": str(self.run_b),
            "identical": self.identical,
            "counts": {
                "paired": self.paired,
                "changed": len(self.changed),
                "unchanged": self.unchanged,
                "added": len(self.added),
                "missing": len(self.missing),
            },
            "expectations": {
                "pass_to_fail": self.turned(PASS, FAIL),
                "fail_to_pass": self.turned(FAIL, PASS),
            },
            "added": list(self.added),
            "missing": list(self.missing),
            "records": [r.to_json() for r in self.records],
        }


def diff_runs(run_a: Path, run_b: Path) -> RunDiff:
    """Compare the records of two run directories, paired by id."""
    a = {r["id"]: r for r in RunStore.open(run_a).records()}
    b = {r["id"]: r for r in RunStore.open(run_b).records()}
    paired = sorted(a.keys() & b.keys())
    records = [diff_records(a[i], b[i]) for i in paired]
    shown = tuple(r for r in records if r.differs or any(c.field == "tokens" for c in r.info))
    return RunDiff(
        run_a,
        run_b,
        added=tuple(sorted(b.keys() - a.keys())),
        missing=tuple(sorted(a.keys() - b.keys())),
        records=shown,
        paired=len(paired),
        unchanged=sum(not r.differs for r in records),
    )


def diff_records(a: dict[str, Any], b: dict[str, Any]) -> RecordDiff:
    """What differs between two records of the same id."""
    changes: list[Change] = []
    for name in ("status", "http_status"):
        if a.get(name) != b.get(name):
            changes.append(Change(name, a.get(name), b.get(name)))
    error_a, error_b = _error_kind(a), _error_kind(b)
    if error_a != error_b:
        changes.append(Change("error", error_a, error_b))
    out_a, out_b = a.get("output") or {}, b.get("output") or {}
    if out_a.get("content") != out_b.get("content"):
        changes.append(
            Change(
                "content",
                out_a.get("content"),
                out_b.get("content"),
                _text_diff(out_a.get("content"), out_b.get("content"), a["id"]),
            )
        )
    if out_a.get("parsed") != out_b.get("parsed"):
        changes.append(
            Change(
                "parsed",
                out_a.get("parsed"),
                out_b.get("parsed"),
                _changed_keys(out_a.get("parsed"), out_b.get("parsed")),
            )
        )
    if _calls(out_a) != _calls(out_b):
        changes.append(Change("tool_calls", _calls(out_a), _calls(out_b)))
    for name in ("valid", "finish_reason"):
        if out_a.get(name) != out_b.get(name):
            changes.append(Change(name, out_a.get(name), out_b.get(name)))
    expectations = _expectation_change(a, b)
    if expectations is not None:
        changes.append(expectations)
    info: list[Change] = []
    tokens_a, tokens_b = _tokens(a), _tokens(b)
    if tokens_a != tokens_b:
        info.append(Change("tokens", tokens_a, tokens_b))
    if changes or info:
        info.append(Change("latency_ms", a.get("latency_ms"), b.get("latency_ms")))
    return RecordDiff(a["id"], tuple(changes), tuple(info))


def _verdict(record: dict[str, Any]) -> str:
    results = record.get("expectations")
    if not isinstance(results, dict):
        return NO_CHECKS
    return PASS if results.get("passed") else FAIL


def _checks(record: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    results = record.get("expectations")
    checks = results.get("checks") if isinstance(results, dict) else None
    return {
        (str(c.get("check")), str(c.get("target"))): c for c in checks or [] if isinstance(c, dict)
    }


def _expectation_change(a: dict[str, Any], b: dict[str, Any]) -> Change | None:
    """PASS -> FAIL (or back, or a different set of failing checks), with each check that
    turned and why it fails now."""
    before, after = _checks(a), _checks(b)
    detail = []
    for key in list(before) + [k for k in after if k not in before]:
        was, now = before.get(key), after.get(key)
        was_word = "absent" if was is None else PASS if was.get("passed") else FAIL
        now_word = "absent" if now is None else PASS if now.get("passed") else FAIL
        if was_word != now_word:
            why = f" ({now.get('message')})" if now is not None and now_word == FAIL else ""
            detail.append(f"  {key[0]} {key[1]}: {was_word} -> {now_word}{why}")
    verdict_a, verdict_b = _verdict(a), _verdict(b)
    if verdict_a == verdict_b and not detail:
        return None
    return Change("expectations", verdict_a, verdict_b, tuple(detail))


def _error_kind(record: dict[str, Any]) -> str | None:
    error = record.get("error")
    return error.get("kind") if isinstance(error, dict) else None


def _calls(output: dict[str, Any]) -> list[tuple[Any, Any]]:
    return [(c.get("name"), c.get("arguments")) for c in output.get("tool_calls") or []]


def _tokens(record: dict[str, Any]) -> dict[str, Any] | None:
    usage = record.get("usage")
    if not isinstance(usage, dict):
        return None
    return {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}


def _text_diff(before: Any, after: Any, record_id: str) -> tuple[str, ...]:
    lines = list(
        difflib.unified_diff(
            str(before or "").splitlines(),
            str(after or "").splitlines(),
            fromfile=f"A/{record_id}",
            tofile=f"B/{record_id}",
            lineterm="",
            n=1,
        )
    )
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... {len(lines) - MAX_DIFF_LINES} more line(s)"]
    return tuple(lines)


def _changed_keys(before: Any, after: Any) -> tuple[str, ...]:
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return ()
    keys = before.keys() | after.keys()
    return tuple(sorted(str(k) for k in keys if before.get(k) != after.get(k)))


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."
