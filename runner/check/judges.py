"""Validation of judges: the ``- judge: PATH`` checks of a spec and the judge specs they name.

``build_judges`` loads every judge a spec names (in its ``expect:`` and its inline cases' own),
each checked as a spec in its own right, with the variables a record gives it taken as given;
the spec keeps them (``Spec.judges``) so a run has them validated before anything is sent.
``check_judges`` (one entry of ``validate.CHECKS``) reports, at the line of the check:

- a judge file that is missing, outside the project, not YAML, or the spec itself;
- a judge that is no verdict judge: its structured output must be a JSON Schema with a
  required boolean ``pass`` (and ``score`` a number, ``reason`` a string when present); a
  judge with cases, a matrix or judges of its own;
- ``pass_if`` / ``threshold`` / ``expected`` without ``judge:``; ``pass_if: score`` or
  ``both`` without a threshold; a threshold when the judge gives no score;
- a variable the judge's templates use that neither the judge's ``vars``, nor the record
  (``answer``, ``json``, ``tool_calls``, ``record_id``, ``spec``, ``model``, ``expected``, the
  spec's variables), nor every case gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jinja2

from runner.check.context import SpecFile
from runner.check.schema import schema_problems
from runner.check.templates import _undeclared
from runner.errors import Problem, SpecError
from runner.spec.cases import CASE_EXPECT, case_id, read_rows
from runner.spec.chain import RECORD_VARIABLES
from runner.spec.document import PathKey
from runner.spec.expectations import JUDGE_KIND
from runner.spec.extends import with_bases
from runner.spec.judges import (
    EXPECTED_VARIABLE,
    JUDGE_OPTIONS,
    PASS_IF,
    pass_rule,
    verdict_schema_problems,
)
from runner.spec.load import load_yaml
from runner.spec.objects import Spec
from runner.spec.project import (
    display_path,
    find_project_root,
    missing_file_hint,
    outside_hint,
    resolve_inside,
    written_path,
)
from runner.spec.render import template_environment

SPEC_SUFFIXES = (".yaml", ".yml")
JUDGE_CODE = "judge"  # the problem code of every problem reported here (check/codes.py)
MAX_ROWS_REPORTED = 5
GIVEN = ", ".join((*RECORD_VARIABLES, EXPECTED_VARIABLE))


class _Placeholder(str):
    """A stand-in for a value a record gives a judge, so the judge renders when validated on
    its own: ``json.summary``, ``tool_calls[0]`` and loops over it all work."""

    def __getattr__(self, name: str) -> _Placeholder:
        if name.startswith("_"):
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> _Placeholder:
        return self

    def __iter__(self) -> Iterator[str]:
        return iter(())

    # A record's score, count or flag may be compared or computed with: the outcome of a
    # stand-in means nothing, but it must not fail the render.
    def __lt__(self, other: object) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def __add__(self, other: object) -> _Placeholder:
        return self

    __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __add__
    __floordiv__ = __rfloordiv__ = __mod__ = __pow__ = __rpow__ = __add__

    # ``round``, ``abs``, ``int``, ``float`` and ``format('%.1f', ...)`` (not ``__rmod__``: a
    # str subclass's reflected ``%`` would run before the format string's own).
    def __round__(self, digits: int | None = None) -> _Placeholder:
        return self

    def __neg__(self) -> _Placeholder:
        return self

    __pos__ = __abs__ = __neg__

    def __int__(self) -> int:
        return 0

    def __float__(self) -> float:
        return 0.0

    def __index__(self) -> int:
        return 0


PLACEHOLDER = _Placeholder("")


def judge_items(data: Mapping[str, Any]) -> Iterator[tuple[PathKey, dict[str, Any]]]:
    """(place, item) of every check with a ``judge:``, the spec's and its inline cases'."""
    for i, item in enumerate(data.get("expect") or []):
        if isinstance(item, dict):
            yield ("expect", i), item
    cases = data.get("cases")
    if isinstance(cases, list):
        for c, case in enumerate(cases):
            checks = case.get(CASE_EXPECT) if isinstance(case, dict) else None
            for j, item in enumerate(checks if isinstance(checks, list) else []):
                if isinstance(item, dict):
                    yield ("cases", c, CASE_EXPECT, j), item


# Loads and fully checks a judge spec (validate.load_spec, handed in by the validator that is
# checking the judging spec: a judge is checked as the spec it is, without a circle of imports).
LoadSpec = Callable[[Path, Mapping[str, Any]], Spec]


def build_judges(file: SpecFile, problems: list[Problem], load: LoadSpec) -> dict[str, Spec]:
    """Every judge the spec names, loaded and checked by ``load``, by the path as written."""
    judges: dict[str, Spec] = {}
    failed: set[str] = set()
    for at, item in judge_items(file.data):
        reference = item.get(JUDGE_KIND)
        if not isinstance(reference, str):
            continue
        reference = written_path(reference)
        if reference in judges or reference in failed:
            continue
        judge = _load_judge(file, at, reference, problems, load)
        if judge is None:
            failed.add(reference)
        else:
            judges[reference] = judge
    return judges


def _load_judge(
    file: SpecFile, at: PathKey, reference: str, problems: list[Problem], load: LoadSpec
) -> Spec | None:
    where: PathKey = (*at, JUDGE_KIND)
    target = resolve_inside(file.root, file.folder_of(at), reference)
    if target is None:
        hint = outside_hint(file.root, "judge specs", "in a judges/ folder beside the spec")
        problems.append(
            file.problem(
                where,
                f"the judge '{reference}' is outside the project folder",
                hint,
                code=JUDGE_CODE,
            )
        )
        return None
    if target.suffix.lower() not in SPEC_SUFFIXES:
        problems.append(
            file.problem(
                where,
                f"the judge '{reference}' is not a spec file",
                "name a .yaml spec",
                code=JUDGE_CODE,
            )
        )
        return None
    if not target.is_file():
        hint = missing_file_hint(reference, target)
        problems.append(
            file.problem(where, f"judge spec not found: {reference}", hint, code=JUDGE_CODE)
        )
        return None
    if target == file.doc.path.resolve():
        problems.append(file.problem(where, "a spec cannot be its own judge", code=JUDGE_CODE))
        return None
    placeholders = dict.fromkeys(_template_variables(target), PLACEHOLDER)
    try:
        judge = load(target, placeholders)
    except SpecError as exc:
        problems.extend(exc.problems)
        problems.append(
            file.problem(
                where,
                f"the judge '{reference}' is not a valid spec",
                f"fix the problems reported in {display_path(target)}",
                code=JUDGE_CODE,
            )
        )
        return None
    shape = list(_judge_shape(judge))
    if shape:
        problems.extend(
            file.problem(where, f"{judge.display}: {text}", hint, code=JUDGE_CODE)
            for text, hint in shape
        )
        return None
    return judge


def _template_variables(path: Path) -> set[str]:
    """The variables a spec's message templates use (none if it cannot be read: loading it
    reports why)."""
    display = display_path(path)
    try:
        doc, bases = with_bases(load_yaml(path, display))
    except SpecError:
        return set()
    if schema_problems(doc, display):
        return set()
    spec_file = SpecFile.of(doc, display, bases)
    names: set[str] = set()
    for _, source in spec_file.template_sources():
        try:
            names |= _undeclared(spec_file.env, source)
        except jinja2.TemplateSyntaxError:
            continue
    return names - (doc.data.get("vars") or {}).keys()


VERDICT_HINT = (
    "a judge answers a verdict: response_format: {type: json_schema, json_schema: {name: "
    "verdict, schema: {type: object, required: [pass], properties: {pass: {type: boolean}, "
    "score: {type: number}, reason: {type: string}}}}}"
)


def _judge_shape(judge: Spec) -> Iterator[tuple[str, str | None]]:
    output = judge.output
    if output is None or output.kind != "json_schema" or output.schema is None:
        yield "a judge must answer with structured output (a JSON Schema)", VERDICT_HINT
    else:
        for text in verdict_schema_problems(output.schema):
            yield text, VERDICT_HINT
    if judge.cases is not None:
        yield "a judge is asked once per record; it cannot have cases", "remove 'cases:'"
    if judge.matrix:
        yield (
            "a judge cannot have a matrix",
            "name one model; to compare judges, write one judge spec per model",
        )
    if judge.judges:
        yield "a judge cannot have judges of its own", "remove its judge: checks"


# ---- the checks that name judges, once the spec is built


def check_judges(file: SpecFile, spec: Spec) -> Iterator[Problem]:
    """Options that go with ``judge:``, and the variables each judge needs."""
    for at, item in judge_items(file.data):
        yield from _options(file, at, item, spec)
        judge = spec.judges.get(written_path(str(item.get(JUDGE_KIND))))
        if judge is not None:
            yield from _variables(file, at, item, spec, judge)


def _options(file: SpecFile, at: PathKey, item: dict[str, Any], spec: Spec) -> Iterator[Problem]:
    if JUDGE_KIND not in item:
        for option in JUDGE_OPTIONS:
            if option in item:
                yield file.problem(
                    (*at, option),
                    f"'{option}' goes with 'judge'",
                    "e.g. {judge: judges/polite.yaml, pass_if: score, threshold: 4}",
                    key=True,
                    code=JUDGE_CODE,
                )
        return
    pass_if, threshold = item.get("pass_if"), item.get("threshold")
    if pass_if is not None and pass_if not in PASS_IF:
        yield file.problem(
            (*at, "pass_if"),
            f"pass_if must be one of: {', '.join(PASS_IF)} (got {pass_if!r})",
            code=JUDGE_CODE,
        )
        return
    rule = pass_rule(pass_if, threshold)
    if rule in ("score", "both") and threshold is None:
        yield file.problem(
            (*at, "pass_if"),
            f"pass_if: {rule} needs a threshold",
            "add threshold: N, the lowest passing score",
            code=JUDGE_CODE,
        )
    judge = spec.judges.get(written_path(str(item.get(JUDGE_KIND))))
    if threshold is not None and judge is not None and not _gives_score(judge):
        yield file.problem(
            (*at, "threshold"),
            f"a threshold needs a score, and the judge {judge.display} gives none",
            "add score: {type: number} to the judge's response schema, or use pass_if: pass",
            code=JUDGE_CODE,
        )


def _gives_score(judge: Spec) -> bool:
    """Whether the judge's verdict schema has a score (a loaded judge has a verdict schema)."""
    schema = judge.output.schema if judge.output is not None else None
    return not verdict_schema_problems(schema, needs_score=True)


