"""``runner/files.py``: every file that holds answers is created readable by its owner only
(issue 22.5): records, reports, exports, cassettes, batch files and the response cache with
its SQLite side files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from helpers import KEY, KEY_ENV, run_args, write_spec

from runner.files import create_private, open_private, private_database

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX's")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask():
    """A umask that lets others read what is created, as most systems have."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_every_file_with_answers_is_0600(project, openai_server, run_cli, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    write_spec(project, "alpha")
    ran = run_cli(*run_args(openai_server.base_url), "--json")
    assert ran.exit_code == 0, ran.output
    run_dir = Path(json.loads(ran.stdout)["run_dir"])
    assert run_cli("report", run_dir, "-o", "out/report.html").exit_code == 0
    assert run_cli("report", run_dir, "--format", "md", "-o", "out/report.md").exit_code == 0
    assert run_cli("export", run_dir, "-o", "out/rows.csv").exit_code == 0
    assert run_cli("export", run_dir, "-o", "out/rows.jsonl", "--format", "jsonl").exit_code == 0
    assert run_cli("export", run_dir, "-o", "out/cassette.jsonl").exit_code == 0
    batch = run_cli("batch", "submit", "specs", "--provider", "offline", "--out", "runs", "--json")
    assert batch.exit_code == 0, batch.output
    written = [
        p
        for p in project.rglob("*")
        if p.is_file() and "specs" not in p.parts and p.name != "pyproject.toml"
    ]
    names = {p.name for p in written}
    assert {"results.jsonl", "manifest.json", "report.html", "rows.csv", "cassette.jsonl"} <= names
    assert "cache.sqlite" in names and "index.sqlite" in names
    assert any(name.startswith("input-") for name in names)
    assert {str(p.relative_to(project)): oct(mode(p)) for p in written if mode(p) != 0o600} == {}


def test_an_existing_file_written_again_becomes_private(tmp_path):
    path = tmp_path / "old.html"
    path.write_text("shared")
    path.chmod(0o644)
    with open_private(path, "w", encoding="utf-8") as handle:
        handle.write("answers")
    assert path.read_text() == "answers" and mode(path) == 0o600
    with open_private(path, "a", encoding="utf-8") as handle:
        handle.write("!")
    assert path.read_text() == "answers!"
    with pytest.raises(FileExistsError):
        open_private(path, "x")


def test_a_database_and_its_side_files_become_private(tmp_path):
    database = tmp_path / "cache.sqlite"
    side = tmp_path / "cache.sqlite-wal"
    side.write_bytes(b"")
    side.chmod(0o644)
    private_database(database)
    assert mode(database) == 0o600 and mode(side) == 0o600
    create_private(tmp_path / "missing-folder" / "x")  # cannot be made: nothing raised
