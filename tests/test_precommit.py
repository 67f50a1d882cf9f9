"""The repository's ``.pre-commit-hooks.yaml`` works in a user's repository: pre-commit (from
PyPI) clones the hooks from a local git repository, so nothing is downloaded. The hook's
language is set to ``system`` in the test config to use the runner installed here instead of
building an environment; entry, args, files and pass_filenames come from our manifest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(folder: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(
        ["git", *args], cwd=folder, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def pre_commit(folder: Path, home: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(home),
        "PATH": bin_dir + os.pathsep + os.environ["PATH"],
    }
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_pre_commit_hook_runs_runner_validate(tmp_path, run_cli, monkeypatch):
    pytest.importorskip("pre_commit")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    shutil.copy(ROOT / ".pre-commit-hooks.yaml", hooks / ".pre-commit-hooks.yaml")
    git(hooks, "init", "-q")
    git(hooks, "add", ".")
    git(hooks, "commit", "-qm", "hooks")
    rev = git(hooks, "rev-parse", "HEAD")
    project = tmp_path / "project"
    monkeypatch.chdir(tmp_path)
    assert run_cli("init", "project").exit_code == 0
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hooks}\n    rev: {rev}\n"
        "    hooks:\n      - id: runner-validate\n        language: system\n"
    )
    git(project, "init", "-q")
    git(project, "add", ".")

    passed = pre_commit(project, tmp_path / "cache")

    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "runner validate" in passed.stdout and "Passed" in passed.stdout

    spec = project / "specs" / "hello.yaml"
    spec.write_text(spec.read_text().replace("temperature:", "temprature:"))
    git(project, "add", ".")

    failed = pre_commit(project, tmp_path / "cache")

    assert failed.returncode == 1
    assert "Failed" in failed.stdout
    assert "specs/hello.yaml:8:1: unknown key 'temprature' (did you mean 'temperature'?" in (
        failed.stdout
    )
