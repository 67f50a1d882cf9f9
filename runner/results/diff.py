"""Compare two runs record by record: what changed in the answers, and which records came or went.

Records are paired by ``id``, one pair at a time, so two runs of a million records each are
compared in bounded memory (see ``compare_stores``). A pair differs when its status, HTTP
status, error kind, output text, parsed JSON, tool calls, validity, finish reason or
expectation results differ (an expectation that passed in A and fails in B is shown as
``PASS -> FAIL`` with the reason).
Token counts and latency are shown as information only: they never make two runs different.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from runner.errors import plural
from runner.results.table import record_model
from runner.runs.fileio import read_at
from runner.runs.store import RunStore, record_line_id, temporary_database

MAX_DIFF_LINES = 40
PASS, FAIL, NO_CHECKS = "PASS", "FAIL", "no checks"
_JUDGE_LINE = "  judge "  # a detail line of a judge check (see _expectation_change)


@dataclass(frozen=True)
class Change:
    """One field of a record that differs between the runs."""

    field: str
    before: Any
    after: Any
    detail: tuple[str, ...] = ()  # a unified diff of text, or the parsed keys that changed

    def describe(self) -> list[str]:
        """The change as a person reads it: the old answer (or check) -> the new one."""
        if self.field == "content":
            if _one_line(self.before) and _one_line(self.after):
                return [f"answer: {_quoted(self.before)} -> {_quoted(self.after)}"]
            return ["answer:", *(f"  {line}" for line in self.detail)]
        if self.field == "parsed":
            before, after = self.before, self.after
            if self.detail and isinstance(before, dict) and isinstance(after, dict):
                return [
                    f"{key}: {_json_short(before, key)} -> {_json_short(after, key)}"
                    for key in self.detail
                ]
            return [f"answer: {_json_short(before)} -> {_json_short(after)}"]
        if self.field == "tool_calls":
            return [f"tool calls: {_calls_text(self.before)} -> {_calls_text(self.after)}"]
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
    model: str | None = None  # the model of B's record, to name it when the id does not

    @property
    def differs(self) -> bool:
        return bool(self.changes)

    def lines(self, verbose: bool = False) -> Iterator[str]:
        """What changed, leading with the answer: a heading naming the record (and its model),
        then old -> new for each change. A JSON answer is shown by its keys, not again as
        text; token counts and latency only when ``verbose``."""
        heading = f"{'changed' if self.differs else 'same':<8}{self.id}"
        if self.model and f"model={self.model}" not in self.id:
            heading += f"  ({self.model})"
        yield heading
        keyed = any(c.field == "parsed" for c in self.changes)
        for change in self.changes:
            if change.field == "content" and keyed and not verbose:
                continue
            yield from (f"  {line}" for line in change.describe())
        if verbose:
            for change in self.info:
                yield from (f"  {line} (info)" for line in change.describe())

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "differs": self.differs,
            "changes": [c.to_json() for c in self.changes],
            "info": [c.to_json() for c in self.info],
        }


@dataclass
class DiffCounts:
    """The totals of a comparison, filled in as records stream past."""

    paired: int = 0
    changed: int = 0
    unchanged: int = 0
    added: int = 0
    missing: int = 0
    pass_to_fail: int = 0
    fail_to_pass: int = 0
    tokens_only: int = 0  # unchanged records whose token counts changed (shown by --verbose)
    verdicts_pass_to_fail: int = 0  # judge checks (one record may have several)
    verdicts_fail_to_pass: int = 0

    @property
    def identical(self) -> bool:
        return not (self.added or self.missing or self.changed)

    def count(self, item: DiffItem) -> None:
        if item.kind == "added":
            self.added += 1
        elif item.kind == "missing":
            self.missing += 1
        elif item.diff is not None:
            self.paired += 1
            self.changed += item.diff.differs
            self.unchanged += not item.diff.differs
            self.tokens_only += not item.diff.differs and item.shown
            for change in item.diff.changes:
                if change.field == "expectations":
                    self.pass_to_fail += (change.before, change.after) == (PASS, FAIL)
                    self.fail_to_pass += (change.before, change.after) == (FAIL, PASS)
                    self.count_verdicts(change)

    def count_verdicts(self, change: Change) -> None:
        """Count the judge checks of an expectations change that turned either way."""
        judged = [line for line in change.detail if line.startswith(_JUDGE_LINE)]
        self.verdicts_pass_to_fail += sum(f": {PASS} -> {FAIL}" in x for x in judged)
        self.verdicts_fail_to_pass += sum(f": {FAIL} -> {PASS}" in x for x in judged)

    def summary(self) -> list[str]:
        lines = [
            f"{self.paired} paired: {self.changed} changed, {self.unchanged} unchanged; "
            f"{self.added} added, {self.missing} missing"
            + ("; the runs give the same answers" if self.identical else "")
        ]
        if self.pass_to_fail or self.fail_to_pass:
            lines.append(
                f"expectations: {self.pass_to_fail} turned PASS -> FAIL, "
                f"{self.fail_to_pass} FAIL -> PASS"
            )
        if self.verdicts_pass_to_fail or self.verdicts_fail_to_pass:
            lines.append(
                f"judge verdicts: {self.verdicts_pass_to_fail} turned PASS -> FAIL, "
                f"{self.verdicts_fail_to_pass} FAIL -> PASS"
            )
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": {
                "paired": self.paired,
                "changed": self.changed,
                "unchanged": self.unchanged,
                "added": self.added,
                "missing": self.missing,
            },
            "expectations": {
                "pass_to_fail": self.pass_to_fail,
                "fail_to_pass": self.fail_to_pass,
            },
            "judge_verdicts": {
                "pass_to_fail": self.verdicts_pass_to_fail,
                "fail_to_pass": self.verdicts_fail_to_pass,
            },
            "identical": self.identical,
        }


class DiffItem(NamedTuple):
    """One id of the comparison: in both runs (with its differences), or in one only."""

    kind: str  # paired, added (only in B) or missing (only in A)
    id: str
    diff: RecordDiff | None = None

    @property
    def shown(self) -> bool:
        """Listed in the output: a record that differs, or whose token counts changed."""
        if self.diff is None:
            return True
        return self.diff.differs or any(c.field == "tokens" for c in self.diff.info)


@dataclass(frozen=True)
class RunDiff:
    """Everything that differs between run A and run B, held in memory (for Python callers
    comparing runs of moderate size; ``runner diff`` streams through ``StreamedDiff``)."""

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

    def items(self) -> Iterator[DiffItem]:
        yield from (DiffItem("paired", r.id, r) for r in self.records)
        yield from (DiffItem("added", i) for i in self.added)
        yield from (DiffItem("missing", i) for i in self.missing)

    def counts(self) -> DiffCounts:
        counts = DiffCounts(
            paired=self.paired,
            changed=len(self.changed),
            unchanged=self.unchanged,
            added=len(self.added),
            missing=len(self.missing),
        )
        counts.pass_to_fail, counts.fail_to_pass = self.turned(PASS, FAIL), self.turned(FAIL, PASS)
        for record in self.records:
            for change in record.changes:
                if change.field == "expectations":
                    counts.count_verdicts(change)
        return counts

    def describe(self, verbose: bool = False) -> str:
        """The comparison as a person reads it (``verbose``: with token and latency changes)."""
        return "\n".join(_text(self.run_a, self.run_b, self.items(), self.counts, verbose))

    def to_json(self) -> dict[str, Any]:
        return {
            "run_a": str(self.run_a),
            "run_b": str(self.run_b),
            **self.counts().to_json(),
            "added": list(self.added),
            "missing": list(self.missing),
            "records": [r.to_json() for r in self.records],
        }


class StreamedDiff:
    """``runner diff`` of runs of any size: records are paired and compared one at a time,
    and the output is produced line by line (ids only in one run wait in a temporary file)."""

    def __init__(self, run_a: Path, run_b: Path):
        self.run_a, self.run_b = run_a, run_b
        self._stores = RunStore.open(run_a), RunStore.open(run_b)
        self.counts = DiffCounts()

    def _items(self) -> Iterator[DiffItem]:
        for item in compare_stores(*self._stores):
            self.counts.count(item)
            if item.shown:
                yield item

    def text(self, verbose: bool = False) -> Iterator[str]:
        """The comparison as a person reads it; ``counts`` is complete once it is consumed.
        ``verbose`` adds token and latency changes, and records whose only change they are."""
        return _text(self.run_a, self.run_b, self._items(), lambda: self.counts, verbose)

    def json(self) -> Iterator[str]:
        """The same JSON as ``RunDiff.to_json``, in chunks."""
        yield "{\n"
        yield f'  "run_a": {json.dumps(str(self.run_a))},\n'
        yield f'  "run_b": {json.dumps(str(self.run_b))},\n'
        yield '  "records": ['
        with _Spool() as added, _Spool() as missing:
            first = True
            for item in self._items():
                if item.kind != "paired":
                    (added if item.kind == "added" else missing).write(item.id)
                    continue
                assert item.diff is not None
                yield ("\n    " if first else ",\n    ") + json.dumps(
                    item.diff.to_json(), ensure_ascii=False
                )
                first = False
            yield "\n  ],\n"
            for name, spool in (("added", added), ("missing", missing)):
                ids = ",\n    ".join(json.dumps(i, ensure_ascii=False) for i in spool.ids())
                yield f'  "{name}": [' + (f"\n    {ids}\n  " if ids else "") + "],\n"
        data = self.counts.to_json()
        yield f'  "counts": {json.dumps(data["counts"])},\n'
        yield f'  "expectations": {json.dumps(data["expectations"])},\n'
        yield f'  "judge_verdicts": {json.dumps(data["judge_verdicts"])},\n'
        yield f'  "identical": {json.dumps(data["identical"])}\n}}'


def _text(
    run_a: Path,
    run_b: Path,
    items: Iterable[DiffItem],
    counts: Callable[[], DiffCounts],
    verbose: bool = False,
) -> Iterator[str]:
    """The text of a comparison: changed records in A's order (with ``verbose``, records whose
    only change is their token counts too), then ids only in B, then ids only in A, then the
    counts (read once ``items`` is exhausted)."""
    yield f"comparing {run_a} (A) with {run_b} (B)"
    with _Spool() as added, _Spool() as missing:
        for item in items:
            if item.kind != "paired":
                (added if item.kind == "added" else missing).write(item.id)
                continue
            record = item.diff
            assert record is not None
            if record.differs or verbose:
                yield from record.lines(verbose)
        yield from (f"added   {record_id}  (only in B)" for record_id in added.ids())
        yield from (f"missing {record_id}  (only in A)" for record_id in missing.ids())
    total = counts()
    yield from total.summary()
    if total.tokens_only and not verbose:
        yield (
            f"{plural(total.tokens_only, 'unchanged record')} used other token counts "
            "(--verbose shows them, and every token and latency change)"
        )


class _Spool:
    """Ids kept in a temporary file until they are printed, one JSON string per line."""

    def __enter__(self) -> _Spool:
        self._file = tempfile.TemporaryFile("w+", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def write(self, record_id: str) -> None:
        self._file.write(json.dumps(record_id, ensure_ascii=False) + "\n")

    def ids(self) -> Iterator[str]:
        self._file.seek(0)
        for line in self._file:
            yield json.loads(line)


def diff_runs(run_a: Path, run_b: Path) -> RunDiff:
    """Compare the records of two run directories, paired by id, keeping what is shown."""
    shown: list[RecordDiff] = []
    added: list[str] = []
    missing: list[str] = []
    counts = DiffCounts()
    for item in compare_stores(RunStore.open(run_a), RunStore.open(run_b)):
        counts.count(item)
        if item.kind == "added":
            added.append(item.id)
        elif item.kind == "missing":
            missing.append(item.id)
        elif item.shown and item.diff is not None:
            shown.append(item.diff)
    return RunDiff(
        run_a, run_b, tuple(added), tuple(missing), tuple(shown), counts.paired, counts.unchanged
    )


def compare_stores(a: RunStore, b: RunStore) -> Iterator[DiffItem]:
    """Every id of A in A's order (paired with B's record, or missing from B), then the ids
    only in B in B's order. Two runs of the same plan are walked side by side; from the first
    id where they part, B's remaining lines are indexed on disk and looked up by id."""
    for record_id, line_a, line_b in paired_lines(a, b):
        if line_a is None:
            yield DiffItem("added", record_id)
        elif line_b is None:
            yield DiffItem("missing", record_id)
        elif line_a == line_b or _same_answer(line_a, line_b):
            yield DiffItem("paired", record_id, RecordDiff(record_id))
        else:
            record_a, record_b = a.line_record(line_a), b.line_record(line_b)
            yield DiffItem("paired", record_id, diff_records(record_a, record_b))