def _variables(
    file: SpecFile, at: PathKey, item: dict[str, Any], spec: Spec, judge: Spec
) -> Iterator[Problem]:
    """A variable the judge uses must be given by the judge, the record, or every case."""
    needed = _judge_needs(judge) - set(RECORD_VARIABLES)
    needed -= {**spec.vars, **file.variables}.keys()
    if "expected" in item:
        needed.discard(EXPECTED_VARIABLE)
    if at[0] == "cases":  # a case's own check: that case's variables count
        case = file.data["cases"][at[1]]
        needed -= case.keys()
    if not needed:
        return
    where: PathKey = (*at, JUDGE_KIND)
    if spec.cases is None or at[0] == "cases":
        for name in sorted(needed):
            yield file.problem(
                where,
                f"the judge {judge.display} uses the variable '{name}', which no record of "
                "this spec gives",
                f"a judge is given {GIVEN} and the record's variables; give '{name}' under "
                "vars: here or in the judge, or as a case column",
                code=JUDGE_CODE,
            )
        return
    yield from _rows_without(file, where, spec, judge, needed)


def _rows_without(
    file: SpecFile, where: PathKey, spec: Spec, judge: Spec, needed: set[str]
) -> Iterator[Problem]:
    assert spec.cases is not None
    reported = 0
    for number, row in read_rows(spec.cases):
        if not isinstance(row, dict):
            continue
        missing = sorted(needed - row.keys())
        if not missing:
            continue
        names = ", ".join(repr(m) for m in missing)
        yield file.problem(
            where,
            f"case {number} ('{case_id(row)}') of {spec.cases.display} has no value for "
            f"{names}, which the judge {judge.display} uses",
            f"a judge is given {GIVEN} and the record's variables; add the column, or give "
            "a default under vars:",
            code=JUDGE_CODE,
        )
        reported += 1
        if reported >= MAX_ROWS_REPORTED:
            return


def _judge_needs(judge: Spec) -> set[str]:
    """The variables the judge's templates use that its own ``vars`` do not give."""
    env = template_environment(_root(judge))
    names: set[str] = set()
    for message in judge.messages:
        for source in _sources(message.content):
            try:
                names |= _undeclared(env, source)
            except jinja2.TemplateSyntaxError:
                continue
    return names - judge.vars.keys()


def _root(judge: Spec) -> Path:
    return find_project_root(judge.path)


def _sources(content: Any) -> Iterator[str]:
    if content is None:
        return
    if hasattr(content, "source"):
        yield content.source
        return
    for part in content:
        if hasattr(part, "source"):
            yield part.source
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            yield part["text"]
