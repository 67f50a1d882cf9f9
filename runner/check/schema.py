"""The published spec JSON Schema (``schemas/spec.schema.json``): keys, types, ranges.

Its errors are turned into sentences by ``runner/explain.py``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from jsonschema import Draft202012Validator

from runner.check.explain import explain
from runner.errors import Problem
from runner.spec.document import Document


def spec_schema_text() -> str:
    """The published spec JSON Schema, as text."""
    return resources.files("runner").joinpath("spec.schema.json").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _spec_validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(spec_schema_text()))


@lru_cache(maxsize=1)
def spec_properties() -> frozenset[str]:
    """The top-level keys a spec may hold."""
    return frozenset(json.loads(spec_schema_text())["properties"])


@lru_cache(maxsize=64)
def field_validator(key: str) -> Draft202012Validator:
    """A validator for one request field's value, as the spec schema defines it."""
    schema = json.loads(spec_schema_text())
    return Draft202012Validator({"$defs": schema.get("$defs", {}), **schema["properties"][key]})


def schema_problems(doc: Document, display: str) -> list[Problem]:
    """Everything in ``doc`` that breaks the spec schema, explained and sorted by position."""
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
    explained = [p for e in errors for p in explain(e, doc)]
    # a value in the wrong form breaks several rules at once; its explanation says it all
    reformed = {(p.line, p.column) for p in explained if p.code == "wrong-form"}
    problems = {
        (p.line, p.column, p.message): p
        for p in explained
        if p.code == "wrong-form" or (p.line, p.column) not in reformed
    }
    return sorted(problems.values(), key=lambda p: (p.line or 0, p.column or 0))
