"""Every data file of the package is named by pyproject's package-data, so a built wheel (not
only an editable install) has the spec schema, the report templates and the scaffold.
(.ci/run builds the wheel and runs runner from it in its own venv.)"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def test_package_data_covers_every_non_python_file():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package = ROOT / "runner"
    patterns = [
        f"{name.replace('.', '/')}/{pattern}".removeprefix("runner/")
        for name, listed in config["tool"]["setuptools"]["package-data"].items()
        for pattern in listed
    ]
    data = [
        str(p.relative_to(package))
        for p in package.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]

    missing = [f for f in data if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]

    assert "spec.schema.json" in data and "spec/scaffold/runner.yaml" in data
    assert missing == []
