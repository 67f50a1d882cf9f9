"""Cases from an earlier run (``cases: {run: RUN_DIR}``), and the variables a record gives.

A spec can take its cases from the records of a finished run: each record becomes one case
whose id is the record's id (so chained results line up with their sources in ``diff`` and
``report``) and whose variables are the record's own variables plus what it answered::

    answer      the answer text (None when the model only called tools)
    json        the parsed JSON answer (structured output or JSON mode), else None
    tool_calls  the tools called, [{"name", "arguments"}]
    record_id   the record's id, spec (its spec's name) and model (the model that answered)

A judge (``expect: - judge: PATH``) is asked with the same variables, so both read them from
``record_variables``. The run folder is read here, in the spec wing, as a data file: only its
``manifest.json`` and its finished ``results.jsonl``, one line at a time. ``latest`` (and
``latest~N``, the run N before it) names the newest run of a folder of runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import plural
from runner.spec.project import display_path, written_path
from runner.spec.results_order import ORDER, ORDER_KEY, describes, ordered_lines

# The variables every record gives a chained case or a judge, besides its own.
RECORD_VARIABLES = ("answer", "json", "tool_calls", "record_id", "spec", "model")
STATUSES = ("ok", "invalid_output", "failed")
DEFAULT_STATUS = ("ok",)
MANIFEST = "manifest.json"
RESULTS = "results.jsonl"
_LATEST = re.compile(r"latest(?:~(\d+))?")


class RunFolderError(ValueError):
    """A ``cases: {run: ...}`` that names no finished run; the message says what to do."""


@dataclass(frozen=True)
class RunCases:
    """Where chained cases come from: a run folder (resolved), and which of its records.

    ``reference`` is the folder as the spec wrote it (``../runs/latest``), ``folder`` what it
    named when the spec was loaded.
    """

    reference: str
    folder: Path
    statuses: tuple[str, ...] = DEFAULT_STATUS
    specs: tuple[str, ...] = ()  # spec names; empty: every spec of the run

    def wants(self, record: Mapping[str, Any]) -> bool:
        if record.get("status") not in self.statuses:
            return False
        return not self.specs or _spec_name(record) in self.specs


def record_variables(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's own variables, then ``answer``, ``json``, ``tool_calls``, ``record_id``,
    ``spec`` and ``model`` (these win over variables of the same name)."""
    own = record.get("vars")
    output = record.get("output")
    output = output if isinstance(output, dict) else {}
    calls = [c for c in output.get("tool_calls") or [] if isinstance(c, dict)]
    return {
        **(own if isinstance(own, dict) else {}),
        "answer": output.get("content"),
        "json": _parsed(output),
        "tool_calls": [{"name": c.get("name"), "arguments": c.get("arguments")} for c in calls],
        "record_id": record.get("id"),
        "spec": _spec_name(record),
        "model": record_model(record),
    }


def record_model(record: Mapping[str, Any]) -> str | None:
    """The model that answered: the provider's name for it, else the one asked for."""
    response = record.get("response")
    if isinstance(response, dict) and isinstance(response.get("model"), str):
        return str(response["model"])
    request = record.get("request")
    if isinstance(request, dict) and isinstance(request.get("model"), str):
        return str(request["model"])
    matrix = record.get("matrix")
    if isinstance(matrix, dict) and isinstance(matrix.get("model"), str):
        return str(matrix["model"])
    return None


def _spec_name(record: Mapping[str, Any]) -> str | None:
    spec = record.get("spec")
    return spec.get("name") if isinstance(spec, dict) else None


def _parsed(output: Mapping[str, Any]) -> Any:
    if output.get("parsed") is not None:
        return output["parsed"]
    content = output.get("content")
    if isinstance(content, str) and content.lstrip().startswith(("{", "[")):
        try:
            return json.loads(content)
        except (ValueError, RecursionError):
            return None
    return None


# ---- the run folder


def resolve_run_folder(reference: str, base: Path) -> Path:
    """The run folder ``reference`` names, relative to ``base``; a last part ``latest`` or
    ``latest~N`` picks the newest run (or the Nth before it) in its parent folder.
    Raises RunFolderError, saying what exists instead."""
    path = base / written_path(reference)
    found = _LATEST.fullmatch(path.name)
    if found is not None and not (path / MANIFEST).is_file():
        path = _latest(path.parent, int(found[1] or 0), reference)
    if not path.is_dir():
        runs = runs_in(path.parent)
        newest = f"; the newest run there is {runs[-1].name}" if runs else ""
        raise RunFolderError(f"the run folder '{reference}' does not exist{newest}")
    if not (path / MANIFEST).is_file():
        raise RunFolderError(f"'{reference}' is not a run folder (it has no {MANIFEST})")
    return path


def runs_in(folder: Path) -> list[Path]:
    """The run folders in ``folder``, oldest first: by the start time in their manifest, then
    by name (the order ``runner/runs/lookup.py`` gives the commands; the spec wing cannot
    import it, so it reads the folder itself)."""
    try:
        entries = [
            p for p in folder.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file()
        ]
    except OSError:
        return []
    return sorted(entries, key=lambda p: (_started_at(p), p.name))


def _started_at(run: Path) -> str:
    """When the run started, from its manifest (two runs may start within one second)."""
    try:
        manifest = json.loads((run / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    value = manifest.get("started_at") if isinstance(manifest, dict) else None
    return value if isinstance(value, str) else ""


def _latest(folder: Path, back: int, reference: str) -> Path:
    runs = runs_in(folder)
    if not runs:
        raise RunFolderError(f"'{reference}': there is no run in {display_path(folder)}")
    if back >= len(runs):
        raise RunFolderError(
            f"'{reference}': {folder} holds {plural(len(runs), 'run')}, so latest~{back} names none"
        )
    return runs[-1 - back]


def check_finished(cases: RunCases) -> None:
    """Refuse a run whose results.jsonl is not final (still running, or killed)."""
    try:
        manifest = json.loads((cases.folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"cannot read the manifest of {cases.reference}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("results") != "final":
        raise RunFolderError(
            f"the run {cases.folder.name} has not finished (its results are still being "
            f"written, or it was stopped): finish it with runner run --resume {cases.folder}"
        )


def run_rows(cases: RunCases) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line of results.jsonl, case row) for every record the filters keep, read lazily and
    in plan order (through results.order when the run has one): the row's ``id`` is the
    record id, its other keys the record's variables."""
    for number, line in _plan_ordered_lines(cases):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue  # a torn line: check_finished has refused runs that may have one
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            continue
        if cases.wants(record):
            yield number, {**record_variables(record), "id": record["id"]}


def _plan_ordered_lines(cases: RunCases) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of a finished run's records in plan order."""
    try:
        manifest = json.loads((cases.folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if isinstance(manifest, dict) and manifest.get(ORDER_KEY) is not None:
        if not describes(cases.folder):
            raise RunFolderError(
                f"the run {cases.folder.name}'s {ORDER} does not match its {RESULTS} (one was "
                f"edited or cut short): put it in order again with runner run --resume "
                f"{cases.folder}"
            )
        for _, number, line in ordered_lines(cases.folder):
            yield number, line
        return
    try:
        handle = open(cases.folder / RESULTS, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    with handle:
        yield from enumerate(handle, start=1)
