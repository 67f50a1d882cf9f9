"""The project around a spec: its runner.yaml, what a $ref that leaves the folder is told, and
the machine-readable forms of validate's problems (GitHub annotations, JSON). Which keys a
spec-defined endpoint may use is tests/test_trust.py."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import without_codes

SECRET = "AKIA-not-for-this-spec-42"
SPEC = """\
version: 1
model: openai/gpt-oss-20b
provider:
  name: their-proxy
  base_url: {url}
  api_key_env: {env}
messages:
  - {{role: user, content: Hi.}}
"""


def foreign_spec(project: Path, url: str, env: str) -> None:
    (project / "specs").mkdir(exist_ok=True)
    (project / "specs" / "foreign.yaml").write_text(SPEC.format(url=url, env=env))


def test_a_broken_runner_yaml_is_reported_at_its_line(project, run_cli, openai_server):
    foreign_spec(project, openai_server.base_url, "PROXY_TOKEN")
    (project / "runner.yaml").write_text("version: 1\nallow_keys: [PROXY_TOKEN]\n")

    result = run_cli("validate", "specs")

    assert without_codes(result.stdout).splitlines() == [
        "runner.yaml:2:1: unknown setting 'allow_keys' in runner.yaml "
        "(runner.yaml may hold: version, endpoints, silence)"
    ]


def test_a_broken_runner_yaml_is_reported_once_though_no_spec_needs_it(project, run_cli):
    (project / "runner.yaml").write_text("version: 1\nallow_key_envs: [PROXY_TOKEN]\n")
    (project / "specs").mkdir(exist_ok=True)
    for name in ("a", "b"):
        (project / "specs" / f"{name}.yaml").write_text(
            "version: 1\nmodel: openai/gpt-oss-20b\nmessages:\n  - {role: user, content: Hi.}\n"
        )
    expected = (
        "runner.yaml:2:1: unknown setting 'allow_key_envs' in runner.yaml "
        "(did you mean 'allow_key_env'?)"
    )

    result = run_cli("validate", "specs")
    rendered = run_cli("render", "specs/a.yaml")

    assert result.exit_code == 1
    assert without_codes(result.stdout).splitlines() == [expected]
    assert rendered.exit_code == 1
    assert expected in rendered.output


def test_a_ref_leaving_a_folder_without_markers_explains_project_folders(
    tmp_path, monkeypatch, run_cli
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "a.json").write_text('{"type": "object"}')
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "s.yaml").write_text(
        "version: 1\nmodel: openai/gpt-oss-20b\nmessages: [{role: user, content: JSON please}]\n"
        "response_format:\n  type: json_schema\n  json_schema:\n    name: a\n"
        "    schema: {$ref: ../schemas/a.json}\n"
    )

    result = run_cli("validate", "specs")

    folder = (tmp_path / "specs").resolve()
    assert without_codes(result.stdout).splitlines() == [
        f"specs/s.yaml:8:20: $ref '../schemas/a.json' points outside the project folder {folder} "
        "(no .git, pyproject.toml or runner.yaml was found above the spec, so the project is the "
        f"spec's own folder {folder}; mark your project's top folder with a runner.yaml (runner "
        "init DIR writes one) to use schema files anywhere inside it)"
    ]
    (tmp_path / "runner.yaml").write_text("version: 1\n")
    assert run_cli("validate", "specs").exit_code == 0


def test_a_spec_copied_without_its_files_is_told_they_are_missing_and_where(
    tmp_path, monkeypatch, run_cli
):
    """The fix is to copy the files too, so no runner.yaml advice: that is only for a file that
    exists outside the project (issue 29)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "copied").mkdir()
    (tmp_path / "copied" / "s.yaml").write_text(
        "version: 1\nmodel: openai/gpt-oss-20b\n"
        "messages: [{role: user, content: 'JSON about {{ x }}'}]\n"
        "cases: ../data/rows.csv\nextends: ../_base.yaml\n"
    )
    (tmp_path / "copied" / "t.yaml").write_text(
        "version: 1\nmodel: openai/gpt-oss-20b\nmessages: [{role: user, content: JSON please}]\n"
        "response_format:\n  type: json_schema\n  json_schema:\n    name: a\n"
        "    schema: {$ref: ../schemas/a.json}\ncases: ../data/rows.csv\n"
    )

    output = without_codes(run_cli("validate", "copied").stdout)

    assert "runner.yaml" not in output
    assert (
        "copied/s.yaml:5:10: base spec not found: ../_base.yaml (looked for _base.yaml, as the "
        "path is relative to the folder of the spec file: copy the file there, or correct the "
        "path)"
    ) in output
    assert (
        "copied/t.yaml:8:20: $ref file not found: ../schemas/a.json (looked for schemas/a.json, "
        "as the path is relative to the folder of the spec file: copy the file there, or "
        "correct the path)"
    ) in output
    assert "copied/t.yaml:9:8: data file not found: ../data/rows.csv (looked for data/rows.csv" in (
        output
    )


# ---- --format github and json


def broken_specs(project: Path) -> None:
    (project / "specs").mkdir()
    (project / "specs" / "a,b:c.yaml").write_text(
        "version: 1\nmodel: openai/gpt-oss-20b\ntemprature: 1\n"
    )


def test_github_annotations_follow_the_workflow_command_syntax(project, run_cli):
    broken_specs(project)
    (project / "specs" / "pct.yaml").write_text(
        "version: 1\nmodel: openai/gpt-oss-20b\n"
        "messages: [{role: user, content: '100% {{ x | nope }}'}]\n"
    )

    result = run_cli("validate", "specs", "--format", "github")

    assert result.exit_code == 1
    assert without_codes(result.stdout).splitlines() == [
        "::error file=specs/a%2Cb%3Ac.yaml,line=1,col=1,title=missing-key::the spec is missing "
        "the required key 'messages' (add 'messages:')",
        "::error file=specs/a%2Cb%3Ac.yaml,line=3,col=1,title=unknown-key::unknown key "
        "'temprature' (did you mean 'temperature'? write: temperature: 1)",
        "::error file=specs/pct.yaml,line=3,col=34,title=unknown-filter::template uses the "
        "filter 'nope', which does "
        "not exist (see Jinja's list of built-in filters: "
        "https://jinja.palletsprojects.com/en/stable/templates/#list-of-builtin-filters)",
    ]


def test_github_escaping_of_percent_and_newlines():
    from runner.check.formats import github_annotation
    from runner.errors import Problem

    line = github_annotation(Problem("d:/x,y.yaml", "50%\r\nnext: a, b", 2, None, "h"))

    assert (
        line == "::error file=d%3A/x%2Cy.yaml,line=2,title=schema-rule::50%25%0D%0Anext: a, b (h)"
    )


def test_json_format(project, run_cli):
    broken_specs(project)

    result = run_cli("validate", "specs", "--format", "json")

    assert result.exit_code == 1
    data = json.loads(without_codes(result.stdout))
    assert data["files"] == 1 and data["valid"] is False
    assert data["problems"][1] == {
        "file": "specs/a,b:c.yaml",
        "line": 3,
        "column": 1,
        "code": "unknown-key",
        "message": "unknown key 'temprature'",
        "hint": "did you mean 'temperature'? write: temperature: 1",
        "severity": "error",
        "fixable": True,
    }