Line = tuple[int, bytes]

# The fields of a record that belong to one run, as record.py writes them (in this order,
# after everything diff_records compares but the keys added at the end): two lines equal
# without them hold the same answer, and need not be parsed.
_RUN_TIMINGS = re.compile(
    rb', "attempts": -?[0-9]+, "latency_ms": [-+.eE0-9]+'
    rb'(?:, "stream": (?:null|\{[^{}]*\}))?'
    rb', "started_at": (?:"[^"]*"|null), "finished_at": (?:"[^"]*"|null)'
)


def _same_answer(line_a: bytes, line_b: bytes) -> bool:
    """True when two record lines differ only in their attempts, latency, stream timings and
    times (a cheap byte comparison; anything else, or a line of another shape, is parsed and
    compared)."""
    start_a, start_b = line_a.rfind(b', "attempts": '), line_b.rfind(b', "attempts": ')
    if start_a < 0 or start_b < 0 or line_a[:start_a] != line_b[:start_b]:
        return False
    end_a, end_b = _RUN_TIMINGS.match(line_a, start_a), _RUN_TIMINGS.match(line_b, start_b)
    return (
        end_a is not None and end_b is not None and line_a[end_a.end() :] == line_b[end_b.end() :]
    )


def paired_lines(a: RunStore, b: RunStore) -> Iterator[tuple[str, bytes | None, bytes | None]]:
    """(id, A's line, B's line) in ``compare_stores``' order; None where a run lacks the id.
    Also the pairing of ``runner report``'s comparison."""
    lines_a, lines_b = _with_ids(a.record_lines()), _with_ids(b.record_lines())
    for id_a, line_a in lines_a:
        found = next(lines_b, None)
        if found is None:
            yield id_a, line_a[1], None
            yield from ((i, line, None) for i, (_, line) in lines_a)
            return
        if found[0] != id_a:
            rest_a = itertools.chain([(id_a, line_a)], lines_a)
            yield from _paired_by_index(b, rest_a, itertools.chain([found], lines_b))
            return
        yield id_a, line_a[1], found[1][1]
    yield from ((i, None, line) for i, (_, line) in lines_b)


