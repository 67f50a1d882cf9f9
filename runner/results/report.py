"""A report people can read: one self-contained HTML file (or Markdown tables) for one run, or
for two runs compared (before and after a prompt change).

The report reads run directories the way ``runner diff`` does (through ``RunStore``), never
touching execution. Records stream through once per run:

- the overview (per spec, per matrix combination, per model) counts every record; latency and
  time-to-first-token percentiles come from a sample of at most ``SAMPLE_SIZE`` values per
  group (exact below that, a uniform random sample above);
- at most ``max_rows`` records become rows of the records table and the matrix side-by-side
  view, failed (and, comparing two runs, changed) records first; beyond that the report says
  how many were left out and points to ``runner export --format csv`` for the full table. The
  matrix view shows each case's variables and expected values beside the answers;
- two runs are paired by id by ``runner diff``'s own pairing (``paired_lines``: side by side,
  or through an index on disk when the orders part) and compared by ``diff_records``; every
  pair is counted, up to ``max_rows`` changed pairs are shown, and the records table shows
  both runs' records side by side (with those only one run has);
- latency percentiles and tokens per request are of answered requests, failures counted apart;
  records of the offline provider are counted and the page says so at its top.

So memory grows with ``max_rows``, not with the run.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from runner.errors import UsageError, agree
from runner.files import open_private
from runner.grade.judge import JudgeTally, judge_label, judge_results
from runner.results.diff import diff_records, paired_lines
from runner.results.table import record_model
from runner.runs.cost import usd
from runner.runs.store import RunStore
from runner.version import __version__

ReportFormat = Literal["html", "md"]

MAX_ROWS = 2_000
SAMPLE_SIZE = 10_000
TEXT_LIMIT = 4_000  # characters of an answer or message kept in a row
SHORT_LIMIT = 160  # characters of the answer shown before a row is opened
STATUSES = ("ok", "invalid_output", "failed")
# Request keys shown elsewhere (or too long to be a setting): the rest are the parameters.
NOT_PARAMETERS = frozenset({"model", "messages", "tools", "response_format"})


class Sample:
    """At most ``size`` values of a stream, uniformly chosen (all of them when fewer)."""

    def __init__(self, size: int = SAMPLE_SIZE, seed: int = 0):
        self.size = size
        self.seen = 0
        self.values: list[float] = []
        self._random = random.Random(seed)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.size:
            self.values.append(value)
            return
        slot = self._random.randrange(self.seen)
        if slot < self.size:
            self.values[slot] = value

    def percentile(self, q: float) -> float | None:
        """The nearest-rank percentile ``q`` (0-100), or None without values."""
        if not self.values:
            return None
        ordered = sorted(self.values)
        return ordered[max(math.ceil(q / 100 * len(ordered)) - 1, 0)]


@dataclass(frozen=True)
class StatsRow:
    """One line of an overview table."""

    label: str
    requests: int
    ok: int
    failed: int
    invalid: int
    checked: int  # records with expectations
    passed: int
    total_tokens: int
    answered: int  # requests with an answer (not failed): what the per-request figures count
    answered_tokens: int
    latency_p50: float | None
    latency_p95: float | None
    ttft_p50: float | None
    ttft_p95: float | None

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.checked if self.checked else None

    @property
    def tokens_per_request(self) -> float | None:
        """Tokens per answered request: a failed request spent none, and would pull it down."""
        return self.answered_tokens / self.answered if self.answered else None


class Stats:
    """Counts, token sums and latency samples of a group of records, filled one at a time."""

    def __init__(self) -> None:
        self.requests = self.ok = self.failed = self.invalid = 0
        self.checked = self.passed = self.total_tokens = 0
        self.answered = self.answered_tokens = 0
        self.latency = Sample()
        self.ttft = Sample()

    def add(self, record: dict[str, Any]) -> None:
        self.requests += 1
        status = record.get("status")
        self.ok += status == "ok"
        self.failed += status == "failed"
        self.invalid += status == "invalid_output"
        verdict = passed_of(record)
        if verdict is not None:
            self.checked += 1
            self.passed += verdict
        usage = record.get("usage")
        tokens = usage.get("total_tokens") if isinstance(usage, dict) else None
        if isinstance(tokens, int):
            self.total_tokens += tokens
        if status == "failed":
            return  # counted apart: latency and tokens per request are of answered requests
        self.answered += 1
        self.answered_tokens += tokens if isinstance(tokens, int) else 0
        if isinstance(record.get("latency_ms"), (int, float)):
            self.latency.add(float(record["latency_ms"]))
        stream = record.get("stream")
        if isinstance(stream, dict) and isinstance(stream.get("ttft_ms"), (int, float)):
            self.ttft.add(float(stream["ttft_ms"]))

    def row(self, label: str) -> StatsRow:
        return StatsRow(
            label,
            self.requests,
            self.ok,
            self.failed,
            self.invalid,
            self.checked,
            self.passed,
            self.total_tokens,
            self.answered,
            self.answered_tokens,
            self.latency.percentile(50),
            self.latency.percentile(95),
            self.ttft.percentile(50),
            self.ttft.percentile(95),
        )


def passed_of(record: dict[str, Any]) -> bool | None:
    """Whether a record met its expectations; None when it had none."""
    expectations = record.get("expectations")
    if not isinstance(expectations, dict):
        return None
    return bool(expectations.get("passed"))


def record_failed(record: dict[str, Any]) -> bool:
    """The request failed, its output was invalid, or an expectation failed."""
    return record.get("status") != "ok" or passed_of(record) is False


def _looks_failed(line: bytes) -> bool:
    """Whether a record line may be of a failed record (never False for one that is): its
    status is not "ok", or some check did not pass."""
    return b'"status": "ok"' not in line or b'"passed": false' in line


def combination_label(record: dict[str, Any]) -> str:
    """A record's matrix combination as ``key=value, ...`` (empty without a matrix)."""
    matrix = record.get("matrix") or {}
    return ", ".join(f"{key}={_scalar(value)}" for key, value in matrix.items())


