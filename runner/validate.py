"""Check spec files and turn them into Spec objects.

Two layers of checks, all problems of all files reported in one pass:
1. the published JSON Schema (``schemas/spec.schema.json``): keys, types, ranges;
2. what a schema cannot see but costs money when wrong: Jinja syntax, template variables that
   have no value, schema ``$ref`` files that are missing or broken, response schemas that break
   the provider's strict-mode rules, duplicate tool names, a ``tool_choice`` naming no tool.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import jinja2.nodes
import jinja2.sandbox
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from runner.cases import DATA_SUFFIXES, CaseSource, check_cases
from runner.errors import Problem, SpecError
from runner.explain import explain
from runner.extends import with_bases
from runner.load import Document, PathKey, Position, load_yaml, read_text
from runner.project import display_path, find_project_root, resolve_inside
from runner.providers import BUILTIN_PROVIDERS, OFFLINE
from runner.render import template_environment
from runner.spec import (
    RUNNER_KEYS,
    Message,
    OutputSchema,
    Provider,
    Spec,
    TextTemplate,
    Tool,
)
from runner.strict import strict_mode_problems

SPEC_SUFFIXES = (".yaml", ".yml")
# Folders inside a spec folder that hold other things than specs.
NOT_SPEC_FOLDERS = frozenset({"data", "templates", "schemas", "runs"})


@dataclass
class Validation:
    """The outcome of validating many files: the good specs and every problem found."""

    specs: list[Spec] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def spec_schema_text() -> str:
    """The published spec JSON Schema, as text."""
    return resources.files("runner").joinpath("spec.schema.json").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _spec_validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(spec_schema_text()))


@lru_cache(maxsize=1)
def _spec_properties() -> frozenset[str]:
    return frozenset(json.loads(spec_schema_text())["properties"])


@lru_cache(maxsize=256)
def _schema_error(schema_json: str) -> str | None:
    """Why a JSON Schema (as canonical JSON) is not valid, or None; checked once per schema.

    Checking against the 2020-12 metaschema costs milliseconds, and a folder of specs often
    shares one response schema.
    """
    try:
        Draft202012Validator.check_schema(json.loads(schema_json))
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"not a valid JSON Schema: {exc.message}" + (f" (at {where})" if where else "")
    return None


@lru_cache(maxsize=512)
def _parse(env: jinja2.Environment, source: str) -> jinja2.nodes.Template:
    """A template's syntax tree; parsed once however many checks look at it."""
    return env.parse(source)


@lru_cache(maxsize=512)
def _undeclared(env: jinja2.Environment, source: str) -> frozenset[str]:
    """The variables a template reads; specs often share prompts, so this is cached too."""
    return frozenset(jinja2.meta.find_undeclared_variables(_parse(env, source)))


@lru_cache(maxsize=64)
def _field_validator(key: str) -> Draft202012Validator:
    """A validator for one request field's value, as the spec schema defines it."""
    schema = json.loads(spec_schema_text())
    return Draft202012Validator({"$defs": schema.get("$defs", {}), **schema["properties"][key]})


