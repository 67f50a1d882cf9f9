"""Validation of a spec's ``expect:`` checks, beyond what the JSON Schema sees.

Each problem is reported at the line and column of the value at fault: a check naming no kind
or two, options that do not belong to its kind, a ``path:`` that is not a path or that names a
field the response schema does not have, a tool the spec does not define, a regular expression
that does not compile. Template variables of expected values are checked with the messages'
(``variables_without_value`` reads ``expect_templates`` too), so a data-file row lacking an
expected-value column is reported like one lacking a message variable. An inline case's own
``expect:`` is checked the same way, its templates against the spec's and the case's variables.
Hooked into validation as one entry of ``validate.CHECKS``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import jinja2
import jinja2.meta

from runner.check.context import SpecFile
from runner.check.explain import explain
from runner.check.schema import field_validator
from runner.check.templates import parse_template
from runner.errors import Fix, Problem
from runner.spec.cases import CASE_EXPECT, read_rows
from runner.spec.document import PathKey
from runner.spec.expectations import (
    ANSWER_KINDS,
    BARE_VARIABLE,
    KINDS,
    TOOL_KIND,
    PathPart,
    PathSyntaxError,
    expect_templates,
    parse_path,
)
from runner.spec.hints import closest, is_slip
from runner.spec.objects import OutputSchema, Spec, Tool
from runner.spec.patterns import PatternError, compile_pattern
from runner.spec.sandbox import work_budget

MAX_SCHEMA_HOPS = 64
MAX_ROWS_REPORTED = 5


def check_expectations(file: SpecFile, spec: Spec) -> Iterator[Problem]:
    """Every problem of the spec's ``expect:`` checks and its inline cases' own, at the value
    at fault."""
    for i, item in enumerate(file.data.get("expect") or []):
        yield from _check_item(file, ("expect", i), item, spec)
    for path, source in expect_templates(file.data):
        yield from _template_syntax(file, path, source)
    yield from _case_checks(file, spec)
    yield from _expected_values(file, spec)


def _case_checks(file: SpecFile, spec: Spec) -> Iterator[Problem]:
    """An inline case's ``expect:``: checks like the spec's, whose templates may also use the
    case's own variables."""
    cases = file.data.get("cases")
    if not isinstance(cases, list):
        return
    for c, case in enumerate(cases):
        if not isinstance(case, dict) or CASE_EXPECT not in case:
            continue
        at: PathKey = ("cases", c, CASE_EXPECT)
        errors = list(field_validator(CASE_EXPECT).iter_errors(case[CASE_EXPECT]))
        for error in errors:
            error.path.extendleft(reversed(at))
            yield from explain(error, file.doc)
        if errors:
            continue
        known = (file.data.get("vars") or {}).keys() | case.keys()
        for j, item in enumerate(case[CASE_EXPECT]):
            yield from _check_item(file, (*at, j), item, spec)
        for path, source in expect_templates({CASE_EXPECT: case[CASE_EXPECT]}):
            place = (*at[:2], *path)
            yield from _template_syntax(file, place, source)
            yield from _unknown_variables(file, place, source, known)


def _expected_values(file: SpecFile, spec: Spec) -> Iterator[Problem]:
    """An equals or one_of value that the field it checks can never have (its response schema
    lists the values), written in the spec or filled in from a case's variables."""
    if spec.output is None or spec.output.schema is None:
        return
    for i, item in enumerate(file.data.get("expect") or []):
        kind = next((k for k in ("equals", "one_of") if k in item), None)
        if kind is None or "path" not in item:
            continue
        try:
            path = parse_path(str(item["path"]))
        except PathSyntaxError:
            continue
        allowed = allowed_values(spec.output.schema, path)
        if allowed is None:
            continue
        values = item[kind] if kind == "one_of" else [item[kind]]
        fold = bool(item.get("ignore_case"))
        where = f"'{item['path']}'"
        for k, value in enumerate(values):
            at: PathKey = ("expect", i, kind, k) if kind == "one_of" else ("expect", i, kind)
            if not _is_template(value):
                if not _allowed(value, allowed, fold):
                    yield file.problem(at, _not_allowed(value, where, allowed))
            elif spec.cases is not None:
                yield from _case_values(file, spec, at, str(value), where, allowed, fold)


