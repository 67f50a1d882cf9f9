"""Write docs/reference/spec-keys.md, the spec key reference, from schemas/spec.schema.json.

    python scripts/spec_keys.py           # rewrite the page
    python scripts/spec_keys.py --check   # exit 1 when the page is not what the schema gives

Every key of the schema gets a row (type, default, description), top-level keys first, then
one section per nested object (a message, a tool, a check, ...). tests/test_docs.py fails when
the committed page differs from what this script writes, so a key added to the schema without
regenerating the page is caught.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schemas" / "spec.schema.json"
PAGE = ROOT / "docs" / "reference" / "spec-keys.md"

# Keys of a spec that belong to runner; every other top-level key is a field of the request
# (kept in step with runner's own list by tests/test_docs.py).
RUNNER_KEYS = frozenset(
    {
        "version",
        "name",
        "description",
        "provider",
        "vars",
        "extra_body",
        "extends",
        "cases",
        "matrix",
        "expect",
    }
)
# "Default: the file name." or "Default false." in a description names the default.
_DEFAULT_SENTENCE = re.compile(r"\bDefault(?:: (.+?)|( (?:true|false|-?\d+)))\.(?=\s|$)")

Schema = dict[str, Any]


@dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    description: str


@dataclass(frozen=True)
class Section:
    path: str  # "" for the top level, else e.g. "messages[]"
    description: str
    rows: tuple[Row, ...]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, do not write")
    args = parser.parse_args(argv)
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    page = render_page(schema)
    if args.check:
        if PAGE.read_text(encoding="utf-8") != page:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python scripts/spec_keys.py")
            return 1
        return 0
    PAGE.write_text(page, encoding="utf-8")
    return 0


def render_page(schema: Schema) -> str:
    """The Markdown page for ``schema``."""
    lines = [
        "# Spec key reference",
        "",
        "<!-- Generated from schemas/spec.schema.json by scripts/spec_keys.py: edit the "
        "schema's descriptions, then run python scripts/spec_keys.py. -->",
        "",
        "Every key a spec may hold, made from runner's JSON Schema of specs "
        "(`runner schema` prints it). Keys that are not runner's own are fields of the "
        'request, sent as they are: for those, "not sent" means the provider\'s own default '
        "applies. [The spec format](../specs.md) explains how the keys fit together.",
        "",
    ]
    for section in sections(schema):
        title = "Top-level keys" if not section.path else f"`{section.path}`"
        lines += [f"## {title}", ""]
        if section.description:
            lines += [_cell(section.description, escape=False), ""]
        lines += ["| key | type | default | description |", "|---|---|---|---|"]
        lines += [
            f"| `{row.key}` | {_cell(row.type)} | {_cell(row.default)} | {_cell(row.description)} |"
            for row in section.rows
        ]
        lines.append("")
    return "\n".join(lines)


def sections(schema: Schema) -> Iterator[Section]:
    """The top level, then every nested object with keys, each followed by its own."""
    yield from _section(schema, "", schema, set(schema.get("then", {}).get("required", ())))


def _section(
    schema: Schema, path: str, node: Schema, required_unless_extends: set[str]
) -> Iterator[Section]:
    top = path == ""
    required = set(node.get("required", ()))
    rows = []
    children: list[tuple[str, Schema]] = []
    for key, raw in node.get("properties", {}).items():
        prop = _resolve(schema, raw)
        if key in required_unless_extends:
            need = "required, unless a base spec (extends) gives it"
        elif key in required:
            need = "required"
        else:
            need = default_of(prop, request_field=top and key not in RUNNER_KEYS)
        rows.append(Row(key, describe_type(schema, prop), need, _description(raw, prop)))
        children += [
            (f"{path + '.' if path else ''}{key}{suffix}", child)
            for suffix, child in _objects_inside(schema, prop)
        ]
    yield Section(path, "" if top else _description(node, node), tuple(rows))
    for child_path, child in children:
        yield from _section(schema, child_path, child, set())


def _objects_inside(schema: Schema, prop: Schema) -> Iterator[tuple[str, Schema]]:
    """The objects with keys that a value of ``prop`` may be or hold: ("", obj) for the value
    itself, ("[]", obj) for the items of a list."""
    for option in _options(schema, prop):
        if option.get("properties"):
            yield "", option
        items = option.get("items")
        if isinstance(items, dict):
            for item in _options(schema, _resolve(schema, items)):
                if item.get("properties"):
                    yield "[]", item


def _options(schema: Schema, node: Schema) -> list[Schema]:
    alternatives = node.get("anyOf") or node.get("oneOf")
    if not alternatives or "properties" in node:
        return [node]
    return [option for alt in alternatives for option in _options(schema, _resolve(schema, alt))]


def _resolve(schema: Schema, node: Schema) -> Schema:
    """``node`` with a local ``$ref`` followed (keys written beside the $ref win)."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    target: Any = schema
    for part in ref[2:].split("/"):
        target = target[part]
    merged = {**_resolve(schema, target), **node}
    merged.pop("$ref", None)
    return merged


def describe_type(schema: Schema, node: Schema) -> str:
    """A short phrase for what a value of ``node`` may be."""
    if "const" in node:
        return f"always {_value(node['const'])}"
    if "enum" in node:
        return "one of " + ", ".join(_value(v) for v in node["enum"])
    alternatives = node.get("anyOf") or node.get("oneOf")
    if alternatives and "type" not in node:
        return " or ".join(
            dict.fromkeys(describe_type(schema, _resolve(schema, alt)) for alt in alternatives)
        )
    kinds = node.get("type")
    if kinds is None:
        return "object" if "properties" in node else "any value"
    names = [
        _type_name(schema, node, kind) for kind in ([kinds] if isinstance(kinds, str) else kinds)
    ]
    return " or ".join(names) + _range(node)


def _type_name(schema: Schema, node: Schema, kind: str) -> str:
    if kind == "array":
        items = node.get("items")
        if isinstance(items, dict):
            inner = describe_type(schema, _resolve(schema, items))
            plural = {
                "object (see below)": "objects (see below)",
                "object": "objects",
                "string": "strings",
            }
            return f"list of {plural.get(inner, inner + ' values')}"
        return "list"
    if kind == "object" and node.get("properties"):
        return "object (see below)"
    return {"integer": "integer", "number": "number", "boolean": "true or false"}.get(kind, kind)


def _range(node: Schema) -> str:
    low, high = node.get("minimum"), node.get("maximum")
    if low is not None and high is not None:
        return f", {low} to {high}"
    if low is not None:
        return f", at least {low}"
    if high is not None:
        return f", at most {high}"
    if "maxItems" in node:
        return f", at most {node['maxItems']} items"
    return ""


def default_of(node: Schema, request_field: bool) -> str:
    """The default: the schema's ``default``, else a "Default: ..." sentence of the description,
    else "not sent" for a request field and "none" for runner's own keys."""
    if "default" in node:
        return _value(node["default"])
    found = _DEFAULT_SENTENCE.search(node.get("description", ""))
    if found:
        return (found.group(1) or f"`{found.group(2).strip()}`").strip()
    return "not sent" if request_field else "none"


def _description(raw: Schema, resolved: Schema) -> str:
    return str(raw.get("description") or resolved.get("description") or "")


def _value(value: Any) -> str:
    return "`" + (value if isinstance(value, str) else json.dumps(value)) + "`"


def _cell(text: str, escape: bool = True) -> str:
    text = " ".join(text.split())
    return text.replace("|", "\\|") if escape else text


if __name__ == "__main__":
    sys.exit(main())
