"""The response cache and dry runs, end to end against the local OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import KEY, KEY_ENV, read_records, run_args, saved_count, write_spec

from runner.runs.cache import request_key


def records_of(run_dir: Path) -> dict[str, dict]:
    return read_records(run_dir)


@pytest.fixture
def run_server(run_cli, openai_server, project, monkeypatch):
    """Run the CLI on ``specs/`` against the local server; returns (result, summary, records)."""
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.delenv("RUNNER_CACHE_DIR", raising=False)

    def run(*extra: str):
        result = run_cli(
            *run_args(openai_server.base_url),
            "--backoff",
            "0.01",
            "--json",
            *extra,
        )
        summary = json.loads(result.stdout) if result.stdout.startswith("{") else {}
        run_dir = Path(summary["run_dir"]) if "run_dir" in summary else None
        return result, summary, records_of(run_dir) if run_dir else {}

    return run


def cache_file(project: Path) -> Path:
    return project / ".runner" / "cache.sqlite"


def test_a_second_run_of_unchanged_specs_sends_nothing(project, openai_server, run_server):
    write_spec(project, "alpha")
    write_spec(project, "beta")

    result, summary, first = run_server()
    assert result.exit_code == 0, result.stderr
    assert openai_server.count == 2
    assert summary["cached"] == 0
    assert all(r["cached"] is False and r["attempts"] == 1 for r in first.values())
    assert cache_file(project).is_file()

    result, summary, second = run_server()

    assert result.exit_code == 0, result.stderr
    assert openai_server.count == 2
    assert summary["cached"] == 2 and summary["ok"] == 2
    for record_id, record in second.items():
        assert record["cached"] is True and record["attempts"] == 0
        assert record["status"] == "ok" and record["http_status"] == 200
        assert record["response"] == first[record_id]["response"]
        assert record["output"] == first[record_id]["output"]


def test_many_concurrent_workers_share_the_cache(project, openai_server, run_server):
    for i in range(40):
        write_spec(project, f"s{i:02}")

    first, _, _ = run_server("-c", "16")
    _, summary, records = run_server("-c", "16")

    assert first.exit_code == 0, first.stderr
    assert openai_server.count == 40
    assert summary["cached"] == 40 and all(r["cached"] for r in records.values())


def test_the_summary_says_how_many_came_from_the_cache(project, openai_server, run_server, run_cli):
    write_spec(project, "alpha")
    write_spec(project, "beta")
    run_server()
    write_spec(project, "beta", temperature=0.5)

    result = run_cli("run", "specs", "--base-url", openai_server.base_url, "--api-key-env", KEY_ENV)

    assert result.exit_code == 0, result.stderr
    assert "2 ok, 0 failed, 0 invalid output, 1 from cache" in result.stderr


def test_changing_one_spec_sends_exactly_one_request(project, openai_server, run_server):
    for name in ("a", "b", "c"):
        write_spec(project, name)
    run_server()
    assert openai_server.count == 3

    write_spec(project, "b", temperature=0.5)
    result, summary, records = run_server()

    assert result.exit_code == 0, result.stderr
    assert openai_server.count == 4
    assert openai_server.received[-1].body["temperature"] == 0.5
    assert summary["cached"] == 2
    assert {i: r["cached"] for i, r in records.items()} == {"a": True, "b": False, "c": True}


def test_the_key_ignores_key_order_and_the_api_key(project, openai_server, run_server, monkeypatch):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    reordered = {"temperature": 0, "messages": [{"content": "hi", "role": "user"}], "model": "m"}
    assert request_key("http://x/v1/chat/completions", body) == request_key(
        "http://x/v1/chat/completions", reordered
    )
    assert request_key("http://x/v1/chat/completions", body) != request_key(
        "http://y/v1/chat/completions", body
    )

    write_spec(project, "alpha")
    run_server()
    monkeypatch.setenv(KEY_ENV, "sk-another-key-entirely")
    _, summary, _ = run_server()

    assert openai_server.count == 1 and summary["cached"] == 1
    database = cache_file(project).read_bytes()
    assert KEY.encode() not in database and b"sk-another" not in database


def test_no_cache_neither_reads_nor_writes(project, openai_server, run_server):
    write_spec(project, "alpha")

    run_server("--no-cache")
    assert not cache_file(project).exists()
    run_server()
    _, summary, records = run_server("--no-cache")

    assert openai_server.count == 3
    assert summary["cached"] == 0 and records["alpha"]["cached"] is False


def test_refresh_sends_again_and_keeps_the_new_answer(project, openai_server, run_server):
    write_spec(project, "alpha")
    run_server()

    openai_server.plan('reply:{"content": "A fresh answer."}')
    _, summary, refreshed = run_server("--refresh")
    assert openai_server.count == 2
    assert summary["cached"] == 0 and refreshed["alpha"]["cached"] is False

    _, summary, again = run_server()
    assert openai_server.count == 2
    assert again["alpha"]["cached"] is True
    assert again["alpha"]["output"]["content"] == "A fresh answer."


def test_no_cache_and_refresh_together_are_a_usage_error(project, run_server):
    write_spec(project, "alpha")

    result, _, _ = run_server("--no-cache", "--refresh")

    assert result.exit_code == 2 and "--no-cache and --refresh" in result.stderr


@pytest.mark.parametrize("fault", ["500", "missing_choices", "error_200", "truncated_json"])
def test_failures_are_never_cached(project, openai_server, run_server, fault):
    write_spec(project, "alpha")
    openai_server.plan(fault)

    result, _, failed = run_server("--retries", "0")
    assert result.exit_code == 1 and failed["alpha"]["status"] == "failed"

    result, summary, records = run_server("--retries", "0")

    assert result.exit_code == 0, result.stderr
    assert openai_server.count == 2
    assert records["alpha"]["status"] == "ok" and records["alpha"]["cached"] is False
    assert summary["cached"] == 0


def test_invalid_output_is_cached_because_the_provider_did_answer(
    project, openai_server, run_server
):
    write_spec(
        project,
        "alpha",
        response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Reply in JSON."}],
    )
    openai_server.plan('reply:{"content": "not json"}')
    run_server()

    _, _, records = run_server()

    assert openai_server.count == 1
    assert records["alpha"]["status"] == "invalid_output" and records["alpha"]["cached"] is True


def test_offline_answers_are_not_cached(project, run_cli):
    write_spec(project, "alpha")

    for _ in range(2):
        result = run_cli("run", "specs", "--provider", "offline", "--out", "runs", "--json")
        assert json.loads(result.stdout)["cached"] == 0

    assert not (project / ".runner").exists()


def test_runner_cache_dir_moves_the_cache(project, openai_server, run_server, monkeypatch):
    write_spec(project, "alpha")
    elsewhere = project / "elsewhere"
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(elsewhere))

    run_server()
    run_server()

    assert (elsewhere / "cache.sqlite").is_file() and not (project / ".runner").exists()
    assert openai_server.count == 1


def test_the_cache_mode_is_saved_and_kept_by_resume(project, openai_server, run_server, run_cli):
    write_spec(project, "alpha")
    write_spec(project, "beta")
    openai_server.plan("500", marker="(beta)")

    result, summary, _ = run_server("--no-cache", "--retries", "0")
    assert result.exit_code == 1
    run_dir = Path(summary["run_dir"])
    assert json.loads((run_dir / "manifest.json").read_text())["settings"]["cache"] == "off"

    resumed = run_cli("run", "--resume", str(run_dir))

    assert resumed.exit_code == 0, resumed.stderr
    assert openai_server.count == 3
    assert not cache_file(project).exists()


def test_resume_refuses_cache_options(project, run_server, run_cli):
    write_spec(project, "alpha")
    _, summary, _ = run_server()

    result = run_cli("run", "--resume", summary["run_dir"], "--refresh")

    assert result.exit_code == 2 and "--resume keeps" in result.stderr


def test_the_cache_can_be_cleared(project, openai_server, run_server, run_cli):
    write_spec(project, "alpha")
    run_server()

    result = run_cli("cache", "clear")
    run_server()

    assert result.exit_code == 0 and "deleted 1 cached answer" in result.stderr
    assert openai_server.count == 2


# ---- a run killed with SIGKILL


def settled_count(server: Any, quiet: float = 0.5, limit: float = 10.0) -> int:
    """The server's request count once it has not changed for ``quiet`` seconds."""
    deadline = time.monotonic() + limit
    count = server.count
    while time.monotonic() < deadline:
        time.sleep(quiet)
        if server.count == count:
            break
        count = server.count
    return count