def find_spec_files(paths: Iterable[Path]) -> list[Path]:
    """Every spec file named by ``paths``: files as given, folders searched recursively.

    In folders, files and folders whose names start with '.' or '_' are skipped (so a base
    spec or partial can be named ``_base.yaml``), as are folders named data, templates,
    schemas and runs.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(_walk(path)))
        else:
            found.append(path)
    return found


def _walk(folder: Path) -> Iterator[Path]:
    for entry in folder.iterdir():
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_dir():
            if entry.name not in NOT_SPEC_FOLDERS:
                yield from _walk(entry)
        elif entry.suffix in SPEC_SUFFIXES:
            yield entry


def validate_paths(paths: Iterable[Path]) -> Validation:
    """Validate every spec file under ``paths``, collecting all problems."""
    result = Validation()
    for path in find_spec_files(paths):
        result.files += 1
        try:
            result.specs.append(load_spec(path))
        except SpecError as exc:
            result.problems.extend(exc.problems)
    _check_unique_names(result)
    return result


def _check_unique_names(result: Validation) -> None:
    seen: dict[str, Spec] = {}
    for spec in result.specs:
        first = seen.setdefault(spec.name, spec)
        if first is not spec:
            result.problems.append(
                Problem(
                    spec.display,
                    f"spec name '{spec.name}' is also used by {first.display}",
                    1,
                    1,
                    "give each spec its own 'name:'; outputs are filed under it",
                )
            )


def load_spec(path: Path) -> Spec:
    """Load and fully check one spec file; raise SpecError listing every problem in it."""
    display = display_path(path)
    doc, bases = with_bases(load_yaml(path, display))
    problems = _schema_problems(doc, display)
    if problems:
        raise SpecError(problems)
    checker = _SpecChecker(doc, display, bases)
    spec = checker.build()
    if checker.problems:
        raise SpecError(sorted(checker.problems, key=lambda p: (p.line or 0, p.column or 0)))
    return spec


def _schema_problems(doc: Document, display: str) -> list[Problem]:
    if not isinstance(doc.data, dict):
        what = "is empty" if doc.data is None else "is not a mapping of keys to values"
        return [
            Problem(
                display,
                f"this spec {what}",
                1,
                1,
                "a spec starts with 'version: 1' and has 'model:' and 'messages:'",
            )
        ]
    errors = _spec_validator().iter_errors(doc.data)
    problems = {(p.line, p.column, p.message): p for p in (explain(e, doc) for e in errors)}
    return sorted(problems.values(), key=lambda p: (p.line or 0, p.column or 0))


class _SpecChecker:
    """Semantic checks on a schema-valid spec, building the Spec as it goes."""

    def __init__(self, doc: Document, display: str, bases: tuple[Document, ...] = ()):
        self.doc = doc
        self.bases = bases
        self.data: dict[str, Any] = doc.data
        self.display = display
        self.root = find_project_root(doc.path)
        self.env = template_environment(self.root)
        self.problems: list[Problem] = []

    def problem(
        self, path: PathKey, message: str, hint: str | None = None, *, key: bool = False
    ) -> None:
        self.problems.append(self.doc.problem(path, message, hint, key=key))

    def build(self) -> Spec:
        data = self.data
        params = {
            k: v for k, v in data.items() if k not in RUNNER_KEYS and k not in ("model", "messages")
        }
        output = self._output_schema(params)
        tools = self._tools(params)
        messages = tuple(self._message(i, m) for i, m in enumerate(data["messages"]))
        needed = self._check_variables(data.get("vars") or {}, has_cases="cases" in data)
        cases = self._cases(needed)
        matrix = self._matrix()
        self._check_tool_choice(params, tools)
        self._check_token_limits()
        self._check_json_mode_mentions_json(output)
        self._check_provider_label()
        params.update(data.get("extra_body") or {})
        digest = hashlib.sha256(self.doc.text.encode())
        for base in self.bases:
            digest.update(base.text.encode())
        return Spec(
            path=self.doc.path,
            display=self.display,
            sha256=digest.hexdigest(),
            name=data.get("name") or self.doc.path.stem,
            model=data["model"],
            messages=messages,
            params=params,
            vars=data.get("vars") or {},
            provider=_provider(data.get("provider")),
            description=data.get("description"),
            tools=tools,
            output=output,
            cases=cases,
            matrix=matrix,
            bases=tuple(base.display for base in self.bases),
        )

    # --- messages and templates -------------------------------------------------------

    def _message(self, index: int, raw: dict[str, Any]) -> Message:
        path: PathKey = ("messages", index)
        content = raw.get("content")
        fields = {k: v for k, v in raw.items() if k not in ("role", "content")}
        if isinstance(content, str):
            return Message(raw["role"], self._template((*path, "content"), content), fields)
        if isinstance(content, list):
            parts = tuple(self._part((*path, "content", i), part) for i, part in enumerate(content))
            return Message(raw["role"], parts, fields)
        return Message(raw["role"], None, fields)

    def _part(self, path: PathKey, part: dict[str, Any]) -> dict[str, Any] | TextTemplate:
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            return self._template((*path, "text"), part["text"])
        return part

    def _template(self, path: PathKey, source: str) -> TextTemplate:
        pos = self.doc.position(path)
        line, column = pos.line, pos.column
        file = self.doc.file_of(pos)
        if pos.block:
            line, column = line + 1, _indent_column(self.doc.source_of(pos)[1], line + 1)
        template = TextTemplate(source, file, line, column)
        try:
            parsed = _parse(self.env, source)
        except jinja2.TemplateSyntaxError as exc:
            at = line + (exc.lineno or 1) - 1
            self.problems.append(
                Problem(
                    file,
                    f"template syntax error: {exc.message}",
                    at,
                    column if at == line else 1,
                    _syntax_hint(exc.message or ""),
                )
            )
        else:
            for message, hint in _template_hazards(self.env, parsed):
                self.problems.append(Problem(file, message, line, column, hint))
        return template

    def _check_variables(self, defaults: dict[str, Any], has_cases: bool) -> set[str]:
        """Variables the templates use that ``vars`` does not give; reported unless cases
        may give them (their rows are checked instead)."""
        reported: set[str] = set()
        for path, source in self._template_sources():
            try:
                used = _undeclared(self.env, source)
            except jinja2.TemplateSyntaxError:
                continue
            missing = used - defaults.keys()
            if has_cases:
                reported |= missing
                continue
            for name in sorted(missing - reported):
                reported.add(name)
                self.problem(
                    path,
                    f"template uses the variable '{name}', which has no value",
                    f"add it under 'vars:' (e.g. vars: {{{name}: ...}}) or pass "
                    f"--var {name}=... when running",
                )
        return reported

    # --- cases and matrix ---------------------------------------------------------------

    def _cases(self, needed: set[str]) -> CaseSource | None:
        value = self.data.get("cases")
        if value is None:
            return None
        pos = self.doc.position(("cases",))
        if isinstance(value, list):
            source = CaseSource(self.doc.file_of(pos), inline=tuple(value))

            def row_problem(number: int | None, message: str, hint: str | None) -> Problem:
                where: PathKey = ("cases", number - 1) if number else ("cases",)
                return self.doc.problem(where, message.replace("row", "case", 1), hint)

        else:
            file = self._data_file(str(value), pos)
            if file is None:
                return None
            source = CaseSource(display_path(file), file=file)

            def row_problem(number: int | None, message: str, hint: str | None) -> Problem:
                return Problem(source.display, message, number, None, hint)

        try:
            return check_cases(source, needed, row_problem)
        except SpecError as exc:
            self.problems.extend(exc.problems)
            return None

    def _data_file(self, reference: str, pos: Position) -> Path | None:
        folder = self.doc.source_of(pos)[0].resolve().parent
        target = resolve_inside(self.root, folder, reference)
        if target is None:
            self.problem(
                ("cases",),
                f"the data file '{reference}' is outside the project folder {self.root}",
                "keep data files inside the project, e.g. in a data/ folder beside the spec",
            )
        elif target.suffix.lower() not in DATA_SUFFIXES:
            self.problem(
                ("cases",),
                f"'{reference}' is not a data file this runner reads",
                "use .csv, .jsonl, .json, .yaml or .yml",
            )
        elif not target.is_file():
            self.problem(
                ("cases",),
                f"data file not found: {reference}",
                "the path is relative to the folder of the spec file",
            )
        else:
            return target
        return None

    def _matrix(self) -> dict[str, tuple[Any, ...]]:
        matrix = self.data.get("matrix") or {}
        for key, values in matrix.items():
            if key in RUNNER_KEYS or key == "messages" or key not in _spec_properties():
                self.problem(
                    ("matrix", key),
                    f"the matrix cannot vary '{key}'",
                    "vary request fields such as model, temperature or top_p; "
                    "vary variables with 'cases'",
                    key=True,
                )
                continue
            validator = _field_validator(key)
            for i, value in enumerate(values):
                for error in validator.iter_errors(value):
                    self.problem(("matrix", key, i), f"matrix {key}[{i}]: {error.message}")
        return {key: tuple(values) for key, values in matrix.items()}

    def _template_sources(self) -> Iterator[tuple[PathKey, str]]:
        for i, message in enumerate(self.data["messages"]):
            content = message.get("content")
            if isinstance(content, str):
                yield ("messages", i, "content"), content
            elif isinstance(content, list):
                for j, part in enumerate(content):
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        yield ("messages", i, "content", j, "text"), part["text"]

    # --- structured output and tools ----------------------------------------------------

    def _output_schema(self, params: dict[str, Any]) -> OutputSchema | None:
        response_format = params.get("response_format")
        if not response_format or response_format.get("type") == "text":
            return None
        if response_format["type"] == "json_object":
            return OutputSchema("json_object")
        spec = response_format["json_schema"]
        path: PathKey = ("response_format", "json_schema", "schema")
        schema = self._schema(path, spec.get("schema", {}))
        if schema is not None:
            if spec.get("strict"):
                for where, message in strict_mode_problems(schema):
                    self.problem(
                        path,
                        f"response schema breaks strict mode: {message}"
                        + (f" (at {where})" if where else ""),
                        "fix the schema, or set strict: false",
                    )
            params["response_format"] = {
                **response_format,
                "json_schema": {**spec, "schema": schema},
            }
        return OutputSchema("json_schema", schema, spec.get("name"))

    def _tools(self, params: dict[str, Any]) -> tuple[Tool, ...]:
        raw_tools = params.get("tools") or []
        tools: list[Tool] = []
        resolved: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i, raw in enumerate(raw_tools):
            function = raw.get("function")
            if raw.get("type") != "function" or not isinstance(function, dict):
                resolved.append(raw)
                continue
            name = function["name"]
            if name in seen:
                self.problem(
                    ("tools", i, "function", "name"),
                    f"two tools are named '{name}'",
                    "give each tool its own name",
                )
            seen.add(name)
            path: PathKey = ("tools", i, "function", "parameters")
            parameters = self._schema(path, function.get("parameters", {"type": "object"}))
            parameters = parameters if parameters is not None else {}
            if function.get("strict"):
                for where, message in strict_mode_problems(parameters):
                    self.problem(
                        path,
                        f"tool parameters break strict mode: {message}"
                        + (f" (at {where})" if where else ""),
                    )
            tools.append(Tool(name, parameters, function.get("description")))
            if "parameters" in function:
                function = {**function, "parameters": parameters}
            resolved.append({**raw, "function": function})
        if raw_tools:
            params["tools"] = resolved
        return tuple(tools)

    def _schema(self, path: PathKey, value: Any) -> dict[str, Any] | None:
        """A JSON Schema given inline or as ``{$ref: file}``, with file refs inlined."""
        folder = self.doc.source_of(self.doc.position(path))[0].resolve().parent
        try:
            schema = _inline_refs(value, folder, self.root, frozenset())
        except _RefProblem as exc:
            self.problem((*path, "$ref") if "$ref" in value else path, exc.message, exc.hint)
            return None
        error = _schema_error(json.dumps(schema, sort_keys=True))
        if error is not None:
            self.problem(path, error, "see https://json-schema.org/understanding-json-schema/")
            return None
        return schema

    def _check_tool_choice(self, params: dict[str, Any], tools: tuple[Tool, ...]) -> None:
        choice = params.get("tool_choice")
        if choice is None:
            return
        if not params.get("tools") and choice != "none":
            self.problem(
                ("tool_choice",),
                "tool_choice is set but the spec defines no tools",
                "add 'tools:' or remove 'tool_choice'",
                key=True,
            )
        if isinstance(choice, dict):
            name = choice.get("function", {}).get("name")
            names = [t.name for t in tools]
            if name not in names:
                self.problem(
                    ("tool_choice", "function", "name"),
                    f"tool_choice names the tool '{name}', which is not defined",
                    f"defined tools: {', '.join(names)}" if names else None,
                )

    def _check_provider_label(self) -> None:
        """A built-in provider's name on another base_url would send that provider's key
        (GROQ_API_KEY, ...) to the URL a spec chose; a spec from elsewhere could steal it."""
        provider = self.data.get("provider")
        if isinstance(provider, dict) and provider.get("name") in (*BUILTIN_PROVIDERS, OFFLINE):
            self.problem(
                ("provider", "name"),
                f"'{provider['name']}' is a built-in provider; a provider with its own "
                "base_url needs another name",
                "e.g. name: my-proxy, with api_key_env: naming the key it needs",
            )

    def _check_token_limits(self) -> None:
        if "max_tokens" in self.data and "max_completion_tokens" in self.data:
            self.problem(
                ("max_tokens",),
                "both max_tokens and max_completion_tokens are set",
                "keep only max_completion_tokens (max_tokens is its old name)",
                key=True,
            )

    def _check_json_mode_mentions_json(self, output: OutputSchema | None) -> None:
        if output is None or output.kind != "json_object":
            return
        if not any("json" in source.lower() for _, source in self._template_sources()):
            self.problem(
                ("response_format", "type"),
                "JSON mode needs the word 'JSON' in the "
                "messages, or the provider rejects the request",
                "ask for JSON in the system or user message",
            )


class _RefProblem(Exception):
    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint


def _inline_refs(value: Any, folder: Path, root: Path, seen: frozenset[Path]) -> Any:
    """``value`` with every ``$ref`` to another file replaced by that file's schema."""
    if isinstance(value, list):
        return [_inline_refs(v, folder, root, seen) for v in value]
    if not isinstance(value, dict):
        return value
    ref = value.get("$ref")
    if isinstance(ref, str) and not ref.startswith("#"):
        target = _load_ref(ref, folder, root, seen)
        return _inline_refs(target[0], target[1].parent, root, seen | {target[1]})
    return {k: _inline_refs(v, folder, root, seen) for k, v in value.items()}