@dataclass(frozen=True)
class Check:
    check: str
    target: str
    expected: str
    actual: str
    passed: bool
    message: str


@dataclass(frozen=True)
class Verdict:
    """A judge's verdict on one answer, shown beside it."""

    judge: str
    passed: bool
    score: float | None
    reason: str


@dataclass(frozen=True)
class JudgeRow:
    """The pass rate of one judge on one model's answers."""

    judge: str
    model: str
    verdicts: int
    passed: int
    no_verdict: int

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.verdicts if self.verdicts else None


@dataclass(frozen=True)
class ReportRow:
    """What the report shows of one record (long texts cut at ``TEXT_LIMIT``)."""

    id: str
    spec: str
    case: str
    combination: str
    model: str
    status: str
    passed: bool | None
    text: str
    short: str
    parsed: tuple[tuple[str, str], ...]
    tool_calls: tuple[tuple[str, str], ...]
    errors: tuple[str, ...]
    error: str
    finish_reason: str
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    latency_ms: float | None
    ttft_ms: float | None
    variables: tuple[tuple[str, str], ...]
    parameters: tuple[tuple[str, str], ...]  # the request's sampling settings
    messages: tuple[tuple[str, str], ...]
    checks: tuple[Check, ...]
    verdicts: tuple[Verdict, ...] = ()  # the judges' verdicts, with their reasons
    offline: bool = False  # made up by the offline provider
    seq: int = 0  # where the record is in its run: the matrix view keeps that order
    # Two runs compared: A's row of the same id (None: only in B), whether the row is a record
    # only A has (its fields are A's then), and whether the answer or verdict changed.
    before: ReportRow | None = None
    only_in_a: bool = False
    changed: bool = False

    @property
    def verdict(self) -> str:
        """pass, fail or none (no expectations): the pass/fail filter's value."""
        return "none" if self.passed is None else ("pass" if self.passed else "fail")

    @property
    def failed(self) -> bool:
        """The request failed, its output was invalid, or an expectation failed."""
        return self.status != "ok" or self.passed is False  # as record_failed says

    @property
    def failed_checks(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)


