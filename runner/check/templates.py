"""Message templates: Jinja syntax, variables without a value, and what the sandbox would refuse.

Templates are parsed (never rendered) here; a parse is cached by its text, since a folder of
specs often shares its prompts.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any

import jinja2
import jinja2.exceptions
import jinja2.meta
import jinja2.nodes

from runner.check.context import SpecFile
from runner.check.names import minus_names, renamed
from runner.errors import Fix, Problem, RunnerError
from runner.spec.cases import DATA_SUFFIXES, ID_COLUMN, CaseSource, read_rows
from runner.spec.document import PathKey
from runner.spec.expectations import expect_templates
from runner.spec.hints import closest, is_slip
from runner.spec.objects import ImagePart, Message, Spec, TextTemplate
from runner.spec.project import display_path, resolve_inside


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
    problems.extend(template_problems(file.env, source, display, line, column))
    return TextTemplate(source, display, line, column)


def template_problems(
    env: jinja2.Environment, source: str, display: str, line: int = 1, column: int = 1
) -> Iterator[Problem]:
    """What is wrong in one template whose first character is at ``display:line:column``:
    syntax, names of filters and tests, what the sandbox would refuse, and (followed into
    templates/) the files it includes or imports from."""
    yield from _problems(env, source, _Place(display, line, column), frozenset())


@dataclass(frozen=True)
class _Place:
    """Where a template's text starts; a node's line inside it maps to a line of the file."""

    display: str
    line: int
    column: int

    def problem(self, lineno: int | None, message: str, hint: str | None) -> Problem:
        at = self.line + (lineno or 1) - 1
        return Problem(self.display, message, at, self.column if at == self.line else 1, hint)


def _problems(
    env: jinja2.Environment, source: str, place: _Place, seen: frozenset[str]
) -> Iterator[Problem]:
    try:
        parsed = parse_template(env, source)
    except jinja2.TemplateSyntaxError as exc:
        message = exc.message or ""
        yield place.problem(exc.lineno, f"template syntax error: {message}", _syntax_hint(message))
        return
    for lineno, message, hint in _template_hazards(env, parsed):
        yield place.problem(lineno, message, hint)
    for statement in parsed.find_all(_LOADS):
        if not getattr(statement, "ignore_missing", False):
            yield from _load_problems(env, statement, place, seen)


def _load_problems(
    env: jinja2.Environment, statement: jinja2.nodes.Node, place: _Place, seen: frozenset[str]
) -> Iterator[Problem]:
    """An include, import or extends of a fixed name must find a file inside templates/, that
    file must be a good template itself, and ``from x import y`` needs x to define y."""
    expr = statement.template  # type: ignore[attr-defined]
    items = expr.items if isinstance(expr, jinja2.nodes.List | jinja2.nodes.Tuple) else [expr]
    names = [
        i.value for i in items if isinstance(i, jinja2.nodes.Const) and isinstance(i.value, str)
    ]
    if len(names) != len(items) or not names or env.loader is None:
        return  # a name computed at render time; the sandboxed loader checks it then
    for name in names:
        try:
            source, filename, _ = env.loader.get_source(env, name)
        except jinja2.TemplateNotFound:
            continue
        except jinja2.exceptions.SecurityError as exc:
            yield place.problem(
                statement.lineno,
                f"template tried something unsafe: {exc}",
                "keep included files in templates/",
            )
            return
        if name in seen:
            return  # a loop of includes; rendering reports it if it is ever taken
        included = _Place(display_path(Path(filename or name)), 1, 1)
        yield from _problems(env, source, included, seen | {name})
        if isinstance(statement, jinja2.nodes.FromImport):
            yield from _missing_imports(env, source, statement, place, name)
        return
    folder = getattr(env.loader, "root", None)
    looked = (
        f"looked for {' and '.join(display_path(folder / name) for name in names)}; "
        if isinstance(folder, Path)
        else ""
    )
    yield place.problem(
        statement.lineno,
        f"template include not found: {', '.join(names)}",
        f"{looked}includes are read from the project's templates/ folder: put the file there",
    )


def _missing_imports(
    env: jinja2.Environment,
    source: str,
    statement: jinja2.nodes.FromImport,
    place: _Place,
    name: str,
) -> Iterator[Problem]:
    try:
        parsed = parse_template(env, source)
    except jinja2.TemplateSyntaxError:
        return
    defined = {m.name for m in parsed.find_all(jinja2.nodes.Macro)}
    for node in parsed.body:
        if isinstance(node, jinja2.nodes.Assign | jinja2.nodes.AssignBlock):
            target = node.target
            names = [target, *target.find_all(jinja2.nodes.Name)]
            defined |= {n.name for n in names if isinstance(n, jinja2.nodes.Name)}
    for item in statement.names:
        wanted = item[0] if isinstance(item, tuple) else item
        if wanted not in defined:
            known = ", ".join(sorted(defined))
            yield place.problem(
                statement.lineno,
                f"'{name}' defines no macro or variable named '{wanted}'",
                f"it defines: {known}" if known else "define it with {% macro ... %} there",
            )


def variables_used(file: SpecFile) -> frozenset[str]:
    """Every template variable the spec's messages, image paths and expect: checks read."""
    used: set[str] = set()
    for _, source in chain(file.template_sources(), expect_templates(file.data)):
        try:
            used |= _undeclared(file.env, source)
        except jinja2.TemplateSyntaxError:
            continue
    return frozenset(used)


