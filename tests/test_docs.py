"""README stays true: every spec key documented, the test command the one CI runs."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_every_spec_key_is_documented():
    schema = json.loads((ROOT / "schemas" / "spec.schema.json").read_text())
    documented = set(re.findall(r"^\| `([a-z_]+)`", README, flags=re.MULTILINE))
    assert set(schema["properties"]) <= documented


def test_every_run_option_is_documented():
    from runner.cli.run import run

    for param in run.params:
        for option in param.opts:
            if option.startswith("--"):
                assert f"`{option}" in README or f" {option}" in README, option


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "    python -m pytest\n" in README
    assert "\npython -m pytest\n" in ci


def test_no_file_holds_a_merge_conflict_marker():
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.split()
    markers = re.compile(r"^(<<<<<<< |=======$|>>>>>>> )", flags=re.MULTILINE)
    for name in tracked or ["README.md"]:
        path = ROOT / name
        if path.suffix in {".md", ".py", ".yaml", ".yml", ".j2", ".toml", ""} and path.is_file():
            assert not markers.search(path.read_text(errors="replace")), name


def test_the_module_map_names_every_module():
    package = ROOT / "runner"
    section = README.split("Where things happen", 1)[1]
    for path in package.rglob("*.py"):
        if path.name in {"__init__.py", "__main__.py"}:
            continue
        wing = path.parent.relative_to(package).as_posix()
        row = next((line for line in section.splitlines() if f"`{wing}/`" in line), section)
        assert f"`{path.name}`" in (row if wing != "." else section), path.relative_to(ROOT)


def test_command_lists_in_help_are_not_cut_off():
    from click.testing import CliRunner

    from runner.cli.main import cli

    for args in ([], ["batch"], ["cache"]):
        shown = CliRunner().invoke(cli, [*args, "--help"]).output
        listed = shown.split("Commands:")[1]
        assert "..." not in listed, listed
