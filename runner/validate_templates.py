"""Message templates: Jinja syntax, variables without a value, and what the sandbox would refuse.

Templates are parsed (never rendered) here; a parse is cached by its text, since a folder of
specs often shares its prompts.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from itertools import chain
from typing import Any

import jinja2
import jinja2.meta
import jinja2.nodes
import jinja2.sandbox

from runner.errors import Problem
from runner.expect import expect_templates
from runner.load import PathKey
from runner.spec import ImagePart, Message, TextTemplate
from runner.validate_context import SpecFile


@lru_cache(maxsize=512)
def parse_template(env: jinja2.Environment, source: str) -> jinja2.nodes.Template:
    """A template's syntax tree; parsed once however many checks look at it."""
    return env.parse(source)


@lru_cache(maxsize=512)
def _undeclared(env: jinja2.Environment, source: str) -> frozenset[str]:
    """The variables a template reads; specs often share prompts, so this is cached too."""
    return frozenset(jinja2.meta.find_undeclared_variables(parse_template(env, source)))


def build_messages(file: SpecFile, problems: list[Problem]) -> tuple[Message, ...]:
    """The spec's messages with their texts as checked templates."""
    return tuple(_message(file, i, m, problems) for i, m in enumerate(file.data["messages"]))


def _message(file: SpecFile, index: int, raw: dict[str, Any], problems: list[Problem]) -> Message:
    path: PathKey = ("messages", index)
    content = raw.get("content")
    fields = {k: v for k, v in raw.items() if k not in ("role", "content")}
    if isinstance(content, str):
        return Message(raw["role"], _template(file, (*path, "content"), content, problems), fields)
    if isinstance(content, list):
        parts = tuple(
            _part(file, (*path, "content", i), part, problems) for i, part in enumerate(content)
        )
        return Message(raw["role"], parts, fields)
    return Message(raw["role"], None, fields)


def _part(
    file: SpecFile, path: PathKey, part: dict[str, Any], problems: list[Problem]
) -> dict[str, Any] | TextTemplate | ImagePart:
    if part.get("type") == "text" and isinstance(part.get("text"), str):
        return _template(file, (*path, "text"), part["text"], problems)
    image = part.get("image_url")
    if isinstance(image, dict) and isinstance(image.get("path"), str):
        template = _template(file, (*path, "image_url", "path"), image["path"], problems)
        return ImagePart(template, file.folder_of(path), image.get("detail"))
    return part


def _template(file: SpecFile, path: PathKey, source: str, problems: list[Problem]) -> TextTemplate:
    doc = file.doc
    pos = doc.position(path)
    line, column = pos.line, pos.column
    display = doc.file_of(pos)
    if pos.block:
        line, column = line + 1, _indent_column(doc.source_of(pos)[1], line + 1)
    template = TextTemplate(source, display, line, column)
    try:
        parsed = parse_template(file.env, source)
    except jinja2.TemplateSyntaxError as exc:
        at = line + (exc.lineno or 1) - 1
        problems.append(
            Problem(
                display,
                f"template syntax error: {exc.message}",
                at,
                column if at == line else 1,
                _syntax_hint(exc.message or ""),
            )
        )
    else:
        for message, hint in _template_hazards(file.env, parsed):
            problems.append(Problem(display, message, line, column, hint))
    return template


def variables_without_value(file: SpecFile, problems: list[Problem]) -> set[str]:
    """Variables the templates use that ``vars`` does not give; reported unless cases may give
    them (their rows are checked instead)."""
    defaults = file.data.get("vars") or {}
    has_cases = "cases" in file.data
    reported: set[str] = set()
    for path, source in chain(file.template_sources(), expect_templates(file.data)):
        try:
            used = _undeclared(file.env, source)
        except jinja2.TemplateSyntaxError:
            continue
        missing = used - defaults.keys()
        if has_cases:
            reported |= missing
            continue
        for name in sorted(missing - reported):
            reported.add(name)
            problems.append(
                file.problem(
                    path,
                    f"template uses the variable '{name}', which has no value",
                    f"add it under 'vars:' (e.g. vars: {{{name}: ...}}) or pass "
                    f"--var {name}=... when running",
                )
            )
    return reported


def _indent_column(text: str, line: int) -> int:
    lines = text.splitlines()
    if 0 < line <= len(lines):
        content = lines[line - 1]
        return len(content) - len(content.lstrip()) + 1
    return 1


def _template_hazards(
    env: jinja2.Environment, parsed: jinja2.nodes.Template
) -> Iterator[tuple[str, str]]:
    """What the sandbox would refuse when rendering, found without rendering: private
    attributes (``__class__``, ``_Class__private``) and includes that are missing or leave
    templates/. Keys like ``data._id`` of a mapping are fine: the sandbox allows them."""
    for node in parsed.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem)):
        name = node.attr if isinstance(node, jinja2.nodes.Getattr) else None
        if isinstance(node, jinja2.nodes.Getitem) and isinstance(node.arg, jinja2.nodes.Const):
            name = node.arg.value if isinstance(node.arg.value, str) else None
        if name is not None and "__" in name:
            yield (
                f"template uses the attribute '{name}', which templates may not reach",
                "templates may only use the variables they are given",
            )
    for node in parsed.find_all(jinja2.nodes.Filter):
        if node.name == "attr" and node.args and isinstance(node.args[0], jinja2.nodes.Const):
            name = node.args[0].value
            if isinstance(name, str) and "__" in name:
                yield (
                    f"template uses the attribute '{name}', which templates may not reach",
                    "templates may only use the variables they are given",
                )
    for node in parsed.find_all(jinja2.nodes.Const):
        if isinstance(node.value, str) and "{" in node.value and "__" in node.value:
            yield (
                f"template formats with a private attribute: {node.value!r}",
                "templates may only use the variables they are given",
            )
    loads = (
        jinja2.nodes.Include,
        jinja2.nodes.Import,
        jinja2.nodes.FromImport,
        jinja2.nodes.Extends,
    )
    for statement in parsed.find_all(loads):
        if not getattr(statement, "ignore_missing", False):
            yield from _include_hazards(env, statement.template)  # type: ignore[attr-defined]


def _include_hazards(
    env: jinja2.Environment, template: jinja2.nodes.Expr
) -> Iterator[tuple[str, str]]:
    """An include of a fixed name (or list of names) must find a file inside templates/."""
    items = (
        template.items
        if isinstance(template, jinja2.nodes.List | jinja2.nodes.Tuple)
        else [template]
    )
    names = [
        i.value for i in items if isinstance(i, jinja2.nodes.Const) and isinstance(i.value, str)
    ]
    if len(names) != len(items) or not names or env.loader is None:
        return  # a name computed at render time; the sandboxed loader checks it then
    for name in names:
        try:
            env.loader.get_source(env, name)
            return
        except jinja2.TemplateNotFound:
            continue
        except jinja2.sandbox.SecurityError as exc:
            yield f"template tried something unsafe: {exc}", "keep included files in templates/"
            return
    yield (
        f"template include not found: {', '.join(names)}",
        "includes are looked up in the project's templates/ folder",
    )


def _syntax_hint(message: str) -> str | None:
    if "unexpected '}'" in message or "unexpected end of template" in message:
        return "check that every '{{' has a matching '}}' and every '{%' a matching '%}'"
    if "Encountered unknown tag" in message:
        return "a block started with '{% if %}' or '{% for %}' needs its '{% end... %}'"
    return None
