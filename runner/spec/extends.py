"""Spec inheritance: a spec may ``extends:`` a base spec holding shared prompts and defaults.

The merge, keeping every value's position in the file it came from:
- ``vars`` and ``extra_body`` are merged, the spec's values winning;
- ``messages`` are the base's followed by the spec's (a base holds the system prompt);
- ``name`` and ``description`` are never inherited;
- every other key of the spec replaces the base's.
A base may extend another base; bases must stay inside the project.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from runner.errors import Problem, SpecError
from runner.spec.document import Document, PathKey, Position
from runner.spec.load import load_yaml
from runner.spec.project import (
    display_path,
    find_project_root,
    missing_file_hint,
    missing_outside,
    outside_hint,
    resolve_inside,
)

EXTENDS = "extends"
MERGED_MAPPINGS = ("vars", "extra_body")
NOT_INHERITED = ("name", "description")
MAX_BASES = 8


def with_bases(doc: Document) -> tuple[Document, tuple[Document, ...]]:
    """The spec document merged with its chain of base specs, and the bases themselves."""
    chain: list[Document] = []
    current = doc
    while isinstance(current.data, dict) and isinstance(current.data.get(EXTENDS), str):
        base = _load_base(current, chain, doc)
        chain.append(base)
        current = base
    if not chain:
        return doc, ()
    merged = chain[-1]
    for base in reversed(chain[:-1]):
        merged = _merge(merged, base)
    return _merge(merged, doc), tuple(chain)


def _load_base(current: Document, chain: list[Document], spec: Document) -> Document:
    reference = current.data[EXTENDS]
    root = find_project_root(spec.path)
    target = resolve_inside(root, current.path.resolve().parent, reference)

    def refuse(message: str, hint: str | None = None) -> SpecError:
        return SpecError([current.problem((EXTENDS,), message, hint)])

    folder = current.path.resolve().parent
    absent = missing_outside(folder, reference) if target is None else None
    if absent is not None:
        raise refuse(f"base spec not found: {reference}", missing_file_hint(reference, absent))
    if target is None:
        raise refuse(
            f"extends '{reference}', which is outside the project folder {root}",
            outside_hint(root, "base specs"),
        )
    seen = {spec.path.resolve(), *(d.path.resolve() for d in chain)}
    if target in seen:
        raise refuse(f"extends '{reference}', which extends this spec again (a loop)")
    if len(chain) >= MAX_BASES:
        raise refuse(f"extends more than {MAX_BASES} base specs in a chain")
    if not target.is_file():
        raise refuse(f"base spec not found: {reference}", missing_file_hint(reference, target))
    base = load_yaml(target, display_path(target))
    if not isinstance(base.data, dict):
        raise SpecError([Problem(base.display, "a base spec must be a mapping of keys", 1, 1)])
    return base


def _merge(base: Document, spec: Document) -> Document:
    """``spec`` laid over ``base``; positions of base values point into the base's file."""
    data: dict[str, Any] = {
        k: v for k, v in base.data.items() if k not in (EXTENDS, *NOT_INHERITED)
    }
    positions = {
        path: _tagged(pos, base) for path, pos in base.positions.items() if path and path[0] in data
    }
    for key, value in spec.data.items():
        if key == EXTENDS:
            continue
        own = {p: pos for p, pos in spec.positions.items() if p and p[0] == key}
        if key == "messages" and isinstance(value, list) and isinstance(data.get(key), list):
            offset = len(data[key])
            data[key] = [*data[key], *value]
            own = {_shift(p, offset): pos for p, pos in own.items() if len(p) > 1}
            own[(key,)] = spec.positions[(key,)]
        elif key in MERGED_MAPPINGS and isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
            positions = {p: pos for p, pos in positions.items() if p[0] != key}
        positions.update(own)
    positions[()] = spec.positions.get((), Position(1, 1))
    others = {**base.others, **spec.others, base.display: (base.path, base.text)}
    return Document(spec.path, data, positions, spec.text, spec.display, others)


def _tagged(pos: Position, doc: Document) -> Position:
    return pos if pos.file is not None else replace(pos, file=doc.display)


def _shift(path: PathKey, offset: int) -> PathKey:
    index = path[1]
    assert isinstance(index, int)
    return (path[0], index + offset, *path[2:])