def unused_variables(variables: Mapping[str, Any], specs: Iterable[Spec]) -> list[Problem]:
    """A warning for each variable given on the command line (--var, --vars-file) that no
    template of ``specs`` reads, with the closest one they do read (issue 27)."""
    used = {name for spec in specs for name in spec.variables_used}
    problems = []
    for name in variables:
        if name in used:
            continue
        guess = closest(name, used)
        problems.append(
            Problem(
                "--var",
                f"no template uses the variable '{name}' given on the command line",
                hint=f"did you mean '{guess}'? pass --var {guess}=..." if guess else None,
                severity="warning",
                code="unused-variable",
            )
        )
    return problems


def variables_without_value(file: SpecFile, problems: list[Problem]) -> set[str]:
    """Variables the templates use that ``vars`` does not give; reported unless cases may give
    them (their rows are checked instead). A name that is a slip of a variable the spec has
    (a ``vars:`` key, a data-file column, a ``--var``) or that holds a '-' (which Jinja reads
    as a subtraction) is reported at the template, with the template as it should be."""
    defaults = {**(file.data.get("vars") or {}), **file.variables}
    has_cases = "cases" in file.data
    columns = case_columns(file) if has_cases else None
    known = [*defaults, *(columns or ())]
    reported: set[str] = set()
    needed: set[str] = set()  # to be given by every case
    for path, source in chain(file.template_sources(), expect_templates(file.data)):
        try:
            parsed = parse_template(file.env, source)
            used = _undeclared(file.env, source)
        except jinja2.TemplateSyntaxError:
            continue
        missing = used - defaults.keys()
        for written, names in minus_names(parsed, source):
            if set(names) & missing and written not in reported:
                reported.add(written)
                problems.append(_minus_problem(file, path, source, written, known))
            missing -= set(names)
        for name in sorted(missing - reported):
            guess = closest(name, known)
            reported.add(name)
            if has_cases and (columns is None or name in columns or guess is None):
                needed.add(name)  # each row is checked for it
                continue
            problems.append(_unknown_variable(file, path, source, name, guess, has_cases))
    return needed


def _unknown_variable(
    file: SpecFile, path: PathKey, source: str, name: str, guess: str | None, has_cases: bool
) -> Problem:
    message = f"template uses the variable '{name}', which has no value"
    if guess is None:
        hint = (
            f"add it under 'vars:' (e.g. vars: {{{name}: ...}}) or pass --var {name}=... when "
            "running"
        )
        return file.problem(path, message, hint, code="undefined-variable")
    in_vars = guess in (file.data.get("vars") or {}) or guess in file.variables
    where = "a column of the cases" if has_cases and not in_vars else "a variable the spec has"
    fixed = renamed(file.env, source, name, guess)
    return file.problem(
        path,
        message,
        f"did you mean '{guess}', {where}? write {{{{ {guess} }}}}",
        code="undefined-variable",
        fix=Fix("set", path, source, value=fixed) if fixed and is_slip(name, guess) else None,
    )


def _minus_problem(
    file: SpecFile, path: PathKey, source: str, written: str, known: list[str]
) -> Problem:
    """``{{ customer-name }}``: Jinja reads a subtraction of two variables."""
    parts = written.split("-")
    underscored = written.replace("-", "_")
    message = (
        f"template reads '{written}' as {' minus '.join(repr(p) for p in parts)}: a '-' in a "
        "name is a subtraction in Jinja"
    )
    if underscored in known:
        fixed = renamed(file.env, source, written, underscored)
        return file.problem(
            path,
            message,
            f"write {{{{ {underscored} }}}}",
            code="variable-with-minus",
            fix=Fix("set", path, source, value=fixed) if fixed else None,
        )
    use = f"write {{{{ {underscored} }}}}"
    hint = f"name the variable {underscored} (letters, digits and '_') and {use}"
    if written in known:
        hint = f"rename the variable '{written}' to {underscored} and {use}"
    return file.problem(path, message, hint, code="variable-with-minus")


