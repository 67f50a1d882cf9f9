"""Record and replay: `runner export` cassettes, `runner run --replay`, and run provenance."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import KEY, KEY_ENV, SENTIMENT, WEATHER_TOOL, read_records, run_args, write_spec

# Fields that belong to one run, not to the answer: they may differ between a run and its replay.
RUN_SPECIFIC = {"started_at", "finished_at", "latency_ms", "attempts", "cached"}


def records_of(run_dir: Path) -> dict[str, dict]:
    return read_records(run_dir)


def comparable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in RUN_SPECIFIC}


@pytest.fixture
def run_specs(run_cli, openai_server, project, monkeypatch):
    """Run the CLI on ``specs/`` with the local server's URL; returns (result, run dir)."""
    monkeypatch.setenv(KEY_ENV, KEY)

    def run(*extra: str):
        result = run_cli(
            *run_args(openai_server.base_url),
            "--json",
            *extra,
        )
        summary = json.loads(result.stdout) if result.stdout.startswith("{") else {}
        return result, Path(summary["run_dir"]) if "run_dir" in summary else None

    return run


def write_three_kinds(project: Path) -> None:
    write_spec(project, "chat")
    write_spec(project, "structured", response_format=SENTIMENT)
    write_spec(project, "tools", tools=[WEATHER_TOOL], tool_choice="auto")


def test_a_replay_with_the_server_stopped_gives_identical_records(
    project, openai_server, run_specs, run_cli, monkeypatch
):
    write_three_kinds(project)
    result, original = run_specs()
    assert result.exit_code == 0, result.stderr
    exported = run_cli("export", original, "-o", "cassette.jsonl")
    assert exported.exit_code == 0, exported.stderr
    assert "3 records written to cassette.jsonl" in exported.stderr
    openai_server.stop()
    shutil.rmtree(project / ".runner")
    monkeypatch.delenv(KEY_ENV)

    result, replayed = run_specs("--replay", "cassette.jsonl")

    assert result.exit_code == 0, result.stderr
    before, after = records_of(original), records_of(replayed)
    assert sorted(after) == ["chat", "structured", "tools"]
    for record_id, record in after.items():
        assert comparable(record) == comparable(before[record_id]), record_id
    assert json.loads(result.stdout)["cached"] == 3
    manifest = json.loads((replayed / "manifest.json").read_text())
    assert manifest["settings"]["replay"] == str(project / "cassette.jsonl")


def test_a_replay_reaches_no_server(project, openai_server, run_specs, run_cli):
    write_three_kinds(project)
    _, original = run_specs()
    run_cli("export", original, "-o", "cassette.jsonl")
    sent = openai_server.count

    result, _ = run_specs("--replay", "cassette.jsonl", "--no-cache")

    assert result.exit_code == 0, result.stderr
    assert openai_server.count == sent


def test_the_cassette_is_sorted_keyed_and_holds_no_secret(
    project, openai_server, run_specs, run_cli
):
    for name in ("b", "c", "a"):
        write_spec(project, name)
    _, original = run_specs()

    run_cli("export", original, "-o", "cassette.jsonl")

    text = (project / "cassette.jsonl").read_text()
    assert KEY not in text and "authorization" not in text.lower()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["id"] for line in lines] == ["a", "b", "c"]
    for line in lines:
        assert set(line) == {"id", "key", "request", "response"}
        assert line["request"]["url"] == f"{openai_server.base_url}/chat/completions"
        assert line["request"]["body"]["messages"][0]["content"] == f"Say hello ({line['id']})."
        assert line["response"]["object"] == "chat.completion"
        assert len(line["key"]) == 64


def test_failed_records_are_left_out_of_the_cassette(project, openai_server, run_specs, run_cli):
    write_spec(project, "good")
    write_spec(project, "broken")
    openai_server.plan("400", marker="(broken)")
    _, original = run_specs()

    result = run_cli("export", original, "-o", "cassette.jsonl")

    assert result.exit_code == 0
    assert "1 record written" in result.stderr and "1 left out" in result.stderr
    assert "broken" in result.stderr
    assert len((project / "cassette.jsonl").read_text().splitlines()) == 1


def test_a_request_missing_from_the_cassette_is_a_usage_error(
    project, openai_server, run_specs, run_cli
):
    write_spec(project, "alpha")
    _, original = run_specs()
    run_cli("export", original, "-o", "cassette.jsonl")
    write_spec(project, "beta")
    write_spec(project, "alpha", temperature=0.9)
    sent = openai_server.count
    runs = sorted((project / "runs").iterdir())

    result, run_dir = run_specs("--replay", "cassette.jsonl")

    assert result.exit_code == 2
    assert "has no answer for 2 requests" in result.stderr
    assert "specs/alpha.yaml (record alpha)" in result.stderr
    assert "specs/beta.yaml (record beta)" in result.stderr
    assert run_dir is None and sorted((project / "runs").iterdir()) == runs
    assert openai_server.count == sent


