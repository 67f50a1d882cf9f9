"""Expectations as a spec states them: the kinds of check, their options and paths, parsed.

How a check is evaluated against an answer is ``runner/grade/expect.py``; the format of
``expect:`` is described there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.spec.project import written_path

TEXT = "text"

# Check kinds on the answer itself (text, or a field of the parsed JSON when ``path`` is given).
ANSWER_KINDS = ("equals", "one_of", "contains", "regex")
# Ceilings on what the answer cost: (record field they read, what they are called in results).
CEILING_KINDS = {
    "max_latency_ms": "latency_ms",
    "max_tokens": "completion_tokens",
    "max_total_tokens": "total_tokens",
}
TOOL_KIND = "tool_call"
JUDGE_KIND = "judge"  # another spec judges the answer: see runner/spec/judges.py
KINDS = (*ANSWER_KINDS, TOOL_KIND, *CEILING_KINDS, JUDGE_KIND)
# Options a check may carry beside its kind.
OPTIONS = ("path", "ignore_case", "arguments", "pass_if", "threshold", "expected")

PathPart = str | int
BARE_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")
_PATH_PART = re.compile(r"\.?([^.\[\]\s]+)|\[(\d+)\]")


class PathSyntaxError(ValueError):
    """A ``path:`` that is not ``name``, ``name.sub`` or ``name[0].sub``."""


@dataclass(frozen=True)
class Check:
    """One expectation of a spec: its kind, what it looks at, and the expected value.

    ``expected`` is the value as written in YAML: strings in it are Jinja templates, rendered
    per record with the case's variables. ``path`` is the parsed ``path:`` (None: the text).
    """

    kind: str
    expected: Any
    path: tuple[PathPart, ...] | None = None
    path_text: str | None = None
    ignore_case: bool = False
    arguments: Mapping[str, Any] | None = None
    # A judge check's options: the rule its verdict passes by, and what it is given as expected.
    pass_if: str | None = None
    threshold: float | None = None
    judge_expected: Any = None

    @property
    def target(self) -> str:
        if self.kind in (TOOL_KIND, JUDGE_KIND):
            return str(self.expected)
        if self.kind in CEILING_KINDS:
            return CEILING_KINDS[self.kind]
        return self.path_text or TEXT


def parse_path(text: str) -> tuple[PathPart, ...]:
    """``items[0].name`` -> ("items", 0, "name"); raises PathSyntaxError."""
    parts: list[PathPart] = []
    position = 0
    while position < len(text):
        match = _PATH_PART.match(text, position)
        dotted = match is not None and match.group(0).startswith(".")
        if match is None or (match.group(1) is not None and dotted != (position > 0)):
            raise PathSyntaxError(
                f"'{text}' is not a path like label, items[0].name or scores.overall"
            )
        name, index = match.groups()
        parts.append(int(index) if index is not None else name)
        position = match.end()
    if not parts:
        raise PathSyntaxError("the path is empty; name a field, like label or items[0].name")
    return tuple(parts)


def parse_checks(raw: Iterable[Any]) -> tuple[Check, ...]:
    """Checks from schema-valid ``expect:`` items (validation has reported any bad item)."""
    checks: list[Check] = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        kinds = [k for k in item if k in KINDS]
        if len(kinds) != 1:
            continue
        kind = kinds[0]
        path_text = item.get("path")
        try:
            path = parse_path(str(path_text)) if path_text is not None else None
        except PathSyntaxError:
            continue
        checks.append(
            Check(
                kind,
                written_path(str(item[kind])) if kind == JUDGE_KIND else item[kind],
                path,
                path_text,
                bool(item.get("ignore_case", False)),
                item.get("arguments"),
                item.get("pass_if"),
                _number_or_none(item.get("threshold")),
                item.get("expected"),
            )
        )
    return tuple(checks)


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def template_strings(value: Any) -> Iterable[tuple[tuple[PathPart, ...], str]]:
    """Every string inside an expected value, with its place in it (the templates to check)."""
    if isinstance(value, str):
        yield (), value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from (((i, *p), s) for p, s in template_strings(item))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from (((key, *p), s) for p, s in template_strings(item))


def expect_templates(data: Mapping[str, Any]) -> Iterable[tuple[tuple[PathPart, ...], str]]:
    """(place in the spec, text) of every template in ``expect:`` (expected values, arguments),
    so validation checks their variables the way it checks the messages'."""
    for i, item in enumerate(data.get("expect") or []):
        if not isinstance(item, dict):
            continue
        for key in (*KINDS, "arguments", "expected"):
            if key in item and key != JUDGE_KIND:  # a judge's value is a path, not a template
                for where, text in template_strings(item[key]):
                    yield ("expect", i, key, *where), text