def _case_values(
    file: SpecFile,
    spec: Spec,
    at: PathKey,
    template: str,
    where: str,
    allowed: list[Any],
    fold: bool,
) -> Iterator[Problem]:
    """Each case's filled-in expected value, among ``allowed``; a few wrong rows reported."""
    assert spec.cases is not None
    try:
        compiled = file.env.from_string(template)
    except jinja2.TemplateError:
        return
    column = BARE_VARIABLE.fullmatch(template)  # "{{ name }}": read, no need to render
    reported = 0
    inline = spec.cases.inline is not None
    for number, row in read_rows(spec.cases):
        if not isinstance(row, dict):
            continue
        variables = {**spec.vars, **row}
        if column is not None and isinstance(variables.get(column[1]), str):
            value = variables[column[1]]
        else:
            try:
                with work_budget():
                    value = compiled.render(variables)
            except Exception:  # a template failing here is reported where it is written
                return
        if _allowed(value, allowed, fold):
            continue
        message = f"case {number}: " + _not_allowed(value, where, allowed)
        hint = "fix the expected value in the case, or the response schema"
        if inline:
            yield file.problem(("cases", number - 1), message, hint)
        else:
            yield Problem(spec.cases.display, message.replace("case", "row", 1), number, None, hint)
        reported += 1
        if reported >= MAX_ROWS_REPORTED:
            return


def _allowed(value: Any, allowed: list[Any], fold: bool) -> bool:
    text = value.strip() if isinstance(value, str) else json.dumps(value)
    for option in allowed:
        spelled = option if isinstance(option, str) else json.dumps(option)
        if text == spelled or (fold and text.casefold() == spelled.casefold()):
            return True
    return False


def _not_allowed(value: Any, where: str, allowed: list[Any]) -> str:
    shown = ", ".join(json.dumps(v, ensure_ascii=False) for v in allowed)
    return (
        f"the expected value {json.dumps(value, ensure_ascii=False)} is not one the response "
        f"schema allows for {where} ({shown})"
    )


def _template_syntax(file: SpecFile, path: PathKey, source: str) -> Iterator[Problem]:
    try:
        parse_template(file.env, source)
    except jinja2.TemplateSyntaxError as exc:
        yield file.problem(path, f"template syntax error: {exc.message}")


def _unknown_variables(
    file: SpecFile, path: PathKey, source: str, known: Iterable[str]
) -> Iterator[Problem]:
    try:
        used = jinja2.meta.find_undeclared_variables(parse_template(file.env, source))
    except jinja2.TemplateSyntaxError:
        return
    for name in sorted(used - set(known)):
        yield file.problem(
            path,
            f"template uses the variable '{name}', which has no value",
            "give it a value in this case or under 'vars:'",
        )


def _check_item(file: SpecFile, at: PathKey, item: dict[str, Any], spec: Spec) -> Iterator[Problem]:
    kinds = [k for k in KINDS if k in item]
    if len(kinds) != 1:
        names = " and ".join(f"'{k}'" for k in kinds) if kinds else "no kind"
        yield file.problem(
            at,
            f"{_label(at)} names {names}; a check names exactly one kind",
            f"one of: {', '.join(KINDS)}",
        )
        return
    kind = kinds[0]
    if "path" in item and kind not in ANSWER_KINDS:
        yield file.problem((*at, "path"), f"'path' does not go with '{kind}'", _PATH_HINT)
    if "ignore_case" in item and kind not in ANSWER_KINDS:
        yield file.problem((*at, "ignore_case"), f"'ignore_case' does not go with '{kind}'")
    if "arguments" in item and kind != TOOL_KIND:
        yield file.problem(
            (*at, "arguments"),
            "'arguments' goes with 'tool_call'",
            "e.g. {tool_call: get_weather, arguments: {city: Paris}}",
        )
    if kind in ANSWER_KINDS and "path" in item:
        yield from _check_path(file, at, str(item["path"]), spec.output)
    if kind == TOOL_KIND:
        yield from _check_tool(file, at, item, spec.tools)
    if kind == "regex" and not _is_template(item[kind]):
        try:
            compile_pattern(str(item[kind]))
        except PatternError as exc:
            yield file.problem(
                (*at, "regex"),
                f"regex {item[kind]!r} is not a valid regular expression: {exc}",
                "Python's re syntax; quote the pattern with single quotes in YAML",
            )


def _label(at: PathKey) -> str:
    text = ""
    for part in at:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


_PATH_HINT = "a path reads a field of the JSON answer, for equals, one_of, contains and regex"


def _check_path(
    file: SpecFile, at: PathKey, text: str, output: OutputSchema | None
) -> Iterator[Problem]:
    try:
        path = parse_path(text)
    except PathSyntaxError as exc:
        hint = "fields are joined by '.', list items are [0]"
        yield file.problem((*at, "path"), str(exc), hint)
        return
    if output is None or output.schema is None:
        return
    missing = missing_field(output.schema, path)
    if missing is not None:
        yield file.problem((*at, "path"), *missing)