def report_row(record: dict[str, Any], seq: int = 0) -> ReportRow:
    """The row of one record, with everything a person needs to judge the answer."""
    output = record.get("output") or {}
    usage = _mapping(record.get("usage"))
    text = output.get("content") or ""
    parsed = output.get("parsed")
    request = _mapping(record.get("request"))
    expectations = _mapping(record.get("expectations"))
    return ReportRow(
        id=str(record.get("id")),
        spec=str(_mapping(record.get("spec")).get("name") or ""),
        case=str(_mapping(record.get("case")).get("id") or ""),
        combination=combination_label(record),
        model=record_model(record) or "",
        status=str(record.get("status") or ""),
        passed=passed_of(record),
        text=_cut(text, TEXT_LIMIT),
        short=_cut(" ".join(text.split()), SHORT_LIMIT),
        parsed=tuple((str(k), _cut(_scalar(v), TEXT_LIMIT)) for k, v in parsed.items())
        if isinstance(parsed, dict)
        else (),
        tool_calls=tuple(
            (str(c.get("name")), _cut(_scalar(c.get("arguments")), TEXT_LIMIT))
            for c in output.get("tool_calls") or []
        ),
        errors=tuple(str(e) for e in output.get("errors") or []),
        error=str(_mapping(record.get("error")).get("message") or ""),
        finish_reason=str(output.get("finish_reason") or ""),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        total_tokens=usage.get("total_tokens"),
        latency_ms=record.get("latency_ms"),
        ttft_ms=_mapping(record.get("stream")).get("ttft_ms"),
        variables=tuple(
            (str(k), _cut(_scalar(v), TEXT_LIMIT)) for k, v in (record.get("vars") or {}).items()
        ),
        parameters=tuple(
            (str(k), _cut(_scalar(v), SHORT_LIMIT))
            for k, v in request.items()
            if k not in NOT_PARAMETERS
        ),
        messages=tuple(
            (str(m.get("role")), _cut(_scalar(m.get("content")), TEXT_LIMIT))
            for m in request.get("messages") or []
            if isinstance(m, dict)
        ),
        checks=tuple(
            Check(
                str(c.get("check")),
                str(c.get("target") or ""),
                _cut(_scalar(c.get("expected")), SHORT_LIMIT),
                _cut(_scalar(c.get("actual")), SHORT_LIMIT),
                bool(c.get("passed")),
                str(c.get("message") or ""),
            )
            for c in expectations.get("checks") or []
            if isinstance(c, dict)
        ),
        verdicts=tuple(_verdicts(record)),
        offline=bool(record.get("offline")),
        seq=seq,
    )


def _verdicts(record: dict[str, Any]) -> Iterator[Verdict]:
    for result in judge_results(record):
        if not isinstance(result.get("actual"), dict):
            continue
        score = result.get("score")
        yield Verdict(
            judge_label(result),
            bool(result.get("passed")),
            score if isinstance(score, int | float) else None,
            _cut(str(result.get("message") or ""), TEXT_LIMIT),
        )


class _RowPicker:
    """The rows a report shows, within its cap: failed and changed records first (the ones a
    reviewer looks for), then the rest, each group in the run's order. Never holds more than
    the cap: a failed row that comes late takes the place of the last of the rest."""

    def __init__(self, cap: int):
        self.cap = cap
        self.first: list[ReportRow] = []
        self.rest: list[ReportRow] = []

    def wants(self, first: bool) -> bool:
        """Whether a row of this group would still be shown."""
        if first:
            return len(self.first) < self.cap
        return len(self.first) + len(self.rest) < self.cap

    def add(self, row: ReportRow, first: bool) -> None:
        if not self.wants(first):
            return
        if first:
            self.first.append(row)
            if len(self.first) + len(self.rest) > self.cap:
                self.rest.pop()
        else:
            self.rest.append(row)

    def rows(self) -> list[ReportRow]:
        return self.first + self.rest


