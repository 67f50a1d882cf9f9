"""Expectations: what a correct answer is, checked without asking a model.

A spec's ``expect:`` is a list of checks. Each check names one kind and, for checks on the
answer, what it looks at (``path:`` a field of the parsed JSON; otherwise the answer text)::

    expect:
      - equals: "{{ expected_label }}"      # values are Jinja templates over the case's variables
        path: label
      - one_of: [billing, platform, docs]
        path: team
      - contains: refund                    # on the text; ignore_case: true to ignore case
      - regex: '^\\w+$'
      - tool_call: get_weather              # this tool is called, with at least these arguments
        arguments: {city: "{{ city }}"}
      - max_latency_ms: 2000
      - max_tokens: 300                     # completion tokens of the answer
      - max_total_tokens: 1200              # prompt + completion tokens

Every check is deterministic: the same saved answer and the same spec give the same result, so
a run can be scored again later from its records alone (``runner score``), sending nothing.

Results are stored in each record as ``record["expectations"]``: None when the spec has no
checks, else ``{"passed", "total", "failed", "checks": [{"check", "target", "expected",
"actual", "passed", "message"}]}``.

A ``judge:`` check is not evaluated here: another spec, the judge, gives its verdict after the
answer arrives (``runner/runs/judging.py`` asks it, ``runner/grade/judge.py`` reads the verdict).
Until then its result is pending: failed, saying that no judge has answered yet.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2

from runner.errors import plural
from runner.spec.expectations import (
    BARE_VARIABLE,
    CEILING_KINDS,
    JUDGE_KIND,
    TOOL_KIND,
    Check,
    PathPart,
)
from runner.spec.judges import verdict_rule
from runner.spec.patterns import (
    SEARCH_SECONDS,
    PatternError,
    PatternTimeout,
    compile_pattern,
    search,
)
from runner.spec.sandbox import work_budget


@dataclass(frozen=True)
class CheckResult:
    check: str
    target: str
    expected: Any
    actual: Any
    passed: bool
    message: str
    score: float | None = None  # a judge's score, when it gave one

    def to_json(self) -> dict[str, Any]:
        result = {
            "check": self.check,
            "target": self.target,
            "expected": self.expected,
            "actual": self.actual,
            "passed": self.passed,
            "message": self.message,
        }
        if self.check == JUDGE_KIND:
            result["score"] = self.score
        return result


# ---- evaluating a record


def evaluate(
    checks: tuple[Check, ...],
    record: Mapping[str, Any],
    variables: Mapping[str, Any],
    env: jinja2.Environment,
) -> dict[str, Any] | None:
    """The expectation results of one record (None when there are no checks)."""
    if not checks:
        return None
    results = [_evaluate_one(check, record, variables, env) for check in checks]
    failed = sum(not r.passed for r in results)
    return {
        "passed": failed == 0,
        "total": len(results),
        "failed": failed,
        "checks": [r.to_json() for r in results],
    }


def empty_counts() -> dict[str, int]:
    return {"records": 0, "passed": 0, "failed": 0}


def count(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Manifest counts: records with checks, and how many of them passed or failed."""
    counts = empty_counts()
    for record in records:
        add_count(counts, record)
    return counts


def add_count(counts: dict[str, int], record: Mapping[str, Any]) -> None:
    """Count one record's expectations into ``counts`` (records, passed, failed)."""
    results = record.get("expectations")
    if isinstance(results, dict):
        counts["records"] += 1
        counts["passed" if results.get("passed") else "failed"] += 1


def describe_counts(counts: Mapping[str, int]) -> list[str]:
    """The summary line about expectations (none when no record had checks)."""
    if not counts.get("records"):
        return []
    records, passed = counts["records"], counts["passed"]
    return [
        f"expectations: {passed} of {plural(records, 'record')} passed "
        f"({100 * passed / records:.0f}%), "
        f"{counts['failed']} failed"
    ]


class FillInFailed(Exception):
    """An expected value whose template cannot be filled in with a record's variables."""


NOT_JUDGED = (
    "not judged: no judge has answered for this record yet (judges are asked by runner run "
    "and runner score; a Batch run's records get their verdicts from runner score RUN_DIR)"
)