def case_columns(file: SpecFile) -> set[str] | None:
    """The variables the spec's cases give (an inline list's keys, a data file's first row,
    a files: pattern's path/name/stem); None when they cannot be read here (then every row is
    checked, and the data file's own problems are reported by the cases check)."""
    value = file.data.get("cases")
    if isinstance(value, list):
        return {str(k) for row in value if isinstance(row, dict) for k in row}
    if isinstance(value, dict):
        return {ID_COLUMN, "path", "name", "stem"}
    if not isinstance(value, str):
        return None
    target = resolve_inside(file.root, file.folder_of(("cases",)), value)
    if target is None or target.suffix.lower() not in DATA_SUFFIXES or not target.is_file():
        return None
    try:
        first = next(read_rows(CaseSource(value, file=target)), None)
    except (RunnerError, UnicodeDecodeError, csv.Error, OSError):
        return None
    row = first[1] if first is not None else None
    return {str(k) for k in row} if isinstance(row, dict) else None


def _indent_column(text: str, line: int) -> int:
    lines = text.splitlines()
    if 0 < line <= len(lines):
        content = lines[line - 1]
        return len(content) - len(content.lstrip()) + 1
    return 1


_JINJA_DOCS = "https://jinja.palletsprojects.com/en/stable/templates/"
_LOADS = (
    jinja2.nodes.Include,
    jinja2.nodes.Import,
    jinja2.nodes.FromImport,
    jinja2.nodes.Extends,
)


def _template_hazards(
    env: jinja2.Environment, parsed: jinja2.nodes.Template
) -> Iterator[tuple[int | None, str, str | None]]:
    """(line in the template, message, hint) for what rendering would refuse, found without
    rendering: unknown filters and tests, private attributes (``__class__``,
    ``_Class__private``). Keys like ``data._id`` of a mapping are fine: the sandbox allows them."""
    private = "templates may only use the variables they are given"
    for node in parsed.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem)):
        name = node.attr if isinstance(node, jinja2.nodes.Getattr) else None
        if isinstance(node, jinja2.nodes.Getitem) and isinstance(node.arg, jinja2.nodes.Const):
            name = node.arg.value if isinstance(node.arg.value, str) else None
        if name is not None and "__" in name:
            yield (
                node.lineno,
                f"template uses the attribute '{name}', which templates may not reach",
                private,
            )
    for node in parsed.find_all(jinja2.nodes.Filter):
        if node.name == "attr" and node.args and isinstance(node.args[0], jinja2.nodes.Const):
            name = node.args[0].value
            if isinstance(name, str) and "__" in name:
                yield (
                    node.lineno,
                    f"template uses the attribute '{name}', which templates may not reach",
                    private,
                )
    for node in parsed.find_all(jinja2.nodes.Const):
        if isinstance(node.value, str) and "{" in node.value and "__" in node.value:
            yield node.lineno, f"template formats with a private attribute: {node.value!r}", private
    for kind, known, nodes in (
        ("filter", env.filters, parsed.find_all(jinja2.nodes.Filter)),
        ("test", env.tests, parsed.find_all(jinja2.nodes.Test)),
    ):
        for node in nodes:
            if node.name not in known:
                yield node.lineno, *_unknown(kind, node.name, known)


def _unknown(kind: str, name: str, known: Mapping[str, Any]) -> tuple[str, str]:
    guess = difflib.get_close_matches(name, list(known), n=1)
    hint = (
        f"did you mean '{guess[0]}'?"
        if guess
        else f"see Jinja's list of built-in {kind}s: {_JINJA_DOCS}#list-of-builtin-{kind}s"
    )
    return f"template uses the {kind} '{name}', which does not exist", hint


def _syntax_hint(message: str) -> str | None:
    if "unexpected '}'" in message or "unexpected end of template" in message:
        return "check that every '{{' has a matching '}}' and every '{%' a matching '%}'"
    if "Encountered unknown tag" in message:
        return "a block started with '{% if %}' or '{% for %}' needs its '{% end... %}'"
    return None
