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


def _project_table() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_distribution_name_is_not_the_taken_runner_but_the_command_is():
    """'runner' on the package index is someone else's project: pip install runner must never
    be what we tell people. The command and the import package keep the name."""
    project = _project_table()
    assert project["name"] == "prompt-spec-runner"
    assert set(project["scripts"]) == {"runner"}
    assert project["scripts"]["runner"].startswith("runner.")
    wheel_glob = "prompt_spec_runner-*.whl"  # the wheel's file name normalises '-' to '_'
    assert wheel_glob in (ROOT / ".ci" / "run").read_text()


def test_the_wheel_metadata_is_complete():
    project = _project_table()
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(project["urls"])
    assert all(url.startswith("https://") for url in project["urls"].values())
    assert len(project["keywords"]) >= 5
    classifiers = project["classifiers"]
    assert "Typing :: Typed" in classifiers  # the package ships py.typed
    assert "Environment :: Console" in classifiers
    minimum = project["requires-python"].removeprefix(">=")
    assert f"Programming Language :: Python :: {minimum}" in classifiers
    assert "docs" in project["optional-dependencies"]


def test_the_installed_distribution_carries_the_metadata():
    """What pip installed (editable here; a wheel in .ci/run) says the same as pyproject."""
    from importlib import metadata

    try:
        installed = metadata.metadata("prompt-spec-runner")
    except metadata.PackageNotFoundError:
        pytest.skip("prompt-spec-runner is not installed (run pip install -e .)")
    assert installed["Name"] == "prompt-spec-runner"
    assert any(url.startswith("Source, https://") for url in installed.get_all("Project-URL"))
    assert "Typing :: Typed" in installed.get_all("Classifier")
    # (A venv that had the old distribution "runner" may list both until it is uninstalled.)
    entries = [e for e in metadata.entry_points(group="console_scripts") if e.name == "runner"]
    assert any(e.dist is not None and e.dist.name == "prompt-spec-runner" for e in entries)
