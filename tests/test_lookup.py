"""`latest`, `latest~N` and run ids wherever a run folder is given, and the error for a name
that is not a run (runner/runs/lookup.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import write_spec

from runner.errors import UsageError
from runner.runs.lookup import list_runs, resolve_run


@pytest.fixture
def two_runs(project, run_cli) -> tuple[Path, Path]:
    """Two offline runs in ./runs of one spec, the second with a changed prompt."""
    write_spec(project, "hello", "Say hello.")
    first = json.loads(run_cli("run", "specs", "--provider", "offline", "--json").stdout)
    write_spec(project, "hello", "Say goodbye.")
    second = json.loads(run_cli("run", "specs", "--provider", "offline", "--json").stdout)
    return Path(first["run_dir"]), Path(second["run_dir"])


def test_latest_and_the_runs_before_it(two_runs):
    first, second = two_runs
    assert resolve_run("latest") == second
    assert resolve_run("latest~1") == first
    assert resolve_run("runs/latest") == second
    assert resolve_run(second.name) == second  # a run id alone, in the runs folder
    assert [run.path for run in list_runs(Path("runs"))] == [first, second]


def test_latest_beyond_the_oldest_run_names_the_oldest(two_runs):
    with pytest.raises(UsageError, match="holds 2 runs, so the oldest is latest~1"):
        resolve_run("latest~2")


def test_latest_in_an_empty_folder_says_how_to_make_a_run(project):
    with pytest.raises(UsageError, match="holds no runs yet"):
        resolve_run("latest")


def test_a_mistyped_run_lists_the_closest_and_the_most_recent(two_runs):
    first, second = two_runs
    typo = str(first)[:-1]  # the last character dropped
    with pytest.raises(UsageError) as caught:
        resolve_run(typo)
    message = str(caught.value)
    assert message.startswith(f"no run folder {typo}; closest: {first}")
    assert f"most recent: {second} (latest), {first} (latest~1)" in message


def test_runs_folder_comes_from_runner_out(two_runs, monkeypatch, tmp_path):
    moved = tmp_path / "elsewhere"
    Path("runs").rename(moved)
    monkeypatch.setenv("RUNNER_OUT", str(moved))
    assert resolve_run("latest") == moved / two_runs[1].name


@pytest.mark.parametrize(
    "command",
    [
        ("report", "latest", "-o", "r.html"),
        ("report", "latest~1", "latest", "--format", "md"),
        ("export", "latest", "-o", "c.jsonl", "--format", "jsonl"),
        ("diff", "latest~1", "latest"),
        ("show", "latest"),
        ("score", "latest"),
    ],
)
def test_every_reader_of_runs_takes_latest(two_runs, run_cli, command):
    result = run_cli(*command)
    assert result.exit_code in (0, 1), result.output  # diff exits 1: the answers differ
    assert "Invalid value" not in result.output


def test_resume_takes_latest(two_runs, run_cli):
    result = run_cli("run", "--resume", "latest", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run_dir"] == str(two_runs[1])


@pytest.mark.parametrize("command", ["report", "export", "diff", "show", "score"])
def test_a_missing_run_is_a_usage_error_with_suggestions(two_runs, run_cli, command):
    args = {"export": ("-o", "x.csv"), "diff": ("latest",)}.get(command, ())
    result = run_cli(command, "runs/2026-nope", *args)
    assert result.exit_code == 2
    assert "Invalid value" not in result.stderr
    assert "error: no run folder runs/2026-nope" in result.stderr
    assert f"{two_runs[1]} (latest)" in result.stderr


def test_batch_status_takes_latest(project, run_cli):
    write_spec(project, "hello", "Say hello.")
    submitted = run_cli("batch", "submit", "specs", "--provider", "offline", "--json")
    assert submitted.exit_code == 0, submitted.output
    result = run_cli("batch", "status", "latest", "--json")
    assert result.exit_code == 0, result.output
    assert (
        json.loads(result.stdout)["run_dir"] == json.loads(submitted.stdout)["summary"]["run_dir"]
    )