@dataclass(frozen=True)
class MatrixCase:
    """One case of a matrix: what went in (its variables), what was expected (its checks),
    and each combination's answer."""

    case: str
    variables: tuple[tuple[str, str], ...]
    expected: tuple[Check, ...]
    cells: tuple[ReportRow | None, ...]


@dataclass(frozen=True)
class MatrixView:
    """One spec's matrix side by side: a row per case, a column per combination; the checks
    every case shares are listed once, above (``common``)."""

    spec: str
    combinations: tuple[str, ...]
    cases: tuple[MatrixCase, ...]
    common: tuple[Check, ...] = ()


@dataclass(frozen=True)
class RunSummary:
    """One run: where it is, its manifest's facts, and its overview tables."""

    path: Path
    run_id: str
    started_at: str
    status: str
    total: StatsRow
    by_spec: tuple[StatsRow, ...]
    by_combination: tuple[StatsRow, ...]
    by_model: tuple[StatsRow, ...]
    not_sent: int
    has_ttft: bool
    has_checks: bool
    offline: int = 0  # records answered by the offline provider
    judges: tuple[JudgeRow, ...] = ()  # pass rate per judge and model
    costs: tuple[CostRow, ...] = ()  # US dollars per model, as the run's manifest counted them
    unpriced: int = 0  # answers whose model the catalogue could not price

    @property
    def cost(self) -> float:
        return sum(row.usd for row in self.costs)


@dataclass(frozen=True)
class CostRow:
    """What one model's requests cost in a run (judges' requests under the judge's model)."""

    model: str
    usd: float


def _costs(counts: dict[str, Any]) -> tuple[tuple[CostRow, ...], int]:
    """The manifest's ``counts.cost`` (runner/runs/cost.py) as rows, by model; a run
    directory is input, so anything that is not a number is left out."""
    cost = _mapping(counts.get("cost"))
    by_model = _mapping(cost.get("by_model"))
    rows = tuple(
        CostRow(str(model), float(usd))
        for model, usd in sorted(by_model.items())
        if isinstance(usd, (int, float)) and not isinstance(usd, bool)
    )
    unpriced = cost.get("unpriced")
    return rows, unpriced if isinstance(unpriced, int) and not isinstance(unpriced, bool) else 0


@dataclass(frozen=True)
class Pair:
    """A record of both runs whose answer or verdict changed."""

    before: ReportRow
    after: ReportRow
    changes: tuple[str, ...]
    answer_changed: bool
    verdict_changed: bool


@dataclass(frozen=True)
class Comparison:
    """Run A against run B, paired by id."""

    paired: int
    changed: int
    answers_changed: int
    pass_to_fail: int
    fail_to_pass: int
    added: int
    missing: int
    pairs: tuple[Pair, ...]


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    width: float  # 0-100, share of the chart's width


@dataclass(frozen=True)
class Chart:
    title: str
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class Report:
    """Everything the HTML and Markdown templates show."""

    runs: tuple[RunSummary, ...]
    # At most max_rows, failed and changed first: of the last run, or of both runs by id
    # (B's rows, with A's beside them, and the rows of records only A has).
    rows: tuple[ReportRow, ...]
    records: int  # records of the last run (two runs: ids in either)
    max_rows: int
    matrices: tuple[MatrixView, ...]
    comparison: Comparison | None
    charts: tuple[Chart, ...]
    generated_at: str
    version: str = __version__
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def truncated(self) -> bool:
        return self.records > len(self.rows)

    @property
    def has_ttft(self) -> bool:
        return any(run.has_ttft for run in self.runs)

    @property
    def has_checks(self) -> bool:
        return any(run.has_checks for run in self.runs)

    @property
    def offline(self) -> int:
        """Records of the runs made up by the offline provider."""
        return sum(run.offline for run in self.runs)

    @property
    def total(self) -> int:
        return sum(run.total.requests for run in self.runs)


