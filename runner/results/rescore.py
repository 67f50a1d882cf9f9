"""Score a finished run again against the current expectations, sending nothing.

After an expected value is fixed (in the spec or in its data file), ``runner score RUN_DIR``
reloads the run's specs from their files (paths in the manifest, or other files given), works
out each record's variables as the current spec and data file give them, scores the saved
answers with the same function a run uses, and writes the new results into the run's records
and manifest counts. No provider is contacted and no key is needed.

A spec may have changed in more than its expectations since the run: each saved request is
compared with the one the current spec would send for that record. Records whose request
differs are still scored (old answers judged by new checks) and counted, and the summary warns
that their answers were made by a different prompt, so the run should be made again. A record
whose case the current spec no longer has is scored with the variables saved in it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runner.errors import RenderError, UsageError, agree, plural
from runner.grade import expect
from runner.grade.judge import JudgeTally
from runner.grade.score import score_record
from runner.providers.endpoints import resolve_endpoint
from runner.runs.execute import RunSettings
from runner.runs.regrade import Regrader
from runner.runs.store import RunStore, utc_now
from runner.send.stream_send import streaming_body
from runner.spec.cases import NO_CASE, Case, expand, record_id
from runner.spec.objects import Spec
from runner.spec.render import render_request

MAX_LISTED = 10
_UNKNOWN = object()  # a record of a spec that is not loaded: kept as it is


@dataclass(frozen=True)
class _Planned:
    """What the current spec gives one record: its variables and a digest of its request."""

    vars: Mapping[str, Any]
    request: str | None
    case: Case = NO_CASE


@dataclass
class ScoreResult:
    """What re-scoring a run found: the new counts, and what no longer matches the specs."""

    run_dir: Path
    expectations: dict[str, int] = field(default_factory=expect.empty_counts)
    records: int = 0
    turned_failed: int = 0  # passed before, fail now
    turned_passed: int = 0
    prompt_changed: list[str] = field(default_factory=list)  # ids answered to another request
    not_in_spec: list[str] = field(default_factory=list)  # ids the current spec has no case for
    unknown_spec: list[str] = field(default_factory=list)  # ids of specs that are not loaded
    judges: JudgeTally = field(default_factory=JudgeTally)  # verdicts of the specs' judges

    @property
    def expectations_failed(self) -> bool:
        return self.expectations["failed"] > 0

    def describe(self) -> str:
        sent = self.judges.sent
        lines = [
            f"scored {plural(self.records, 'record')} of {self.run_dir} again "
            + (f"({plural(sent, 'judge request')} sent)" if sent else "(nothing sent)"),
            *(expect.describe_counts(self.expectations) or ["expectations: no record has any"]),
            *self.judges.describe(),
            f"changed: {self.turned_failed} now fail, {self.turned_passed} now pass",
        ]
        if self.prompt_changed:
            lines.append(
                f"warning: {plural(len(self.prompt_changed), 'record')} "
                f"{agree(len(self.prompt_changed), 'was', 'were')} answered to a different "
                "request than the current spec sends (its prompt, parameters or data changed "
                "since the run); their answers were judged by the new checks, but they answer "
                "the old prompt: run the specs again to score the new one"
            )
            lines.extend(f"  {i}" for i in self.prompt_changed[:MAX_LISTED])
        if self.not_in_spec:
            lines.append(
                f"note: {plural(len(self.not_in_spec), 'record')} "
                f"{agree(len(self.not_in_spec), 'has', 'have')} no case in the current spec; "
                "they were scored with the variables saved in them"
            )
        if self.unknown_spec:
            lines.append(
                f"note: {plural(len(self.unknown_spec), 'record')} of specs not in the manifest "
                f"{agree(len(self.unknown_spec), 'was', 'were')} "
                "kept as they were"
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "records": self.records,
            "expectations": self.expectations,
            "turned_failed": self.turned_failed,
            "turned_passed": self.turned_passed,
            "prompt_changed": self.prompt_changed,
            "not_in_spec": self.not_in_spec,
            "unknown_spec": self.unknown_spec,
            "judges": self.judges.to_json(),
        }


def score_run(
    run_dir: Path, load: Callable[[Path], Spec], spec_files: tuple[Path, ...] = ()
) -> ScoreResult:
    """Score the saved answers of ``run_dir`` against the current specs; rewrite its records'
    ``expectations`` and the manifest's counts. ``spec_files`` replace the run's spec of the
    same name (a spec moved, or a variant to score with)."""
    store = RunStore.open(run_dir)
    store.lock("runner score")  # one writer per run (runner/runs/lock.py)
    try:
        manifest = store.read_manifest()
        settings = RunSettings.from_json(manifest.get("settings") or {}, run_dir)
        specs = _load_specs(manifest, load, spec_files)
        planned = _PlanLookup(_plan(specs, settings))
        result = ScoreResult(run_dir)

        def rescored(records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
            """Each record scored: planned and checked here, in order (the plan is read in step
            with the run); its judges asked by the regrader's pool; counted here again, in order."""
            work = (_scored(record) for record in records)
            for before, scored in judges.in_order(work, _judged):
                if before is not _UNKNOWN:
                    after = _verdict(scored)
                    result.turned_failed += before is True and after is False
                    result.turned_passed += before is False and after is True
                    result.records += 1
                    result.judges.add(scored)
                expect.add_count(result.expectations, scored)
                yield scored

        def _scored(record: dict[str, Any]) -> tuple[Any, dict[str, Any], Spec | None, _Planned]:
            spec = specs.get(str((record.get("spec") or {}).get("name")))
            if spec is None:
                result.unknown_spec.append(record["id"])
                return _UNKNOWN, record, None, _Planned({}, None)
            plan = planned.pop(record["id"])
            if plan is None:
                result.not_in_spec.append(record["id"])
                plan = _Planned(record.get("vars") or {}, None)
            elif record.get("request") is not None and _digest(record["request"]) != plan.request:
                result.prompt_changed.append(record["id"])
            scored = {**record, "expectations": score_record(spec, record, plan.vars, plan.case)}
            return _verdict(record), scored, spec, plan

        def _judged(
            item: tuple[Any, dict[str, Any], Spec | None, _Planned],
        ) -> tuple[Any, dict[str, Any]]:
            before, scored, spec, plan = item
            if spec is not None:
                scored = judges.judged(spec, scored, plan.vars, plan.case)
            return before, scored

        judges = Regrader(specs.values(), settings)
        try:
            store.rewrite_record_stream(rescored)
        finally:
            judges.close()
        manifest = store.read_manifest()
        manifest.setdefault("counts", {})["expectations"] = result.expectations
        if any(spec.judges for spec in specs.values()):
            manifest["counts"]["judges"] = result.judges.to_json()
        manifest["scored"] = {
            "at": utc_now(),
            "specs": [{"path": s.display, "sha256": s.sha256} for s in specs.values()],
            "prompt_changed": len(result.prompt_changed),
        }
        store.write_manifest(manifest)
        return result
    finally:
        store.unlock()