def test_a_cache_left_by_a_killed_run_is_readable_and_the_rerun_is_right(
    project, openai_server, monkeypatch
):
    names = [f"s{i:02}" for i in range(12)]
    for name in names:
        write_spec(project, name)
    openai_server.latency = 0.15
    env = {k: v for k, v in os.environ.items() if k != "RUNNER_CACHE_DIR"}
    command = [sys.executable, "-m", "runner", "run", "specs", "--base-url"]
    command += [openai_server.base_url, "--api-key-env", KEY_ENV, "--out", "runs", "-c", "2"]
    process = subprocess.Popen(
        [*command, "--quiet"],
        cwd=project,
        env={**env, KEY_ENV: KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and saved_count(project) < 3:
        time.sleep(0.01)
    process.kill()  # SIGKILL; TerminateProcess on Windows
    process.wait(timeout=10)
    assert saved_count(project) < len(names), "killed too late"

    database = sqlite3.connect(cache_file(project))
    assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stored = database.execute("SELECT count(*) FROM responses").fetchone()[0]
    assert database.execute("SELECT count(*) FROM responses WHERE status != 200").fetchone() == (0,)
    database.close()
    assert stored >= 2
    # A request the killed run had written to its socket may still reach the server's count:
    # read the count once it has stopped moving.
    sent_before = settled_count(openai_server)

    done = subprocess.run(
        [*command, "--json"], cwd=project, env={**env, KEY_ENV: KEY}, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["ok"] == len(names) and summary["cached"] == stored
    assert openai_server.count == sent_before + len(names) - stored
    records = records_of(Path(summary["run_dir"]))
    assert sorted(records) == names and all(r["status"] == "ok" for r in records.values())


# ---- dry run


def test_dry_run_lists_what_would_be_sent_and_sends_nothing(project, openai_server, run_server):
    for name in ("a", "b", "c"):
        write_spec(project, name)
    run_server()
    write_spec(project, "c", temperature=0.3)
    runs_before = sorted((project / "runs").iterdir())

    result, _, _ = run_server("--dry-run")

    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["counts"] == {"send": 1, "cache": 2, "replay": 0, "offline": 0, "error": 0}
    assert {r["record_id"]: r["source"] for r in plan["requests"]} == {
        "a": "cache",
        "b": "cache",
        "c": "send",
    }
    assert openai_server.count == 3
    assert sorted((project / "runs").iterdir()) == runs_before


def test_dry_run_text_needs_no_key_and_creates_nothing(project, run_cli, monkeypatch):
    write_spec(project, "alpha")
    write_spec(project, "beta", provider="offline")
    monkeypatch.delenv("GROQ_API_KEY", raising=False)

    result = run_cli("run", "specs", "--dry-run")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["send", "alpha", "(specs/alpha.yaml)"]
    assert lines[1].split() == ["offline", "beta", "(specs/beta.yaml)"]
    assert "2 requests: 1 to send, 0 from cache, 1 offline" in lines[2]
    assert lines[3].startswith("estimated cost: at most $0.00000")  # the request to Groq
    assert not (project / "runs").exists() and not (project / ".runner").exists()


def test_dry_run_with_no_cache_sends_everything(project, run_server):
    write_spec(project, "alpha")
    run_server()

    result, _, _ = run_server("--dry-run", "--no-cache")

    assert json.loads(result.stdout)["counts"]["send"] == 1
