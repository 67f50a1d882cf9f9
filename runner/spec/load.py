"""Load YAML files into plain data while remembering where every value came from.

PyYAML's composer gives nodes with line/column marks; we build Python values from those nodes
ourselves so that each value's path (``("messages", 0, "content")``) maps to its position.
Only plain YAML types are built (no Python objects), and documents that would expand into huge
structures through aliases are refused before they exhaust memory.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from runner.errors import Problem, SpecError
from runner.spec.document import Document, PathKey, Position
from runner.spec.hints import unquoted_template, yaml_mistake

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_VALUES = 200_000
MAX_DEPTH = 64

_PLAIN_TAGS = frozenset(
    "tag:yaml.org,2002:" + name
    for name in (
        "str",
        "int",
        "float",
        "bool",
        "null",
        "map",
        "seq",
        "timestamp",
        "binary",
        "merge",
    )
)
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: Path, display: str | None = None) -> Document:
    """Read and parse one YAML file, raising SpecError with the file position on failure."""
    name = display or str(path)
    text = read_text(path, name)
    return parse_yaml(text, path, name)


def read_text(path: Path, display: str, limit: int = MAX_FILE_BYTES) -> str:
    """Read a text file as UTF-8, refusing binaries, huge files and unreadable paths."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise SpecError(
                [
                    Problem(
                        display,
                        f"file is too large ({size:,} bytes; the limit is {limit:,})",
                        hint="split it into smaller files",
                    )
                ]
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError([Problem(display, "file not found")]) from None
    except IsADirectoryError:
        raise SpecError([Problem(display, "is a directory, not a file")]) from None
    except OSError as exc:
        raise SpecError([Problem(display, f"cannot read file: {exc.strerror}")]) from None
    if b"\x00" in raw:
        raise SpecError([Problem(display, "is a binary file, not YAML text")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(
            [
                Problem(
                    display,
                    "is not valid UTF-8 text",
                    line,
                    hint="save the file with UTF-8 encoding",
                )
            ]
        ) from None


def parse_yaml(text: str, path: Path, display: str) -> Document:
    """Parse YAML text into a Document; the text must hold exactly one document."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_yaml_problem(display, exc, text)]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(display, f"not valid YAML: {exc}")]) from None
    document = Document(path, None, text=text, display=display)
    if node is None:
        return document
    builder = _Builder(document, display)
    document.data = builder.build(node, ())
    return document


def _yaml_problem(display: str, exc: yaml.MarkedYAMLError, text: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    what = exc.problem or exc.context or "not valid YAML"
    if "expected a single document" in (exc.context or ""):
        what = "holds more than one YAML document ('---'); put each spec in its own file"
    hint = _yaml_hint(what)
    if mark is None:
        return Problem(display, f"YAML syntax error: {what}", hint=hint)
    column = mark.column + 1
    if _indented_with_tab(text, mark.line):
        what, hint = "a tab is used for indentation", _yaml_hint("tab")
    elif mistake := yaml_mistake(text, mark.line):
        what, hint, column = mistake
    return Problem(display, f"YAML syntax error: {what}", mark.line + 1, column, hint)


def _indented_with_tab(text: str, line_index: int) -> bool:
    lines = text.splitlines()
    if line_index >= len(lines):
        return False
    line = lines[line_index]
    return "\t" in line[: len(line) - len(line.lstrip())]


def _yaml_hint(what: str) -> str | None:
    if "tab" in what:
        return "YAML does not allow tabs for indentation; use spaces"
    if "mapping values are not allowed" in what:
        return "a ':' inside a value needs the whole value in quotes"
    if "could not find expected ':'" in what:
        return "each line of a mapping needs 'key: value'; check indentation and quotes"
    if "found undefined alias" in what:
        return "define the anchor (&name) before using the alias (*name)"
    return None


class _Builder:
    """Builds plain Python values from YAML nodes, recording positions and enforcing limits."""

    def __init__(self, document: Document, display: str):
        self.document = document
        self.display = display
        self.count = 0
        self.constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: PathKey, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            self._refuse(
                node,
                f"expands to more than {MAX_VALUES:,} values (aliases that repeat each other?)",
                "remove the repeated anchors and aliases",
            )
        if depth > MAX_DEPTH:
            self._refuse(
                node, f"is nested more than {MAX_DEPTH} levels deep", "flatten the structure"
            )
        if node.tag not in _PLAIN_TAGS:
            self._refuse(
                node, f"uses the tag '{node.tag}'", "specs hold plain data; remove the tag"
            )
        if path not in self.document.positions:
            self.document.positions[path] = Position(
                node.start_mark.line + 1, node.start_mark.column + 1
            )
        if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
            found = self.document.positions[path]
            self.document.positions[path] = replace(found, block=True)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _mapping(self, node: yaml.MappingNode, path: PathKey, depth: int) -> dict[str, Any]:
        self.constructor.flatten_mapping(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._refuse_key(key_node)
            key = str(self._scalar(key_node))
            child = (*path, key)
            mark = key_node.start_mark
            if key in result:
                raise SpecError(
                    [
                        Problem(
                            self.display,
                            f"key '{key}' appears twice in the same mapping",
                            mark.line + 1,
                            mark.column + 1,
                            "delete one of them",
                        )
                    ]
                )
            value_mark = value_node.start_mark
            self.document.positions[child] = Position(
                value_mark.line + 1, value_mark.column + 1, mark.line + 1, mark.column + 1
            )
            result[key] = self.build(value_node, child, depth + 1)
        return result

    def _scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return None
        try:
            value = self.constructor.construct_object(node)
        except yaml.YAMLError:
            value = node.value
        if not isinstance(value, str | int | float | bool | type(None)):
            # Dates, timestamps and binaries stay the text the user wrote: specs are JSON data.
            return node.value
        return value

    def _refuse_key(self, node: yaml.Node) -> None:
        lines = self.document.text.splitlines()
        line = lines[node.start_mark.line] if node.start_mark.line < len(lines) else ""
        mistake = unquoted_template(line)
        if mistake is None:
            self._refuse(node, "uses a list or mapping as a key", "keys must be plain names")
        else:
            message, hint, column = mistake
            problem = Problem(self.display, message, node.start_mark.line + 1, column, hint)
            raise SpecError([problem])

    def _refuse(self, node: yaml.Node, what: str, hint: str) -> None:
        mark = node.start_mark
        raise SpecError(
            [Problem(self.display, f"this document {what}", mark.line + 1, mark.column + 1, hint)]
        )
