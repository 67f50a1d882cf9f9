"""What a judge is, as a spec sees it: the ``judge:`` check and the verdict a judge answers.

A check ``- judge: PATH`` names another spec, the judge, which is asked once per record with
the record's variables and answer (see ``runner/spec/chain.py``) and must answer a verdict:
structured output (``response_format: {type: json_schema}``) whose schema has ``pass`` (a
boolean, required) and optionally ``score`` (a number) and ``reason`` (a string). Options:

    pass_if     pass (default): the judge's ``pass`` decides; score: ``score >= threshold``
                decides; both: ``pass`` and ``score >= threshold``. With a threshold and no
                pass_if, score.
    threshold   the lowest passing score
    expected    a template over the case's variables, given to the judge as ``expected``

How a verdict becomes a check result lives in ``runner/grade/judge.py``; sending the judge's
requests in ``runner/runs/judging.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.spec.expectations import Check

PASS_IF = ("pass", "score", "both")
JUDGE_OPTIONS = ("pass_if", "threshold", "expected")
# What a judge is asked with, besides the record's own variables (see chain.RECORD_VARIABLES).
EXPECTED_VARIABLE = "expected"
VERDICT_FIELDS = {"pass": ("boolean",), "score": ("number", "integer"), "reason": ("string",)}


def pass_rule(pass_if: str | None, threshold: float | None) -> str:
    """The rule a verdict is judged by: pass_if as given, else score with a threshold."""
    if pass_if is not None:
        return pass_if
    return "score" if threshold is not None else "pass"


def verdict_rule(check: Check) -> dict[str, Any]:
    """What a verdict must be for ``check`` to pass, as a record shows it."""
    rule = pass_rule(check.pass_if, check.threshold)
    at_least = f">= {_number_text(check.threshold)}"
    if rule == "pass":
        return {"pass": True}
    if rule == "score":
        return {"score": at_least}
    return {"pass": True, "score": at_least}


def _number_text(value: float | None) -> str:
    if value is None:
        return "?"
    return str(int(value)) if float(value).is_integer() else str(value)


def verdict_schema_problems(schema: Any, needs_score: bool = False) -> list[str]:
    """Why ``schema`` is not a verdict schema (an object with a required boolean ``pass``,
    and ``score``/``reason`` of the right types when present); empty when it is one."""
    if not isinstance(schema, Mapping):
        return ["the judge's response schema is not a JSON object schema"]
    if schema.get("type") not in ("object", None):
        return [f"the judge's response schema is of type {schema.get('type')!r}, not object"]
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    problems = []
    if "pass" not in properties:
        problems.append("the judge's response schema has no 'pass' property")
    elif "pass" not in (schema.get("required") or ()):
        problems.append("the judge's response schema does not require 'pass'")
    for name, types in VERDICT_FIELDS.items():
        field = properties.get(name)
        if isinstance(field, Mapping) and not _has_type(field, types):
            problems.append(f"'{name}' in the judge's response schema is not a {types[0]}")
    if needs_score and "score" not in properties:
        problems.append("a threshold needs a 'score' in the judge's response schema")
    return problems


def is_verdict_schema(schema: Any) -> bool:
    return not verdict_schema_problems(schema)


def _has_type(field: Mapping[str, Any], types: tuple[str, ...]) -> bool:
    declared = field.get("type")
    if declared is None:
        return True  # a $ref'd or open field: nothing to say
    names = declared if isinstance(declared, list) else [declared]
    return any(name in types for name in names)
