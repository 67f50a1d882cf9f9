"""JSON Schemas inside a spec (response_format and tool parameters): ``$ref`` files inlined and
each schema checked against the JSON Schema 2020-12 metaschema."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from runner.check.context import SpecFile
from runner.errors import Problem, SpecError
from runner.spec.document import PathKey
from runner.spec.json_positions import json_positions
from runner.spec.load import read_text
from runner.spec.project import (
    display_path,
    missing_file_hint,
    missing_outside,
    outside_hint,
    resolve_inside,
)


def resolve_schema(
    file: SpecFile, path: PathKey, value: Any, problems: list[Problem]
) -> dict[str, Any] | None:
    """A JSON Schema given inline or as ``{$ref: file}``, with file refs inlined; None (and a
    problem) when a ref cannot be followed or the result is not a valid schema."""
    try:
        schema = _inline_refs(value, file.folder_of(path), file.root, frozenset())
    except _RefProblem as exc:
        where = (*path, "$ref") if "$ref" in value else path
        problems.append(exc.located or file.problem(where, exc.message, exc.hint))
        return None
    error = _schema_error(json.dumps(schema, sort_keys=True))
    if error is not None:
        message, inside, hint = error
        hint = hint or "see https://json-schema.org/understanding-json-schema/"
        problems.append(locate(file, path, value, inside, message, hint))
        return None
    return schema


def locate(
    file: SpecFile,
    path: PathKey,
    value: Any,
    inside: Sequence[str | int],
    message: str,
    hint: str | None = None,
) -> Problem:
    """A Problem at the node ``inside`` the schema given at ``path`` (``value`` as written),
    following ``$ref``s into the files that hold the rest: ``schemas/x.json:7:15``."""
    current, walked = value, list[str | int]()
    folder, held_by = file.folder_of(path), None
    for part in (*inside, None):
        target = _ref_target(current, folder, file.root)
        if target is not None:
            current, held_by, walked = target[0], target[1], list(target[2])
            folder = target[1].parent
        if part is None:
            break
        if isinstance(current, list) and str(part).isdigit() and int(part) < len(current):
            part = int(part)
        elif not isinstance(current, dict) or part not in current:
            break
        current = current[part]
        walked.append(part)
    if held_by is None:
        return file.problem((*path, *walked), message, hint)
    positions = json_positions(held_by.read_text(encoding="utf-8-sig"))
    for end in range(len(walked), -1, -1):
        found = positions.get(tuple(walked[:end]))
        if found is not None:
            return Problem(display_path(held_by), message, found[0], found[1], hint)
    return Problem(display_path(held_by), message, 1, 1, hint)


def _ref_target(value: Any, folder: Path, root: Path) -> tuple[Any, Path, tuple[str, ...]] | None:
    """What a ``{$ref: file#pointer}`` points at: the value, its file and its path in it."""
    ref = value.get("$ref") if isinstance(value, dict) else None
    if not isinstance(ref, str) or ref.startswith("#"):
        return None
    try:
        found, target = _load_ref(ref, folder, root, frozenset())
    except _RefProblem:
        return None
    return found, target, tuple(p for p in ref.partition("#")[2].split("/") if p)


@lru_cache(maxsize=256)
def _schema_error(schema_json: str) -> tuple[str, tuple[str | int, ...], str | None] | None:
    """Why a JSON Schema (as canonical JSON) is not valid, where in it, and what to do;
    None when valid.
    Checked once per schema: the 2020-12 metaschema costs milliseconds, and a folder of specs
    often shares one response schema.
    """
    try:
        Draft202012Validator.check_schema(json.loads(schema_json))
    except SchemaError as exc:
        path = tuple(exc.absolute_path)
        if path and path[-1] == "type" and isinstance(exc.instance, str):
            guess = difflib.get_close_matches(exc.instance, JSON_TYPES, n=1)
            return (
                f"not a valid JSON Schema: 'type' must be one of {', '.join(JSON_TYPES)} "
                f"(got {exc.instance!r})",
                path,
                f"did you mean '{guess[0]}'?" if guess else None,
            )
        return f"not a valid JSON Schema: {exc.message}", path, None
    return None


JSON_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")


class _RefProblem(Exception):
    def __init__(self, message: str, hint: str | None = None, located: Problem | None = None):
        self.message = message
        self.hint = hint
        self.located = located  # already placed in the file that holds the mistake


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
    absent = missing_outside(folder, file_part) if target is None else None
    if absent is not None:
        raise _RefProblem(f"$ref file not found: {ref}", missing_file_hint(file_part, absent))
    if target is None:
        raise _RefProblem(
            f"$ref '{ref}' points outside the project folder {root}",
            outside_hint(root, "schema files", "under schemas/"),
        )
    if target in seen:
        raise _RefProblem(f"$ref '{ref}' refers back to itself through other files")
    if not target.is_file():
        raise _RefProblem(
            f"$ref file not found: {ref}",
            missing_file_hint(file_part, target),
        )
    try:
        document = json.loads(read_text(target, display_path(target)))
    except json.JSONDecodeError as exc:
        message = f"not valid JSON: {exc.msg}"
        hint = "JSON needs double quotes around names and text, and no comma after the last item"
        at = Problem(display_path(target), message, exc.lineno, exc.colno, hint)
        raise _RefProblem(f"$ref file {ref} is {message}", hint, at) from None
    except SpecError as exc:
        raise _RefProblem(f"$ref file {ref}: {exc.problems[0].message}") from None
    for part in (p for p in pointer.split("/") if p):
        if not isinstance(document, dict) or part not in document:
            raise _RefProblem(f"$ref '{ref}': the file has no '{pointer}'")
        document = document[part]
    return document, target