def _check_tool(
    file: SpecFile, at: PathKey, item: dict[str, Any], tools: tuple[Tool, ...]
) -> Iterator[Problem]:
    name = item[TOOL_KIND]
    if _is_template(name):
        return
    tool = next((t for t in tools if t.name == name), None)
    if tool is None:
        names = [t.name for t in tools]
        guess = closest(str(name), names)
        yield file.problem(
            (*at, TOOL_KIND),
            f"tool_call expects the tool '{name}', which the spec does not define",
            (f"did you mean '{guess}'? write: {TOOL_KIND}: {guess}" if guess else None)
            or (f"defined tools: {', '.join(names)}" if names else "add it under 'tools:'"),
            code="expect-check",
            fix=Fix("set", (*at, TOOL_KIND), name, value=guess)
            if guess and isinstance(name, str) and is_slip(name, guess)
            else None,
        )
        return
    for argument in item.get("arguments") or {}:
        missing = missing_field(tool.parameters, (str(argument),))
        if missing is not None:
            hint = missing[1]
            yield file.problem(
                (*at, "arguments", argument),
                f"the tool '{name}' has no argument '{argument}'",
                hint.replace("fields here", "its arguments") if hint else None,
                key=True,
            )


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


# ---- paths into a response schema


def missing_field(
    schema: Mapping[str, Any], path: tuple[PathPart, ...]
) -> tuple[str, str | None] | None:
    """Why ``path`` cannot exist in JSON satisfying ``schema``, with a hint; None when it can
    (or when the schema leaves that part open, so nothing can be said)."""
    return _walk(schema, path)[1]


def allowed_values(schema: Mapping[str, Any], path: tuple[PathPart, ...]) -> list[Any] | None:
    """The values the field at ``path`` may have (its ``enum`` or ``const``), or None when the
    schema does not list them."""
    nodes, problem = _walk(schema, path)
    if nodes is None or problem is not None:
        return None
    values: list[Any] = []
    for node in _branches(nodes, schema):
        if isinstance(node.get("enum"), list):
            values.extend(v for v in node["enum"] if v not in values)
        elif "const" in node:
            values.append(node["const"])
        else:
            return None
    return values or None


def _walk(
    schema: Mapping[str, Any], path: tuple[PathPart, ...]
) -> tuple[list[Any] | None, tuple[str, str | None] | None]:
    """The schema nodes at ``path`` (None where the schema leaves it open), or the reason
    there can be none."""
    nodes: list[Any] = [schema]
    for depth, part in enumerate(path):
        found: list[Any] = []
        known: list[str] = []
        for node in _branches(nodes, schema):
            step = _step(node, part)
            if step is _OPEN:
                return None, None
            if step is not None:
                found.append(step)
            properties = node.get("properties")
            if isinstance(properties, dict):
                known.extend(k for k in properties if k not in known)
        if not found:
            where = _path_text(path[:depth])
            at = f" in '{where}'" if where else ""
            if isinstance(part, int):
                return None, (
                    f"the response schema has no list{at} to take item [{part}] from",
                    None,
                )
            hint = f"fields here: {', '.join(known)}" if known else None
            return None, (f"the response schema has no field '{part}'{at}", hint)
        nodes = found
    return nodes, None


_OPEN = object()


def _step(node: Mapping[str, Any], part: PathPart) -> Any:
    """The schema of ``part`` inside ``node``; _OPEN when the node allows anything there."""
    types = node.get("type")
    type_list = types if isinstance(types, list) else [types] if types else []
    if isinstance(part, str):
        properties = node.get("properties")
        if isinstance(properties, dict) and part in properties:
            return properties[part]
        extra = node.get("additionalProperties")
        if node.get("patternProperties") or (extra is not None and extra is not False):
            return _OPEN
        if properties is None and (not type_list or "object" in type_list):
            return _OPEN
        return None
    prefix = node.get("prefixItems")
    if isinstance(prefix, list) and part < len(prefix):
        return prefix[part]
    items = node.get("items")
    if isinstance(items, dict):
        return items
    if items is None and prefix is None and (not type_list or "array" in type_list):
        return _OPEN
    return None


def _branches(nodes: list[Any], root: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The nodes with local $refs followed and anyOf/oneOf/allOf branches spread out."""
    pending = list(nodes)
    hops = 0
    while pending and hops < MAX_SCHEMA_HOPS:
        hops += 1
        node = pending.pop(0)
        if node is True:
            node = {}
        if not isinstance(node, dict):
            continue
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            pending.append(_pointer(root, ref))
            continue
        combined = [b for key in ("anyOf", "oneOf", "allOf") for b in node.get(key) or []]
        if combined:
            pending.extend(combined)
            rest = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf", "allOf")}
            if set(rest) - {"description", "title", "$defs", "definitions", "type"}:
                yield rest
            continue
        yield node


def _pointer(root: Mapping[str, Any], ref: str) -> Any:
    node: Any = root
    for part in (p for p in ref[1:].split("/") if p):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node


def _path_text(path: tuple[PathPart, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