def _load_ref(ref: str, folder: Path, root: Path, seen: frozenset[Path]) -> tuple[Any, Path]:
    if "://" in ref:
        raise _RefProblem(f"$ref '{ref}' points at a URL", "refer to a file in the project")
    file_part, _, pointer = ref.partition("#")
    target = resolve_inside(root, folder, file_part)
    if target is None:
        raise _RefProblem(
            f"$ref '{ref}' points outside the project folder {root}",
            "keep schema files inside the project, e.g. under schemas/",
        )
    if target in seen:
        raise _RefProblem(f"$ref '{ref}' refers back to itself through other files")
    if not target.is_file():
        raise _RefProblem(
            f"$ref file not found: {ref}", "the path is relative to the folder of the spec file"
        )
    try:
        document = json.loads(read_text(target, display_path(target)))
    except json.JSONDecodeError as exc:
        raise _RefProblem(
            f"$ref file {ref} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except SpecError as exc:
        raise _RefProblem(f"$ref file {ref}: {exc.problems[0].message}") from None
    for part in (p for p in pointer.split("/") if p):
        if not isinstance(document, dict) or part not in document:
            raise _RefProblem(f"$ref '{ref}': the file has no '{pointer}'")
        document = document[part]
    return document, target


def _provider(value: Any) -> Provider | None:
    if value is None:
        return None
    if isinstance(value, str):
        return Provider(value)
    return Provider(value.get("name") or "custom", value["base_url"], value.get("api_key_env"))


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


__all__ = ["Validation", "find_spec_files", "load_spec", "validate_paths"]