def _load_specs(
    manifest: dict[str, Any], load: Callable[[Path], Spec], spec_files: tuple[Path, ...]
) -> dict[str, Spec]:
    given = {spec.name: spec for spec in (load(path) for path in spec_files)}
    specs: dict[str, Spec] = {}
    for entry in manifest.get("specs") or []:
        name = entry.get("name")
        if name in given:
            specs[name] = given.pop(name)
            continue
        path = Path(entry.get("file") or entry.get("path") or "")
        if not path.is_file():
            raise UsageError(
                f"the spec {entry.get('path')} of this run is no longer at {path}; give its "
                "current file with --spec PATH"
            )
        specs[name] = load(path)
    if given:
        raise UsageError(
            f"the run has no spec named {', '.join(sorted(given))}; --spec replaces a spec of "
            "the run by name"
        )
    return specs


class _PlanLookup:
    """The current plan's entries by record id, read ahead only as far as a lookup needs: a
    finished run's records come in plan order, so memory stays flat however long the run,
    unless the cases were reordered since (then the entries passed over wait in a dict)."""

    def __init__(self, entries: Iterator[tuple[str, _Planned]]):
        self._entries = entries
        self._ahead: dict[str, _Planned] = {}

    def pop(self, wanted: str) -> _Planned | None:
        found = self._ahead.pop(wanted, None)
        if found is not None:
            return found
        for planned_id, planned in self._entries:
            if planned_id == wanted:
                return planned
            self._ahead[planned_id] = planned
        return None


def _plan(specs: dict[str, Spec], settings: RunSettings) -> Iterator[tuple[str, _Planned]]:
    """Each record id of the current specs, in plan order, with its variables and its
    request's digest."""
    override = replace(settings.provider, require_key=False)
    for spec in specs.values():
        provider = resolve_endpoint(spec.provider, override).name
        for case, combination in expand(spec.cases, spec.matrix, settings.selection):
            try:
                request = render_request(spec, settings.variables, case, combination)
            except RenderError:  # the current templates fail for this case: no request to compare
                variables = {**spec.vars, **case.vars, **settings.variables}
                yield record_id(spec.name, case, combination), _Planned(variables, None, case)
                continue
            # The body as the run sent it: --stream/--no-stream and the stream options.
            body = streaming_body(request.recorded_body, provider, settings.stream)
            yield request.record_id, _Planned(request.vars, _digest(body), case)


def _digest(body: Any) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _verdict(record: Mapping[str, Any]) -> bool | None:
    results = record.get("expectations")
    return bool(results.get("passed")) if isinstance(results, dict) else None
