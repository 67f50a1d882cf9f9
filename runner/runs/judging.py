"""Asking judges: one request per judge check of a record, and the verdicts saved in it.

After an answer arrives, each ``judge:`` check of its spec (and of its case) becomes one
request: the judge spec rendered with the record's variables, ``answer``, ``json``,
``tool_calls``, ``record_id``, ``spec``, ``model`` and ``expected``. The run sends it like any
other request (``runner/runs/execute.py``: the same cache, rate limits, retries and resume); a
judge may name its own provider and model. The judge's record (request, response, usage,
whether it came from the cache) is kept inside the judged record under ``judges``, and its
verdict replaces the pending judge result in ``expectations`` (``runner/grade/judge.py``).

A judge that gave no answer at all (its request failed, or the run stopped before it was
asked) leaves the record ``failed`` with ``error.kind: judge``, so ``runner run --resume``
takes the record up again: the answer comes from the cache and only the judge is asked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.errors import RenderError
from runner.grade.expect import CheckResult, FillInFailed, fill_in
from runner.grade.judge import no_answer, verdict, with_results
from runner.spec.cases import NO_CASE, Case
from runner.spec.chain import record_variables
from runner.spec.expectations import JUDGE_KIND, Check, parse_checks
from runner.spec.judges import EXPECTED_VARIABLE
from runner.spec.objects import Spec
from runner.spec.project import find_project_root
from runner.spec.render import Request, render_request, template_environment

# Keys of a judge's record that the judged record already holds, or that mean nothing for a
# judge: left out of record["judges"].
_LEFT_OUT = ("case", "matrix", "vars", "expectations")


@dataclass(frozen=True)
class JudgeCall:
    """One judge request of a record: the checks it answers (by their place in the record's
    expectations), the judge spec, and the request (or why it could not be rendered)."""

    record_id: str
    path: str  # the judge as the checks name it (a key of Spec.judges)
    checks: tuple[tuple[int, Check], ...]
    judge: Spec
    request: Request
    render_error: str | None = None


def judge_checks(spec: Spec, case: Case = NO_CASE) -> list[tuple[int, Check]]:
    """(place in the record's expectations, check) of every judge check of a record."""
    checks = spec.expect + parse_checks(case.expect) if case.expect else spec.expect
    return [(i, check) for i, check in enumerate(checks) if check.kind == JUDGE_KIND]


def judge_request_count(spec: Spec, case: Case = NO_CASE) -> int:
    """How many judge requests an answer of this case makes at most: checks that name the same
    judge with the same ``expected`` share one."""
    return len({(str(c.expected), repr(c.judge_expected)) for _, c in judge_checks(spec, case)})


def judge_specs(specs: Iterable[Spec]) -> list[Spec]:
    """Every judge spec the specs name, once each (to resolve their endpoints up front)."""
    found: dict[str, Spec] = {}
    for spec in specs:
        for judge in spec.judges.values():
            found.setdefault(judge.display, judge)
    return list(found.values())


def has_judges(spec: Spec) -> bool:
    return bool(spec.judges)


def plan_judges(
    spec: Spec, record: Mapping[str, Any], variables: Mapping[str, Any], case: Case = NO_CASE
) -> list[JudgeCall]:
    """The judge requests of one answered record; checks that would send the same request
    share it. Empty when the record has no answer (its judge checks then fail as such)."""
    if not isinstance(record.get("output"), dict):
        return []
    given = {**variables, **record_variables(record)}
    calls: dict[tuple[str, str], JudgeCall] = {}
    for index, check in judge_checks(spec, case):
        path = str(check.expected)
        judge = spec.judges.get(path)
        if judge is None:  # validation loads every judge; a record of an older spec may not
            continue
        asked = dict(given)
        try:
            expected = _expected(spec, check, given)
        except FillInFailed as exc:
            failed = _failed_call(record, path, index, check, judge, str(exc))
            calls[(judge.display, f"error{index}")] = failed
            continue
        if expected is not _ABSENT:
            asked[EXPECTED_VARIABLE] = expected
        try:
            request = render_request(judge, asked)
        except RenderError as exc:
            problem = str(exc.problem)
            failed = _failed_call(record, path, index, check, judge, problem)
            calls[(judge.display, f"error{index}")] = failed
            continue
        key = (judge.display, _canonical(request.body))
        if key in calls:
            earlier = calls[key]
            checks = (*earlier.checks, (index, check))
            calls[key] = JudgeCall(earlier.record_id, path, checks, judge, earlier.request)
        else:
            record_id = _judge_id(record, judge, calls)
            calls[key] = JudgeCall(record_id, path, ((index, check),), judge, request)
    return list(calls.values())


_ABSENT = object()


def _expected(spec: Spec, check: Check, given: Mapping[str, Any]) -> Any:
    """The ``expected`` a judge is given: the check's ``expected:`` filled in with the
    record's variables, else the case's own ``expected`` variable, else none."""
    if check.judge_expected is not None:
        env = template_environment(find_project_root(spec.path))
        return fill_in(env, check.judge_expected, given)
    return given.get(EXPECTED_VARIABLE, _ABSENT)


def _failed_call(
    record: Mapping[str, Any], path: str, index: int, check: Check, judge: Spec, reason: str
) -> JudgeCall:
    request = Request(judge, {}, {})
    record_id = f"{record.get('id')}#judge={judge.name}.{index}"
    return JudgeCall(record_id, path, ((index, check),), judge, request, reason)


def _judge_id(record: Mapping[str, Any], judge: Spec, calls: Mapping[Any, JudgeCall]) -> str:
    base = f"{record.get('id')}#judge={judge.name}"
    taken = {call.record_id for call in calls.values()}
    if base not in taken:
        return base
    number = 2
    while f"{base}.{number}" in taken:
        number += 1
    return f"{base}.{number}"


def _canonical(body: Any) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def apply_verdicts(
    spec: Spec,
    record: dict[str, Any],
    case: Case,
    answered: list[tuple[JudgeCall, dict[str, Any] | None]],
) -> dict[str, Any]:
    """The record with its judges' records under ``judges`` and their verdicts in
    ``expectations``. ``None`` for a call the run stopped before sending."""
    checks = judge_checks(spec, case)
    if not checks or not isinstance(record.get("expectations"), dict):
        return record
    results: dict[int, CheckResult] = {}
    if not isinstance(record.get("output"), dict):
        results = {index: no_answer(check) for index, check in checks}
        return {**record, "expectations": with_results(record["expectations"], results)}
    kept: list[dict[str, Any]] = []
    missing: list[str] = []
    for call, judged in answered:
        if judged is None:
            missing.append(f"the run stopped before the judge {call.judge.display} was asked")
            continue
        kept.append(_kept(judged, call))
        if judged.get("output") is None and (judged.get("error") or {}).get("kind") != "render":
            error = judged.get("error") or {}
            missing.append(f"the judge {call.judge.display} failed: {error.get('message')}")
        for index, check in call.checks:
            results[index] = verdict(check, judged)
    judged_record = {
        **record,
        "expectations": with_results(record["expectations"], results),
        "judges": kept,
    }
    if (record.get("error") or {}).get("kind") == JUDGE_KIND:  # judged again (resume, score)
        output = record["output"]
        judged_record["status"] = "ok" if output.get("valid", True) else "invalid_output"
        judged_record["error"] = None
    if missing:
        judged_record["status"] = "failed"
        judged_record["error"] = {"kind": JUDGE_KIND, "message": "; ".join(missing)}
    return judged_record


def _kept(judged: Mapping[str, Any], call: JudgeCall) -> dict[str, Any]:
    kept = {k: v for k, v in judged.items() if k not in _LEFT_OUT}
    kept["checks"] = [index for index, _ in call.checks]
    return kept
