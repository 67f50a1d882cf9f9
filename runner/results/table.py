"""A run as a table: one flat row per record, for spreadsheets, pandas and the report.

``record_row`` turns one saved record into a flat ``{column: value}`` dict. Columns come in
groups: the record's identity, one ``var.NAME`` per template variable, one ``matrix.KEY`` per
matrix value, the model and outcome, one ``json.FIELD`` per top-level field of the parsed JSON
answer, tool calls, tokens, timing and expectation results. Values are JSON scalars, except
``json.*`` fields and ``tool.arguments``, which keep nested JSON as lists and dicts (a CSV cell
holds them as JSON text).

Runs of different specs have different variables, so a CSV header is the union of the columns
of every row: ``export_table`` reads the run twice (columns first, then rows) and never holds
more than one record in memory.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from runner.errors import RunnerWarning, UsageError, plural
from runner.files import open_private
from runner.grade.output import output_errors
from runner.runs.store import RunStore

TableFormat = Literal["csv", "jsonl"]

# Fixed columns in the order a person reads them; the prefixed groups go where they belong.
_HEAD = ("id", "spec", "case")
_GROUPS_AFTER_HEAD = ("var.", "matrix.")
_OUTCOME = ("model", "status", "http_status", "finish_reason", "valid", "text")
_GROUPS_AFTER_OUTCOME = ("json.",)
_TAIL = (
    "tool.names",
    "tool.arguments",
    "errors",
    "error",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_ms",
    "ttft_ms",
    "cached",
    "offline",
    "expect.passed",
    "expect.total",
    "expect.failed",
    "expect.failures",
)
PREFIXES = (*_GROUPS_AFTER_HEAD, *_GROUPS_AFTER_OUTCOME)


def record_row(record: dict[str, Any]) -> dict[str, Any]:
    """One flat row for one record (see the module docstring for the columns)."""
    output = record.get("output") or {}
    case = record.get("case") or {}
    spec = record.get("spec") or {}
    row: dict[str, Any] = {
        "id": record.get("id"),
        "spec": spec.get("name"),
        "case": case.get("id"),
    }
    for name, value in (record.get("vars") or {}).items():
        row[f"var.{name}"] = value
    for key, value in (record.get("matrix") or {}).items():
        row[f"matrix.{key}"] = value
    row.update(
        model=record_model(record),
        status=record.get("status"),
        http_status=record.get("http_status"),
        finish_reason=output.get("finish_reason"),
        valid=output.get("valid"),
        text=output.get("content"),
    )
    parsed = output.get("parsed")
    if isinstance(parsed, dict):
        for name, value in parsed.items():
            row[f"json.{name}"] = value
    calls = output.get("tool_calls") or []
    usage, error, stream = (_mapping(record.get(k)) for k in ("usage", "error", "stream"))
    row.update(
        {
            "tool.names": "; ".join(str(c.get("name")) for c in calls) if calls else None,
            "tool.arguments": [c.get("arguments") for c in calls] if calls else None,
            "errors": "; ".join(output_errors(output)) or None,
            "error": error.get("message"),
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "total_tokens": usage.get("total_tokens"),
            "latency_ms": record.get("latency_ms"),
            "ttft_ms": stream.get("ttft_ms"),
            "cached": record.get("cached"),
            # Made-up answers of the offline provider: never to be read as a model's score.
            "offline": bool(record.get("offline")),
        }
    )
    row.update(expectation_columns(record.get("expectations")))
    return row


def record_model(record: dict[str, Any]) -> str | None:
    """The model a record asked for: the request's, else its matrix value, else the answer's."""
    request = record.get("request")
    if isinstance(request, dict) and request.get("model"):
        return str(request["model"])
    matrix = record.get("matrix") or {}
    if matrix.get("model"):
        return str(matrix["model"])
    response = record.get("response")
    if isinstance(response, dict) and response.get("model"):
        return str(response["model"])
    return None


def expectation_columns(expectations: Any) -> dict[str, Any]:
    """``expect.*`` cells: all passed, how many checks, how many failed, and why they failed.

    A record without checks has empty cells (not "passed"): nothing was asked of it.
    """
    if not isinstance(expectations, dict):
        return dict.fromkeys(("expect.passed", "expect.total", "expect.failed", "expect.failures"))
    failures = [
        str(check.get("message") or check.get("check"))
        for check in expectations.get("checks") or []
        if isinstance(check, dict) and not check.get("passed")
    ]
    return {
        "expect.passed": expectations.get("passed"),
        "expect.total": expectations.get("total"),
        "expect.failed": expectations.get("failed"),
        "expect.failures": "; ".join(failures) or None,
    }


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def order_columns(names: Iterable[str]) -> list[str]:
    """Column names in table order: fixed columns in place, each prefixed group in the order
    its names were first seen."""
    groups: dict[str, list[str]] = {prefix: [] for prefix in PREFIXES}
    fixed: set[str] = set()
    for name in names:
        prefix = next((p for p in PREFIXES if name.startswith(p)), None)
        if prefix is None:
            fixed.add(name)
        elif name not in groups[prefix]:
            groups[prefix].append(name)
    known = (*_HEAD, *_OUTCOME, *_TAIL)
    extra = sorted(fixed - set(known))  # columns a newer record_row may add
    return [
        *(n for n in _HEAD if n in fixed),
        *(n for p in _GROUPS_AFTER_HEAD for n in groups[p]),
        *(n for n in _OUTCOME if n in fixed),
        *(n for p in _GROUPS_AFTER_OUTCOME for n in groups[p]),
        *(n for n in _TAIL if n in fixed),
        *extra,
    ]


def run_columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The header of a table of ``rows``: every column any row has, in table order."""
    seen: dict[str, None] = {}
    for row in rows:
        for name in row:
            seen.setdefault(name, None)
    return order_columns(seen)