def test_a_dry_run_replay_says_replay(project, run_specs, run_cli):
    write_spec(project, "alpha")
    _, original = run_specs()
    run_cli("export", original, "-o", "cassette.jsonl")

    result, _ = run_specs("--replay", "cassette.jsonl", "--dry-run")

    assert json.loads(result.stdout)["counts"]["replay"] == 1


def test_a_broken_cassette_line_is_named(project, run_specs):
    write_spec(project, "alpha")
    (project / "cassette.jsonl").write_text('{"id": "alpha"}\n')

    result, _ = run_specs("--replay", "cassette.jsonl")

    assert result.exit_code == 2 and "cassette.jsonl:1: not a cassette line" in result.stderr


def test_replay_and_refresh_do_not_go_together(project, run_specs):
    write_spec(project, "alpha")
    (project / "cassette.jsonl").write_text("")

    result, _ = run_specs("--replay", "cassette.jsonl", "--refresh")

    assert result.exit_code == 2


def test_export_of_a_folder_that_is_no_run(project, run_cli):
    (project / "nothing").mkdir()

    result = run_cli("export", "nothing", "-o", "cassette.jsonl")

    assert result.exit_code == 2 and "is not a run directory" in result.stderr


# ---- provenance


def git(project: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, cwd=project, check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_manifest_names_the_git_commit_and_whether_it_is_dirty(project, run_cli):
    write_spec(project, "alpha")
    git(project, "init", "-q")
    git(project, "add", "specs", "pyproject.toml")
    git(project, "commit", "-q", "-m", "specs")
    commit = git(project, "rev-parse", "HEAD").strip()

    def manifest_git() -> dict:
        result = run_cli("run", "specs", "--provider", "offline", "--out", "runs", "--json")
        run_dir = Path(json.loads(result.stdout)["run_dir"])
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["runner_version"] and manifest["python"] and manifest["platform"]
        return manifest["git"]

    (project / ".gitignore").write_text("runs/\n.runner/\n.gitignore\n")
    assert manifest_git() == {"commit": commit, "dirty": False}
    write_spec(project, "alpha", temperature=0.1)
    assert manifest_git() == {"commit": commit, "dirty": True}


def test_outside_a_repository_the_manifest_has_no_git(project, run_cli, monkeypatch):
    write_spec(project, "alpha")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(project.parent))

    result = run_cli("run", "specs", "--provider", "offline", "--out", "runs", "--json")

    run_dir = Path(json.loads(result.stdout)["run_dir"])
    assert json.loads((run_dir / "manifest.json").read_text())["git"] is None


def test_an_export_names_the_first_ids_left_out_and_counts_the_rest(tmp_path, run_cli):
    from runner.runs.store import RunStore

    store = RunStore.create(tmp_path / "runs")
    store.write_manifest({"run_id": store.run_id, "status": "complete"})
    for i in range(25):
        store.save_record({"id": f"failed/{i:02}", "status": "failed", "offline": False})
    store.finish_results(f"failed/{i:02}" for i in range(25))

    result = run_cli("export", store.root, "-o", tmp_path / "cassette.jsonl")

    assert result.exit_code == 0, result.output
    assert "0 records written" in result.stderr and "25 left out" in result.stderr
    assert "failed/09 ..." in result.stderr and "failed/10" not in result.stderr
    assert (tmp_path / "cassette.jsonl").read_text() == ""


def test_an_offline_run_is_recorded_and_replayed_without_a_key(project, run_cli, monkeypatch):
    """Record and replay, tried with no key: the offline run's answers go into the cassette,
    and a replay on the offline provider is answered from it (not made up again)."""
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    write_spec(project, "alpha")
    write_spec(project, "beta")
    recorded = run_cli("run", "specs", "--provider", "offline", "--json")
    run_dir = Path(json.loads(recorded.stdout)["run_dir"])
    cassette = project / "cassette.jsonl"

    exported = run_cli("export", run_dir, "-o", cassette)

    assert exported.exit_code == 0, exported.output
    assert "2 records written" in exported.stderr
    lines = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["alpha", "beta"]
    result = run_cli("run", "specs", "--provider", "offline", "--replay", cassette, "--json")
    assert result.exit_code == 0, result.output
    replayed = records_of(Path(json.loads(result.stdout)["run_dir"]))
    assert [(r["cached"], r["offline"]) for r in replayed.values()] == [(True, True)] * 2
    originals = records_of(run_dir)
    assert all(replayed[i]["output"] == originals[i]["output"] for i in originals)


def test_a_replay_on_the_offline_provider_stops_for_a_request_the_cassette_lacks(project, run_cli):
    """A changed prompt is not in the cassette: the replay names it, as for any provider."""
    write_spec(project, "alpha")
    cassette = project / "empty.jsonl"
    cassette.write_text("")

    result = run_cli("run", "specs", "--provider", "offline", "--replay", str(cassette))

    assert result.exit_code == 2
    assert "has no answer for 1 request" in result.stderr and "alpha" in result.stderr