def build_report(run_dirs: tuple[Path, ...], max_rows: int = MAX_ROWS) -> Report:
    """Read one run (or two: before and after) and gather what the report shows."""
    if not 1 <= len(run_dirs) <= 2:
        raise UsageError("give one run directory, or two to compare (before and after)")
    stores = [RunStore.open(path) for path in run_dirs]
    two = len(stores) == 2
    summaries = [_summarise(store, 0)[0] for store in stores[:-1]]
    summary, rows, records = _summarise(stores[-1], 0 if two else max_rows)
    summaries.append(summary)
    comparison = None
    if two:
        comparison, rows, records = _compare(stores[0], stores[1], max_rows)
    return Report(
        runs=tuple(summaries),
        rows=tuple(rows),
        records=records,
        max_rows=max_rows,
        matrices=_matrices([row for row in rows if not row.only_in_a]),
        comparison=comparison,
        charts=_charts(summaries),
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        filters={
            "spec": tuple(sorted({r.spec for r in rows})),
            "model": tuple(sorted({r.model for r in rows})),
            "status": tuple(s for s in STATUSES if any(r.status == s for r in rows)),
        },
    )


def _summarise(store: RunStore, max_rows: int) -> tuple[RunSummary, list[ReportRow], int]:
    """One streaming pass over a run: the overview's stats and the first ``max_rows`` rows."""
    total, by_spec = Stats(), _Groups()
    by_combination, by_model = _Groups(), _Groups()
    picker = _RowPicker(max_rows)
    records = offline = 0
    judges = JudgeTally()
    for record in store.records():
        records += 1
        judges.add(record)
        offline += bool(record.get("offline"))
        spec = str(_mapping(record.get("spec")).get("name") or "")
        total.add(record)
        by_spec.get(spec).add(record)
        if record.get("matrix"):
            by_combination.get(f"{spec} · {combination_label(record)}").add(record)
        by_model.get(record_model(record) or "(none)").add(record)
        failed = record_failed(record)
        if picker.wants(failed):
            picker.add(report_row(record, records), failed)
    manifest = store.read_manifest()
    counts = _mapping(manifest.get("counts"))
    costs, unpriced = _costs(counts)
    summary = RunSummary(
        path=store.root,
        run_id=str(manifest.get("run_id") or store.root.name),
        started_at=str(manifest.get("started_at") or ""),
        status=str(manifest.get("status") or ""),
        total=total.row("all"),
        by_spec=by_spec.rows(),
        by_combination=by_combination.rows(),
        by_model=by_model.rows(),
        not_sent=int(counts.get("not_sent") or 0),
        has_ttft=total.ttft.seen > 0,
        has_checks=total.checked > 0,
        offline=offline,
        judges=tuple(
            JudgeRow(judge, model, rate.verdicts, rate.passed, rate.no_verdict)
            for (judge, model), rate in sorted(judges.rates.items())
        ),
        costs=costs,
        unpriced=unpriced,
    )
    return summary, picker.rows(), records


class _Groups(dict[str, Stats]):
    def get(self, key: str) -> Stats:  # type: ignore[override]
        if key not in self:
            self[key] = Stats()
        return self[key]

    def rows(self) -> tuple[StatsRow, ...]:
        return tuple(stats.row(label) for label, stats in self.items())