def run_rows(run_dir: Path) -> Iterator[dict[str, Any]]:
    """The rows of a run, one record at a time, in the store's order."""
    for record in RunStore.open(run_dir).records():
        yield record_row(record)


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV Injection",
# https://owasp.org/www-community/attacks/CSV_Injection: = + - @ tab CR; OWASP ASVS 1.2.10
# adds NUL; both checked 2026-12-08).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\x00")
# Text that is a plain number ("-3", "+1.5e3") is read as that number, never as a formula.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def cell(value: Any, raw_text: bool = False) -> Any:
    """A row value as a CSV cell: nested JSON as JSON text, None as an empty cell.

    Text that a spreadsheet would run as a formula (an answer or a case value starting with
    ``=``, ``+``, ``-``, ``@``, tab or CR) gets a leading ``'``, unless ``raw_text``: a model's
    answer or a data file's value must not be able to run anything where the file is opened.
    """
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and not raw_text:
        return neutralise_formula(value)
    return value


def neutralise_formula(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would read it as a formula."""
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


@dataclass(frozen=True)
class TableExport:
    """What ``export_table`` wrote."""

    path: Path
    format: TableFormat
    rows: int
    columns: int | None  # the CSV header's width; JSON Lines rows carry their own columns

    def describe(self) -> str:
        width = f" x {plural(self.columns, 'column')}" if self.columns is not None else ""
        return f"{plural(self.rows, 'row')}{width} written to {self.path} ({self.format})"


def export_table(
    run_dir: Path, out: Path, fmt: TableFormat, excel: bool = False, raw_text: bool = False
) -> TableExport:
    """Write one row per record of ``run_dir`` to ``out`` as CSV or JSON Lines.

    CSV is UTF-8 with a header row; quoting keeps commas, quotes and newlines inside cells.
    ``excel`` starts the CSV with the UTF-8 byte order mark, without which Excel reads the
    file in the system's legacy code page and garbles every non-ASCII character.
    A CSV text cell that a spreadsheet would run as a formula starts with ``'`` (see ``cell``),
    unless ``raw_text``. JSON Lines keeps each row's native JSON values (only the columns the
    row has).
    """
    if excel and fmt != "csv":
        raise UsageError("--excel is for CSV: give it with --format csv")
    if raw_text and fmt != "csv":
        raise UsageError("--raw-text is for CSV: give it with --format csv")
    columns: list[str] = []
    if fmt == "csv":
        with warnings.catch_warnings():  # the rows' warnings are said once, by the second pass
            warnings.simplefilter("ignore", RunnerWarning)
            columns = run_columns(run_rows(run_dir))
    rows = 0
    encoding = "utf-8-sig" if excel else "utf-8"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open_private(out, "w", encoding=encoding, newline="") as handle:
            if fmt == "csv":
                writer = csv.writer(handle)
                writer.writerow(columns)
                for row in run_rows(run_dir):
                    writer.writerow([cell(row.get(name), raw_text) for name in columns])
                    rows += 1
            else:
                for row in run_rows(run_dir):
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                    rows += 1
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}") from None
    return TableExport(out, fmt, rows, len(columns) if fmt == "csv" else None)
