"""Template variables given on the command line (``--var k=v``) or in a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.errors import SpecError, UsageError
from runner.spec.load import load_yaml
from runner.spec.project import display_path


def read_variables(items: tuple[str, ...], vars_file: Path | None) -> dict[str, Any]:
    """Variables from a YAML/JSON file, overridden by ``KEY=VALUE`` items (values are text)."""
    variables: dict[str, Any] = {}
    if vars_file is not None:
        doc = load_yaml(vars_file, display_path(vars_file))
        if not isinstance(doc.data, dict):
            raise SpecError([doc.problem((), "a vars file must be a mapping of names to values")])
        variables.update(doc.data)
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--var takes KEY=VALUE, got '{item}'")
        variables[name.strip()] = value
    return variables