def _with_ids(lines: Iterator[Line]) -> Iterator[tuple[str, Line]]:
    for offset, line in lines:
        record_id = record_line_id(line)
        if record_id is not None:
            yield record_id, (offset, line)


def _paired_by_index(
    b: RunStore, rest_a: Iterator[tuple[str, Line]], rest_b: Iterator[tuple[str, Line]]
) -> Iterator[tuple[str, bytes | None, bytes | None]]:
    """Pairs for runs whose ids are not in the same order, in bounded memory: B's lines are
    indexed by id in a temporary database and read back by position."""
    db = temporary_database()
    try:
        db.execute(
            "CREATE TABLE b (id TEXT PRIMARY KEY, at INTEGER, size INTEGER, seq INTEGER) "
            "WITHOUT ROWID"
        )
        db.execute("CREATE TABLE a (id TEXT PRIMARY KEY) WITHOUT ROWID")
        with db:
            db.executemany(
                "INSERT OR REPLACE INTO b VALUES (?, ?, ?, ?)",
                ((i, offset, len(line), seq) for seq, (i, (offset, line)) in enumerate(rest_b)),
            )
        with open(b.results_path, "rb") as source:
            seen: list[tuple[str]] = []
            for id_a, (_, line_a) in rest_a:
                row = db.execute("SELECT at, size FROM b WHERE id = ?", (id_a,)).fetchone()
                seen.append((id_a,))
                if len(seen) >= 4096:
                    db.executemany("INSERT OR IGNORE INTO a VALUES (?)", seen)
                    seen.clear()
                line_b = None if row is None else read_at(source, row[1], row[0])
                yield id_a, line_a, line_b
            db.executemany("INSERT OR IGNORE INTO a VALUES (?)", seen)
            only_b = db.execute(
                "SELECT id, at, size FROM b WHERE id NOT IN (SELECT id FROM a) ORDER BY seq"
            )
            for id_b, at, size in only_b:
                yield id_b, None, read_at(source, size, at)
    finally:
        db.close()


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
    return RecordDiff(a["id"], tuple(changes), tuple(info), record_model(b))