def not_judged(check: Check, message: str = NOT_JUDGED) -> CheckResult:
    """The result of a judge check without a verdict: failed, saying why."""
    return CheckResult(JUDGE_KIND, check.target, verdict_rule(check), None, False, message)


def _evaluate_one(
    check: Check, record: Mapping[str, Any], variables: Mapping[str, Any], env: jinja2.Environment
) -> CheckResult:
    if check.kind == JUDGE_KIND:
        if not isinstance(record.get("output"), dict):
            return not_judged(check, "no answer to judge (the request failed)")
        return not_judged(check)
    try:
        expected = _render(env, check.expected, variables)
        arguments = _render(env, check.arguments, variables) if check.arguments else None
    except FillInFailed as exc:
        return CheckResult(check.kind, check.target, check.expected, None, False, str(exc))
    output = record.get("output")
    if not isinstance(output, dict):
        return _result(check, expected, None, False, "no answer to check (the request failed)")
    if check.kind in CEILING_KINDS:
        return _ceiling(check, record, expected)
    if check.kind == TOOL_KIND:
        return _tool_call(check, output, expected, arguments)
    return _answer(check, output, expected)


def _result(check: Check, expected: Any, actual: Any, passed: bool, message: str) -> CheckResult:
    return CheckResult(check.kind, check.target, expected, actual, passed, message)


def fill_in(env: jinja2.Environment, value: Any, variables: Mapping[str, Any]) -> Any:
    """``value`` with every template string in it filled in; raises FillInFailed."""
    return _render(env, value, variables)


