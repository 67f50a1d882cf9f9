"""A report people can read: one self-contained HTML file (or Markdown tables) for one run, or
for two runs compared (before and after a prompt change).

The report reads run directories the way ``runner diff`` does (through ``RunStore``), never
touching execution. Records stream through once per run:

- the overview (per spec, per matrix combination, per model) counts every record; latency and
  time-to-first-token percentiles come from a sample of at most ``SAMPLE_SIZE`` values per
  group (exact below that, a uniform random sample above);
- the first ``max_rows`` records of the (last) run become rows of the records table and the
  matrix side-by-side view; beyond that the report says how many were left out and points to
  ``runner export --format csv`` for the full table;
- two runs are paired by id by ``runner diff``'s own pairing (``paired_lines``: side by side,
  or through an index on disk when the orders part) and compared by ``diff_records``; every
  pair is counted and up to ``max_rows`` changed pairs are shown.

So memory grows with ``max_rows``, not with the run.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from runner.errors import UsageError
from runner.results.diff import diff_records, paired_lines
from runner.results.table import record_model
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
    latency_p50: float | None
    latency_p95: float | None
    ttft_p50: float | None
    ttft_p95: float | None

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.checked if self.checked else None

    @property
    def tokens_per_request(self) -> float | None:
        return self.total_tokens / self.requests if self.requests else None


class Stats:
    """Counts, token sums and latency samples of a group of records, filled one at a time."""

    def __init__(self) -> None:
        self.requests = self.ok = self.failed = self.invalid = 0
        self.checked = self.passed = self.total_tokens = 0
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
        if isinstance(usage, dict) and isinstance(usage.get("total_tokens"), int):
            self.total_tokens += usage["total_tokens"]
        if status != "failed" and isinstance(record.get("latency_ms"), (int, float)):
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

    @property
    def verdict(self) -> str:
        """pass, fail or none (no expectations): the pass/fail filter's value."""
        return "none" if self.passed is None else ("pass" if self.passed else "fail")


def report_row(record: dict[str, Any]) -> ReportRow:
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
    )


@dataclass(frozen=True)
class MatrixView:
    """One spec's matrix side by side: a row per case, a column per combination."""

    spec: str
    combinations: tuple[str, ...]
    cases: tuple[tuple[str, tuple[ReportRow | None, ...]], ...]


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
    rows: tuple[ReportRow, ...]  # of the last run, at most max_rows
    records: int  # records of the last run
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


def build_report(run_dirs: tuple[Path, ...], max_rows: int = MAX_ROWS) -> Report:
    """Read one run (or two: before and after) and gather what the report shows."""
    if not 1 <= len(run_dirs) <= 2:
        raise UsageError("give one run directory, or two to compare (before and after)")
    stores = [RunStore.open(path) for path in run_dirs]
    summaries = [_summarise(store, 0)[0] for store in stores[:-1]]
    summary, rows, records = _summarise(stores[-1], max_rows)
    summaries.append(summary)
    comparison = _compare(stores[0], stores[1], max_rows) if len(stores) == 2 else None
    return Report(
        runs=tuple(summaries),
        rows=tuple(rows),
        records=records,
        max_rows=max_rows,
        matrices=_matrices(rows),
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
    rows: list[ReportRow] = []
    records = 0
    for record in store.records():
        records += 1
        spec = str(_mapping(record.get("spec")).get("name") or "")
        total.add(record)
        by_spec.get(spec).add(record)
        if record.get("matrix"):
            by_combination.get(f"{spec} · {combination_label(record)}").add(record)
        by_model.get(record_model(record) or "(none)").add(record)
        if len(rows) < max_rows:
            rows.append(report_row(record))
    manifest = store.read_manifest()
    counts = _mapping(manifest.get("counts"))
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
    )
    return summary, rows, records