def _verdict(record: dict[str, Any]) -> str:
    results = record.get("expectations")
    if not isinstance(results, dict):
        return NO_CHECKS
    return PASS if results.get("passed") else FAIL


def _checks(record: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """A record's check results by (check, target); a second check of the same kind and target
    (two judge checks with one judge, say) is told apart by its number: ``target #2``."""
    results = record.get("expectations")
    checks = results.get("checks") if isinstance(results, dict) else None
    keyed: dict[tuple[str, str], dict[str, Any]] = {}
    for check in checks or []:
        if not isinstance(check, dict):
            continue
        kind, target = str(check.get("check")), str(check.get("target"))
        key, number = (kind, target), 1
        while key in keyed:
            number += 1
            key = (kind, f"{target} #{number}")
        keyed[key] = check
    return keyed


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
        lines = [*lines[:MAX_DIFF_LINES], f"... {plural(len(lines) - MAX_DIFF_LINES, 'more line')}"]
    return tuple(lines)


def _changed_keys(before: Any, after: Any) -> tuple[str, ...]:
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return ()
    keys = before.keys() | after.keys()
    return tuple(sorted(str(k) for k in keys if before.get(k) != after.get(k)))


def _one_line(value: Any) -> bool:
    return value is None or (isinstance(value, str) and "\n" not in value and len(value) <= 200)


def _quoted(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, ensure_ascii=False)


_ABSENT = object()


def _json_short(value: Any, key: str | None = None, limit: int = 80) -> str:
    """A value (or ``value[key]``) as compact JSON, cut at ``limit``; "(absent)" for a key
    the answer does not have."""
    if key is not None:
        value = value.get(key, _ABSENT)
        if value is _ABSENT:
            return "(absent)"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _calls_text(calls: Any) -> str:
    if not calls:
        return "(none)"
    return "; ".join(f"{name} {_json_short(arguments)}" for name, arguments in calls)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."