def _render(env: jinja2.Environment, value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        if "{" not in value:
            return value
        bare = BARE_VARIABLE.fullmatch(value)  # "{{ column }}": read it, no need to render
        if bare is not None and isinstance(variables.get(bare[1]), str):
            return variables[bare[1]]
        try:
            with work_budget():
                return _compiled(env, value).render(variables)
        except jinja2.UndefinedError as exc:
            raise FillInFailed(f"cannot fill in the expected value: {exc.message}") from None
        except Exception as exc:  # any template failure fails this check, not the run
            raise FillInFailed(f"cannot fill in the expected value: {exc}") from None
    if isinstance(value, list):
        return [_render(env, v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _render(env, v, variables) for k, v in value.items()}
    return value


@lru_cache(maxsize=1024)
def _compiled(env: jinja2.Environment, source: str) -> jinja2.Template:
    """A template compiled once for all the records it is filled in for."""
    return env.from_string(source)


def _ceiling(check: Check, record: Mapping[str, Any], limit: Any) -> CheckResult:
    field = CEILING_KINDS[check.kind]
    if field == "latency_ms":
        actual = record.get("latency_ms")
    else:
        usage = record.get("usage")
        actual = usage.get(field) if isinstance(usage, dict) else None
    if not isinstance(actual, int | float) or isinstance(actual, bool):
        return _result(check, limit, None, False, f"the record has no {field}")
    try:
        ceiling = float(limit)
    except (TypeError, ValueError):
        return _result(check, limit, actual, False, f"the ceiling {limit!r} is not a number")
    passed = actual <= ceiling
    relation = "within" if passed else "over"
    return _result(check, limit, actual, passed, f"{field} {actual} is {relation} {limit}")


def _answer(check: Check, output: Mapping[str, Any], expected: Any) -> CheckResult:
    if check.path is None:
        content = output.get("content")
        if not isinstance(content, str):
            return _result(check, expected, content, False, "the answer has no text")
        actual: Any = content
        where = "the answer"
    else:
        parsed = output.get("parsed")
        if parsed is None:
            parsed = _json_or_none(output.get("content"))
        if parsed is None:
            return _result(check, expected, None, False, "the answer is not JSON")
        found, actual = _lookup(parsed, check.path)
        if not found:
            return _result(check, expected, None, False, f"the answer has no '{check.path_text}'")
        where = f"'{check.path_text}'"
    passed, message = _compare(check, actual, expected, where)
    return _result(check, expected, actual, passed, message)


def _compare(check: Check, actual: Any, expected: Any, where: str) -> tuple[bool, str]:
    fold = check.ignore_case
    text_target = check.path is None
    if check.kind == "equals":
        passed = _same(actual, expected, fold, strip=text_target)
        return passed, f"{where} is {_show(actual)}" + (
            "" if passed else f", not {_show(expected)}"
        )
    if check.kind == "one_of":
        options = expected if isinstance(expected, list) else [expected]
        passed = any(_same(actual, o, fold, strip=text_target) for o in options)
        return passed, f"{where} is {_show(actual)}" + (
            "" if passed else f", none of {', '.join(_show(o) for o in options)}"
        )
    if check.kind == "contains":
        if isinstance(actual, list):
            passed = any(_same(item, expected, fold) for item in actual)
        else:
            passed = _norm(str(expected), fold) in _norm(_as_text(actual), fold)
        verb = "contains" if passed else "does not contain"
        return passed, f"{where} {verb} {_show(expected)}"
    # regex
    try:
        pattern = compile_pattern(str(expected), fold)
    except PatternError as exc:
        return False, f"the pattern {_pattern(expected)} is not a valid regular expression: {exc}"
    try:
        passed = search(pattern, _as_text(actual))
    except PatternTimeout:
        return False, (
            f"the pattern {_pattern(expected)} searched {where} for over {SEARCH_SECONDS:g} s "
            "and was stopped: it backtracks (nested repeats such as (a+)+ or (a|aa)+; "
            "write a+ instead)"
        )
    verb = "matches" if passed else "does not match"
    return passed, f"{where} {verb} {_pattern(expected)}"


def _tool_call(check: Check, output: Mapping[str, Any], name: Any, arguments: Any) -> CheckResult:
    calls = [c for c in output.get("tool_calls") or [] if isinstance(c, dict)]
    actual = [{"name": c.get("name"), "arguments": c.get("arguments")} for c in calls]
    named = [c for c in calls if c.get("name") == name]
    expected: Any = name if arguments is None else {"name": name, "arguments": arguments}
    if not named:
        called = ", ".join(str(c.get("name")) for c in calls) or "no tool"
        return _result(check, expected, actual, False, f"'{name}' was not called ({called} was)")
    if arguments is None or any(_subset(arguments, c.get("arguments")) for c in named):
        return _result(check, expected, actual, True, f"'{name}' was called")
    return _result(
        check,
        expected,
        actual,
        False,
        f"'{name}' was called, but not with {json.dumps(arguments, ensure_ascii=False)}",
    )


def _subset(expected: Any, actual: Any) -> bool:
    """Every key of ``expected`` is in ``actual`` with a matching value (recursively)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_subset(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return _same(actual, expected, fold=False)


def _same(actual: Any, expected: Any, fold: bool, strip: bool = False) -> bool:
    """Equal as JSON; a rendered template (text) also equals a number or true/false it spells."""
    if isinstance(expected, str) and not isinstance(actual, str):
        actual = json.dumps(actual, ensure_ascii=False)
    if isinstance(expected, str) and isinstance(actual, str):
        if strip:
            actual, expected = actual.strip(), expected.strip()
        return _norm(actual, fold) == _norm(expected, fold)
    return bool(actual == expected and type(actual) is type(expected)) or (
        isinstance(actual, int | float)
        and isinstance(expected, int | float)
        and not isinstance(actual, bool)
        and not isinstance(expected, bool)
        and actual == expected
    )


def _norm(text: str, fold: bool) -> str:
    return text.casefold() if fold else text


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _json_or_none(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _lookup(value: Any, path: tuple[PathPart, ...]) -> tuple[bool, Any]:
    for part in path:
        if isinstance(part, int):
            if not isinstance(value, list) or part >= len(value):
                return False, None
        elif not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _pattern(value: Any, limit: int = 60) -> str:
    """A regular expression as it was written, between slashes: JSON quoting would double
    every backslash (\\S read as "\\\\S")."""
    text = str(value)
    return f"/{text}/" if len(text) <= limit else f"/{text[: limit - 3]}.../"


def _show(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."