class _Groups(dict[str, Stats]):
    def get(self, key: str) -> Stats:  # type: ignore[override]
        if key not in self:
            self[key] = Stats()
        return self[key]

    def rows(self) -> tuple[StatsRow, ...]:
        return tuple(stats.row(label) for label, stats in self.items())


def _compare(store_a: RunStore, store_b: RunStore, max_rows: int) -> Comparison:
    """Pair the runs as ``runner diff`` does and count what changed; keep the first
    ``max_rows`` changed pairs as rows. Identical lines are not even decoded."""
    counts = dict.fromkeys(
        ("paired", "changed", "answers", "broke", "fixed", "added", "missing"), 0
    )
    pairs: list[Pair] = []
    for _, line_a, line_b in paired_lines(store_a, store_b):
        if line_a is None or line_b is None:
            counts["added" if line_a is None else "missing"] += 1
            continue
        counts["paired"] += 1
        if line_a == line_b:
            continue
        before, after = json.loads(line_a), json.loads(line_b)
        diff = diff_records(before, after)
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
    return Comparison(
        paired=counts["paired"],
        changed=counts["changed"],
        answers_changed=counts["answers"],
        pass_to_fail=counts["broke"],
        fail_to_pass=counts["fixed"],
        added=counts["added"],
        missing=counts["missing"],
        pairs=tuple(pairs),
    )


def _matrices(rows: list[ReportRow]) -> tuple[MatrixView, ...]:
    """Side-by-side tables for every spec whose rows have matrix combinations."""
    specs: dict[str, dict[str, dict[str, ReportRow]]] = {}
    combinations: dict[str, dict[str, None]] = {}
    for row in rows:
        if not row.combination:
            continue
        specs.setdefault(row.spec, {}).setdefault(row.case or row.id, {})[row.combination] = row
        combinations.setdefault(row.spec, {})[row.combination] = None
    views = []
    for spec, cases in specs.items():
        columns = tuple(combinations[spec])
        grid = tuple((case, tuple(cells.get(c) for c in columns)) for case, cells in cases.items())
        views.append(MatrixView(spec, columns, grid))
    return tuple(views)


def _charts(runs: list[RunSummary]) -> tuple[Chart, ...]:
    """Per-model bars: latency p50 and p95, tokens per request, and pass rate when checked."""

    def label(run_index: int, model: str) -> str:
        return f"{'AB'[run_index]} · {model}" if len(runs) == 2 else model

    models = [(label(i, m.label), m) for i, run in enumerate(runs) for m in run.by_model]
    charts = [
        _chart("Latency p50 (ms)", [(n, m.latency_p50) for n, m in models], "{:,.0f} ms"),
        _chart("Latency p95 (ms)", [(n, m.latency_p95) for n, m in models], "{:,.0f} ms"),
        _chart("Tokens per request", [(n, m.tokens_per_request) for n, m in models], "{:,.0f}"),
    ]
    if any(run.has_checks for run in runs):
        rates = [(n, None if m.pass_rate is None else 100 * m.pass_rate) for n, m in models]
        charts.append(_chart("Expectations passed (%)", rates, "{:.0f}%", top=100.0))
    return tuple(chart for chart in charts if chart.bars)


def _chart(
    title: str, values: list[tuple[str, float | None]], fmt: str, top: float | None = None
) -> Chart:
    present = [(name, value) for name, value in values if value is not None]
    scale = top or max((value for _, value in present), default=0.0) or 1.0
    return Chart(
        title,
        tuple(Bar(name, value, fmt.format(value), 100 * value / scale) for name, value in present),
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
        with open(out, "w", encoding="utf-8") as handle:
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
        shown = f"{len(report.rows):,} of {report.records:,} record(s) as rows"
        if report.truncated:
            shown += " (the rest are in the overview; runner export --format csv has them all)"
        return f"report written to {self.path}: {shown}"


def _nonce() -> str:
    import secrets

    return secrets.token_urlsafe(16)


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
