"""``runner init``: a project that marks itself, validates and runs offline as it is, and never
overwrites a file."""

from __future__ import annotations

from pathlib import Path

EXPECTED = [
    ".gitignore",
    "runner.yaml",
    "schemas/greeting.schema.json",
    "schemas/spec.schema.json",
    "specs/hello.yaml",
    "templates/voice.j2",
]


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_init_in_an_empty_folder_then_validate_and_run_offline(tmp_path, monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)

    result = run_cli("init", "proj")

    assert result.exit_code == 0, result.output
    assert files_under(tmp_path / "proj") == EXPECTED
    assert result.stdout.splitlines()[-4:] == [
        "  cd proj",
        "  runner validate specs/",
        "  runner run specs/ --provider offline      # no key, no network",
        "  export GROQ_API_KEY=...; runner run specs/",
    ]
    monkeypatch.chdir(tmp_path / "proj")
    assert run_cli("validate", "specs/").exit_code == 0
    run = run_cli("run", "specs/", "--provider", "offline", "--quiet")
    assert run.exit_code == 0, run.output
    assert "runs/" in (tmp_path / "proj" / ".gitignore").read_text()
    spec = (tmp_path / "proj" / "specs" / "hello.yaml").read_text()
    assert spec.startswith("# yaml-language-server: $schema=../schemas/spec.schema.json\n")


def test_init_never_overwrites_and_says_what_it_kept(tmp_path, monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "hello.yaml").write_text("mine\n")
    (tmp_path / "runner.yaml").write_text("version: 1\n")

    result = run_cli("init")

    assert result.exit_code == 0
    assert (tmp_path / "specs" / "hello.yaml").read_text() == "mine\n"
    assert (tmp_path / "runner.yaml").read_text() == "version: 1\n"
    assert "kept runner.yaml (it exists; not overwritten)" in result.stdout
    assert "kept specs/hello.yaml (it exists; not overwritten)" in result.stdout
    assert "created templates/voice.j2" in result.stdout
    assert "  runner validate specs/" in result.stdout and "cd ." not in result.stdout


def test_init_on_a_file_is_a_usage_error(tmp_path, monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").write_text("x")

    result = run_cli("init", "taken")

    assert result.exit_code == 2
    assert "taken" in result.output


def test_the_scaffolded_runner_yaml_marks_the_project_for_refs(tmp_path, monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)
    run_cli("init", "proj")
    deep = tmp_path / "proj" / "specs" / "team" / "deep.yaml"
    deep.parent.mkdir()
    text = (tmp_path / "proj" / "specs" / "hello.yaml").read_text()
    deep.write_text(
        text.replace("../schemas/", "../../schemas/").replace("name: hello", "name: deep")
    )

    assert run_cli("validate", "proj/specs").exit_code == 0


def test_version(run_cli):
    from runner.version import __version__

    result = run_cli("--version")

    assert result.exit_code == 0 and result.stdout.strip() == f"runner, version {__version__}"


def test_init_through_a_file_is_a_clear_error(tmp_path, monkeypatch, run_cli):
    """Issue 22.12: a path running through a file, or a file named specs, was a traceback."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    through = run_cli("init", "notes.txt/proj")
    assert through.exit_code == 2
    assert "notes.txt is a file, where runner init needs a folder" in through.stderr
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "specs").write_text("mine")
    blocked = run_cli("init", "proj")
    assert blocked.exit_code == 2
    assert "proj/specs is a file, where runner init needs a folder" in blocked.stderr
    assert "Traceback" not in through.output + blocked.output
    assert (tmp_path / "proj" / "specs").read_text() == "mine"


def test_validate_dot_checks_runner_yaml_as_the_project_settings(tmp_path, monkeypatch, run_cli):
    """Issue 22.12: `runner validate .` in a fresh project checked runner.yaml as a spec."""
    monkeypatch.chdir(tmp_path)
    assert run_cli("init", ".").exit_code == 0
    fresh = run_cli("validate", ".")
    assert fresh.exit_code == 0, fresh.output
    assert "1 spec valid" in fresh.stderr
    with open("runner.yaml", "a") as handle:
        handle.write("alow_key_env: [X]\n")
    broken = run_cli("validate", ".")
    assert broken.exit_code == 1
    assert "runner.yaml:" in broken.stdout and "unknown setting 'alow_key_env'" in broken.stdout
    assert "required key 'model'" not in broken.stdout