def _compare(
    store_a: RunStore, store_b: RunStore, max_rows: int
) -> tuple[Comparison, list[ReportRow], int]:
    """Pair the runs as ``runner diff`` does and count what changed; keep the first
    ``max_rows`` changed pairs, and the rows of the records table: both runs by id, changed
    and failed records first. Identical lines are decoded only while rows are wanted."""
    counts = dict.fromkeys(
        ("paired", "changed", "answers", "broke", "fixed", "added", "missing"), 0
    )
    pairs: list[Pair] = []
    picker = _RowPicker(max_rows)
    ids = 0
    for _, line_a, line_b in paired_lines(store_a, store_b):
        ids += 1
        if line_a is None or line_b is None:
            counts["added" if line_a is None else "missing"] += 1
            if picker.wants(True):
                store, line = (store_b, line_b) if line_a is None else (store_a, line_a)
                only = report_row(store.line_record(line or b"{}"), ids)
                picker.add(replace(only, only_in_a=line_b is None, changed=True), True)
            continue
        counts["paired"] += 1
        if line_a == line_b:
            # Decoded only when a row of its kind is still wanted (the bytes tell, roughly).
            if picker.wants(_looks_failed(line_b)):
                record = store_b.line_record(line_b)
                failed = record_failed(record)
                if picker.wants(failed):
                    same = report_row(record, ids)
                    picker.add(replace(same, before=same), failed)
            continue
        before, after = store_a.line_record(line_a), store_b.line_record(line_b)
        diff = diff_records(before, after)
        first = diff.differs or record_failed(after)
        if picker.wants(first):
            row, was = report_row(after, ids), report_row(before, ids)
            picker.add(replace(row, before=was, changed=diff.differs), first)
        if not diff.differs:
            continue
        answer_changed = any(c.field != "expectations" for c in diff.changes)
        verdicts = passed_of(before), passed_of(after)
        verdict_changed = None not in verdicts and verdicts[0] != verdicts[1]
        counts["changed"] += 1
        counts["answers"] += answer_changed
        counts["broke" if verdicts[0] else "fixed"] += verdict_changed
        if len(pairs) < max_rows:
            changes = tuple(line for change in diff.changes for line in change.describe())
            pairs.append(
                Pair(
                    report_row(before), report_row(after), changes, answer_changed, verdict_changed
                )
            )
    comparison = Comparison(
        paired=counts["paired"],
        changed=counts["changed"],
        answers_changed=counts["answers"],
        pass_to_fail=counts["broke"],
        fail_to_pass=counts["fixed"],
        added=counts["added"],
        missing=counts["missing"],
        pairs=tuple(pairs),
    )
    return comparison, picker.rows(), ids


def _matrices(rows: list[ReportRow]) -> tuple[MatrixView, ...]:
    """Side-by-side tables for every spec whose rows have matrix combinations, in the run's
    order: a row per case with its variables and expected values, a column per combination."""
    specs: dict[str, dict[str, dict[str, ReportRow]]] = {}
    combinations: dict[str, dict[str, None]] = {}
    for row in sorted(rows, key=lambda r: r.seq):
        if not row.combination:
            continue
        specs.setdefault(row.spec, {}).setdefault(row.case or row.id, {})[row.combination] = row
        combinations.setdefault(row.spec, {})[row.combination] = None
    views = []
    for spec, cases in specs.items():
        columns = tuple(combinations[spec])
        firsts = {case: next(iter(cells.values())) for case, cells in cases.items()}
        expected = [{_check_key(c): c.expected for c in row.checks} for row in firsts.values()]
        common = {
            key: value
            for key, value in expected[0].items()
            if len(expected) > 1 and all(other.get(key) == value for other in expected)
        }
        grid = []
        for case, cells in cases.items():
            first = firsts[case]
            grid.append(
                MatrixCase(
                    case,
                    tuple(
                        (k, _cut(v, SHORT_LIMIT))
                        for k, v in first.variables
                        if not (k == "id" and v == case)
                    ),
                    tuple(c for c in first.checks if _check_key(c) not in common),
                    tuple(cells.get(c) for c in columns),
                )
            )
        shared = next(iter(firsts.values())).checks
        views.append(
            MatrixView(
                spec, columns, tuple(grid), tuple(c for c in shared if _check_key(c) in common)
            )
        )
    return tuple(views)


def _check_key(check: Check) -> tuple[str, str]:
    return check.check, check.target


