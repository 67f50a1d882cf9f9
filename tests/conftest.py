"""Shared fixtures: a project folder to write specs into, and the CLI runner."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).parent))

from render_audit import assert_valid_specs_render

from runner.cli.main import cli


@pytest.fixture(autouse=True)
def user_config_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test has an empty config folder of its own (XDG_CONFIG_HOME): runner's config.yaml
    and the projects approved with runner trust are never read from, or written to, the real
    home folder."""
    folder = tmp_path_factory.mktemp("xdg-config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    return folder


@pytest.fixture(autouse=True)
def valid_specs_render(request: pytest.FixtureRequest):
    """After a test that used tmp_path: every spec in it that validates must also render."""
    folder = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if folder is not None and not request.node.get_closest_marker("no_render_audit"):
        assert_valid_specs_render(folder)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder (it has a pyproject.toml) that is also the working folder."""
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def run_cli():
    """Run the real CLI in-process; returns click's Result (exit_code, stdout, stderr)."""

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture(scope="session")
def openai_wire_schemas() -> dict:
    """The official chat-completions schemas (see tests/data/README.md)."""
    import json

    path = Path(__file__).parent / "data" / "openai-chat-schemas.json"
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def openai_request_validator(openai_wire_schemas):
    from jsonschema import Draft202012Validator

    ref = "#/components/schemas/CreateChatCompletionRequest"
    return Draft202012Validator({**openai_wire_schemas, "$ref": ref})


@pytest.fixture
def openai_server():
    """A local OpenAI-compatible server on 127.0.0.1 (see tests/openai_server.py)."""
    from openai_server import FakeOpenAI

    server = FakeOpenAI().start()
    yield server
    server.stop()