def _charts(runs: list[RunSummary]) -> tuple[Chart, ...]:
    """Per-model bars: latency p50 and p95, tokens per request, and pass rate when checked."""

    def label(run_index: int, model: str) -> str:
        return f"{'AB'[run_index]} · {model}" if len(runs) == 2 else model

    def apart(text: str, row: StatsRow) -> str:
        """A bar's figure, with the failed requests it leaves out."""
        return f"{text} ({row.failed:,} failed, not counted)" if row.failed else text

    models = [(label(i, m.label), m) for i, run in enumerate(runs) for m in run.by_model]
    charts = [
        _chart("Latency p50, answered requests", [(n, m, m.latency_p50) for n, m in models]),
        _chart("Latency p95, answered requests", [(n, m, m.latency_p95) for n, m in models]),
        _chart(
            "Tokens per answered request",
            [(n, m, m.tokens_per_request) for n, m in models],
            lambda value, row: apart(f"{value:,.0f}", row),
        ),
    ]
    if any(run.has_checks for run in runs):
        rates = [(n, m, None if m.pass_rate is None else 100 * m.pass_rate) for n, m in models]
        charts.append(
            _chart("Expectations passed (%)", rates, lambda v, row: f"{v:.0f}%", top=100.0)
        )
    return tuple(chart for chart in charts if chart.bars)


def _latency_text(value: float, row: StatsRow) -> str:
    """As the tables show it (0.3 ms, not "0 ms"), with the failed requests left out."""
    text = _milliseconds(value)
    return f"{text} ({row.failed:,} failed, not counted)" if row.failed else text


def _chart(
    title: str,
    values: list[tuple[str, StatsRow, float | None]],
    fmt: Callable[[float, StatsRow], str] = _latency_text,
    top: float | None = None,
) -> Chart:
    present = [(name, row, value) for name, row, value in values if value is not None]
    scale = top or max((value for _, _, value in present), default=0.0) or 1.0
    return Chart(
        title,
        tuple(
            Bar(name, value, fmt(value, row), 100 * value / scale) for name, row, value in present
        ),
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _scalar(value: Any) -> str:
    """A value as a person reads it: text as is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def render_report(report: Report, fmt: ReportFormat) -> Iterator[str]:
    """The report as HTML or Markdown, in pieces (a big report is written as it renders)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("runner.results", "templates"),
        autoescape=select_autoescape(["html", "html.j2"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _number
    env.filters["count"] = _count
    env.filters["usd"] = usd
    env.filters["pct"] = _percent
    env.filters["ms"] = _milliseconds
    env.filters["md"] = _markdown_cell
    env.filters["sortkey"] = _sort_key
    name = "report.html.j2" if fmt == "html" else "report.md.j2"
    return env.get_template(name).generate(report=report, nonce=_nonce())


def write_report(
    run_dirs: tuple[Path, ...], out: Path | None, fmt: ReportFormat, max_rows: int = MAX_ROWS
) -> ReportWritten:
    """Build the report of ``run_dirs`` and write it to ``out`` (None: return the text)."""
    report = build_report(run_dirs, max_rows if fmt == "html" else 0)  # Markdown has no rows
    pieces = render_report(report, fmt)
    if out is None:
        return ReportWritten(None, report, "".join(pieces))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open_private(out, "w", encoding="utf-8") as handle:
            for piece in pieces:
                handle.write(piece)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}") from None
    return ReportWritten(out, report, None)


@dataclass(frozen=True)
class ReportWritten:
    """Where a report went (or its text, when it was not written to a file)."""

    path: Path | None
    report: Report
    text: str | None

    def describe(self) -> str:
        report = self.report
        records = agree(report.records, "record", "records")
        shown = f"{len(report.rows):,} of {report.records:,} {records} as rows"
        if report.truncated:
            shown += " (the rest are in the overview; runner export --format csv has them all)"
        return f"report written to {self.path}: {shown}"


def _nonce() -> str:
    import secrets

    return secrets.token_urlsafe(16)


def _count(value: int | None, noun: str, nouns: str | None = None) -> str:
    """``1 record``, ``1,200 records``: a number as the tables show it, with its noun."""
    return f"{_number(value)} {noun if value == 1 else nouns or noun + 's'}"


def _number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _milliseconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.1f} ms" if value < 10 else f"{value:,.0f} ms"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _markdown_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: no pipes, newlines or HTML."""
    text = " ".join(str(value).split())
    for char, escaped in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;")):
        text = text.replace(char, escaped)
    return text


def _sort_key(value: float | int | None) -> str:
    return "" if value is None else repr(value)
