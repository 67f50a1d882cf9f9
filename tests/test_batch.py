"""runner batch submit / status / fetch / cancel against the local server's Batch API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    KEY,
    KEY_ENV,
    LINUX_PROC,
    PEAK_WRAPPER,
    SENTIMENT,
    WEATHER_TOOL,
    latest_run,
    run_args,
    write_spec,
)
from jsonschema import Draft202012Validator

from runner.runs.batch import BatchStatus, iter_input_lines, watch_status
from runner.runs.store import RunStore

HERE = Path(__file__).parent
BATCH_SCHEMAS = json.loads((HERE / "data" / "openai-batch-schemas.json").read_text())

# What differs between two runs of the same requests: when, how long, and which batch.
RUN_SPECIFIC = ("started_at", "finished_at", "latency_ms", "batch", "attempts")


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def schema(name: str) -> Draft202012Validator:
    return Draft202012Validator({**BATCH_SCHEMAS, "$ref": f"#/components/schemas/{name}"})


def submit_args(base_url: str, *extra: str, paths: tuple[str, ...] = ("specs",)) -> list[str]:
    return ["batch", "submit", *run_args(base_url, paths)[1:], *extra]


def write_specs(project: Path) -> None:
    """A plain chat, a structured output over three cases, and a tool call."""
    write_spec(project, "plain")
    write_spec(
        project,
        "graded",
        "Grade this review as JSON: {{ review }}",
        response_format=SENTIMENT,
        cases=[{"id": f"r{i}", "review": f"review number {i}"} for i in range(3)],
    )
    write_spec(project, "weather", "Weather in Paris?", tools=[WEATHER_TOOL], tool_choice="auto")


def records(run_dir: Path) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in RunStore.open(run_dir).records()}


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in RUN_SPECIFIC}


def submit(run_cli, server, *extra: str) -> Path:
    result = run_cli(*submit_args(server.base_url, *extra, "--json"))
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["summary"]["run_dir"])


def test_full_cycle_equals_a_synchronous_run(project, run_cli, openai_server):
    write_specs(project)
    run_dir = submit(run_cli, openai_server, "--no-cache")
    assert records(run_dir) == {}  # nothing answered yet
    status = run_cli("batch", "status", run_dir, "--json")
    assert json.loads(status.output)["parts"][0]["status"] == "validating"
    early = run_cli("batch", "fetch", run_dir)
    assert early.exit_code == 1 and "wait for their batch" in early.output
    openai_server.batches.advance(10)
    status = json.loads(run_cli("batch", "status", run_dir, "--json").output)
    assert status["done"] and status["parts"][0]["request_counts"] == {
        "total": 5,
        "completed": 5,
        "failed": 0,
    }
    fetched = run_cli("batch", "fetch", run_dir)
    assert fetched.exit_code == 0, fetched.output
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["ok"] == 5
    assert manifest["mode"] == "batch"

    sync = run_cli(*run_args(openai_server.base_url), "--no-cache", "--json")
    assert sync.exit_code == 0, sync.output
    sync_dir = Path(json.loads(sync.stdout)["run_dir"])
    assert sync_dir != run_dir
    batch_records, sync_records = records(run_dir), records(sync_dir)
    assert sorted(batch_records) == sorted(sync_records)
    for rid, record in batch_records.items():
        assert comparable(record) == comparable(sync_records[rid]), rid
        assert record["batch"]["batch_id"].startswith("batch_")
    assert batch_records["weather"]["output"]["tool_calls"][0]["valid"]
    assert batch_records["graded/r1"]["output"]["parsed"]["label"] in ("positive", "negative")
    # results.jsonl is in plan order, and diff sees the same answers.
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [
        json.loads(line)["id"] for line in (sync_dir / "results.jsonl").read_text().splitlines()
    ]
    assert run_cli("diff", run_dir, sync_dir).exit_code == 0
    # A second fetch changes nothing and sends nothing new to the provider.
    before = len(openai_server.batches.calls)
    again = run_cli("batch", "fetch", run_dir)
    assert again.exit_code == 0
    assert {k: comparable(v) for k, v in records(run_dir).items()} == {
        k: comparable(v) for k, v in batch_records.items()
    }
    assert all("/content" not in path for _, path in openai_server.batches.calls[before:])


def test_every_input_line_passes_the_official_schemas(
    project, run_cli, openai_server, openai_request_validator
):
    write_specs(project)
    run_dir = submit(run_cli, openai_server)
    lines = list(iter_input_lines(run_dir))
    assert len(lines) == 5
    line_schema = schema("BatchRequestInput")
    for line in lines:
        line_schema.validate(line)
        assert set(line) == {"custom_id", "method", "url", "body"}
        assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
        openai_request_validator.validate(line["body"])
    assert len({line["custom_id"] for line in lines}) == 5
    # The server's objects have the published shapes too.
    backend = openai_server.batches
    for stored in backend.files.values():
        schema("OpenAIFile").validate(stored.to_json())
    assert backend.created
    for body in backend.created:
        schema("CreateBatchRequest").validate(body)
    assert ("POST", "/v1/files") in backend.calls
    for batch in backend.batches.values():
        schema("Batch").validate(batch.to_json())
    backend.advance(10)
    for batch in backend.batches.values():
        schema("Batch").validate(batch.to_json())
        for line in backend.content(batch.output_file_id).splitlines():
            schema("BatchRequestOutput").validate(json.loads(line))


def test_failed_lines_become_failed_records_with_the_providers_reason(
    project, run_cli, openai_server
):
    write_specs(project)
    openai_server.batches.fail_lines("review number 1", 400)
    run_dir = submit(run_cli, openai_server, "--no-cache")
    openai_server.batches.advance(10)
    result = run_cli("batch", "fetch", run_dir)
    assert result.exit_code == 1
    got = records(run_dir)
    failed = got["graded/r1"]
    assert failed["status"] == "failed" and failed["http_status"] == 400
    assert "must contain at least one message" in failed["error"]["message"]
    assert [rid for rid, r in got.items() if r["status"] != "ok"] == ["graded/r1"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["counts"]["failed"] == 1 and manifest["status"] == "incomplete"
    assert "runner batch submit --resume" in result.output

    # Resubmitting sends only the failed request, as a new part; a fetch completes the run.
    openai_server.batches.failures.clear()
    again = run_cli("batch", "submit", "--resume", run_dir)
    assert again.exit_code == 0, again.output
    state = json.loads((run_dir / "batch" / "state.json").read_text())
    assert [p["lines"] for p in state["parts"]] == [5, 1]
    second_input = (run_dir / "batch" / state["parts"][1]["input"]).read_text()
    assert json.loads(second_input)["custom_id"] == "graded/r1"
    openai_server.batches.advance(10)
    assert run_cli("batch", "fetch", run_dir).exit_code == 0
    assert all(r["status"] == "ok" for r in records(run_dir).values())


@pytest.mark.parametrize("status,said", [(429, "rate limited (HTTP 429)"), (503, "(HTTP 503)")])
def test_a_failed_line_is_not_said_to_be_retried(project, run_cli, openai_server, status, said):
    write_spec(project, "plain")
    openai_server.batches.fail_lines("plain", status)
    run_dir = submit(run_cli, openai_server, "--no-cache")
    openai_server.batches.advance(10)
    assert run_cli("batch", "fetch", run_dir).exit_code == 1
    message = records(run_dir)["plain"]["error"]["message"]
    assert said in message and "retry" not in message, message


def test_a_case_id_no_spec_has_stops_submit(project, run_cli, openai_server):
    write_spec(project, "graded", "{{ review }}", cases=[{"id": "r1", "review": "x"}])
    result = run_cli(*submit_args(openai_server.base_url, "--case", "r9"))
    assert result.exit_code == 2 and "no spec given has a case with id 'r9'" in result.output
    assert not (project / "runs").exists() and openai_server.batches.calls == []


def test_an_expired_batch_keeps_its_partial_output(project, run_cli, openai_server):
    for i in range(6):
        write_spec(project, f"s{i}")
    backend = openai_server.batches
    backend.lines_per_second = 1 / (6 * 3600)  # one line in 6 hours: 3 of 6 in the 24h window
    run_dir = submit(run_cli, openai_server, "--no-cache")
    backend.advance(6 * 3600 * 2 + 10)
    status = json.loads(run_cli("batch", "status", run_dir, "--json").output)
    assert status["parts"][0]["status"] == "in_progress"
    assert status["parts"][0]["request_counts"]["completed"] == 2
    backend.advance(3600 * 30)
    result = run_cli("batch", "fetch", run_dir)
    assert result.exit_code == 1
    got = records(run_dir)
    ok = sorted(rid for rid, r in got.items() if r["status"] == "ok")
    expired = sorted(rid for rid, r in got.items() if r["status"] == "failed")
    assert len(ok) == 3 and len(expired) == 3
    assert (
        json.loads(run_cli("batch", "status", run_dir, "--json").output)["parts"][0]["status"]
        == "expired"
    )
    for rid in expired:
        assert got[rid]["error"]["kind"] == "batch"
        assert "batch_expired" in got[rid]["error"]["message"]
        assert "expired" in got[rid]["error"]["message"]


def test_a_run_larger_than_the_limits_is_split_across_files(project, run_cli, openai_server):
    write_spec(
        project,
        "many",
        "Summarise {{ text }}",
        cases=[{"id": f"c{i:02d}", "text": "x" * (i * 40)} for i in range(25)],
    )
    write_spec(project, "other", model="openai/gpt-oss-20b")
    run_dir = submit(
        run_cli, openai_server, "--no-cache", "--max-lines", "10", "--max-bytes", "4096"
    )
    state = json.loads((run_dir / "batch" / "state.json").read_text())
    parts = state["parts"]
    assert len(parts) >= 4
    assert all(p["lines"] <= 10 and p["bytes"] <= 4096 for p in parts)
    assert sum(p["lines"] for p in parts) == 26
    for part in parts:  # one model per batch file
        bodies = (run_dir / "batch" / part["input"]).read_text().splitlines()
        assert {json.loads(b)["body"]["model"] for b in bodies} == {part["model"]}
        assert (run_dir / "batch" / part["input"]).stat().st_size == part["bytes"]
    assert len(openai_server.batches.batches) == len(parts)
    openai_server.batches.advance(10)
    assert run_cli("batch", "fetch", run_dir).exit_code == 0
    ids = [json.loads(line)["id"] for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert ids == [f"many/c{i:02d}" for i in range(25)] + ["other"]


def test_cached_answers_are_not_submitted_and_fetch_fills_the_cache(
    project, run_cli, openai_server
):
    write_spec(project, "one")
    write_spec(project, "two")
    assert run_cli(*run_args(openai_server.base_url, ("specs/one.yaml",))).exit_code == 0
    run_dir = submit(run_cli, openai_server)
    lines = list(iter_input_lines(run_dir))
    assert [line["custom_id"] for line in lines] == ["two"]
    assert records(run_dir)["one"]["cached"] is True
    openai_server.batches.advance(10)
    assert run_cli("batch", "fetch", run_dir).exit_code == 0
    # Both are now in the cache: a synchronous run sends nothing.
    before = openai_server.count
    assert run_cli(*run_args(openai_server.base_url)).exit_code == 0
    assert openai_server.count == before


def test_cancel_and_watch(project, run_cli, openai_server):
    for i in range(4):
        write_spec(project, f"s{i}")
    backend = openai_server.batches
    backend.lines_per_second = 1 / 60
    run_dir = submit(run_cli, openai_server, "--no-cache")
    backend.advance(1 + 120 + 1)  # two lines done
    cancelled = run_cli("batch", "cancel", run_dir)
    assert cancelled.exit_code == 0 and "cancelling" in cancelled.output
    backend.advance(2)
    watched = run_cli("batch", "status", run_dir, "--watch", "--interval", "0.01")
    assert watched.exit_code == 0 and "cancelled" in watched.output
    assert run_cli("batch", "fetch", run_dir).exit_code == 1
    got = records(run_dir)
    assert sorted(r["status"] for r in got.values()) == ["failed", "failed", "ok", "ok"]
    assert all("batch_cancelled" in r["error"]["message"] for r in got.values() if r["error"])


def test_a_fetch_killed_midway_finishes_when_run_again(project, run_cli, openai_server):
    write_spec(
        project,
        "bulk",
        "Echo {{ text }}",
        cases=[{"id": f"c{i:03d}", "text": "y" * 400} for i in range(200)],
    )
    env = {**os.environ, KEY_ENV: KEY, "PYTHONPATH": str(HERE.parent)}
    command = [sys.executable, "-m", "runner"]
    run_dir = submit(run_cli, openai_server, "--no-cache")
    backend = openai_server.batches
    backend.advance(10)
    backend.content_chunk, backend.content_delay = 2048, 0.01  # the output file in ~0.5 s
    fetch_command = [*command, "batch", "fetch", str(run_dir), "-q"]
    output = run_dir / "batch" / "output-000.jsonl"

    # First kill: in the middle of the download.
    fetch = subprocess.Popen(fetch_command, cwd=project, env=env)
    deadline = time.monotonic() + 30
    while not any(path.endswith("/content") for _, path in list(backend.calls)):
        assert time.monotonic() < deadline and fetch.poll() is None
        time.sleep(0.02)
    time.sleep(0.2)
    fetch.kill()  # SIGKILL; TerminateProcess on Windows
    fetch.wait()
    assert not output.exists()  # killed mid-download: no half file under the real name

    # Second kill: once the file is in, while the lines are indexed and records written.
    fetch = subprocess.Popen(fetch_command, cwd=project, env=env)
    while not output.exists():
        assert time.monotonic() < deadline and fetch.poll() is None
        time.sleep(0.005)
    fetch.kill()  # SIGKILL; TerminateProcess on Windows
    fetch.wait()
    backend.content_delay = 0.0
    again = subprocess.run(
        [*command, "batch", "fetch", str(run_dir), "-q"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert not list((run_dir / "batch").glob(".*.tmp"))
    got = records(run_dir)
    assert len(got) == 200 and all(r["status"] == "ok" for r in got.values())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["ok"] == 200


def test_a_batch_the_provider_rejects_fails_every_line_with_its_reason(
    project, run_cli, openai_server
):
    for i in range(3):
        write_spec(project, f"s{i}")
    openai_server.batches.max_lines = 2  # the server accepts fewer lines than runner sends
    run_dir = submit(run_cli, openai_server, "--no-cache")
    openai_server.batches.advance(10)
    assert "failed" in run_cli("batch", "status", run_dir).output
    assert run_cli("batch", "fetch", run_dir).exit_code == 1
    got = records(run_dir)
    assert len(got) == 3
    for record in got.values():
        assert record["status"] == "failed" and record["error"]["kind"] == "batch"
        assert "failed: more than 2 lines" in record["error"]["message"]


def test_an_interrupted_submit_is_finished_by_resume(project, run_cli, openai_server):
    write_spec(project, "one")
    write_spec(project, "two")
    backend = openai_server.batches
    backend.fail_creates = 1
    failed = run_cli(*submit_args(openai_server.base_url, "--retries", "0"))
    assert failed.exit_code == 1
    assert "HTTP 500" in failed.output and "runner batch submit --resume" in failed.output
    run_dir = latest_run(project)
    state = json.loads((run_dir / "batch" / "state.json").read_text())
    assert state["parts"][0]["file_id"] and state["parts"][0]["batch_id"] is None
    assert "not_created" in run_cli("batch", "status", run_dir).output
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["counts"]["not_sent"] == 2
    resumed = run_cli("batch", "submit", "--resume", run_dir)
    assert resumed.exit_code == 0, resumed.output
    assert len(backend.uploads) == 1  # the file uploaded before the failure is used
    assert run_cli("batch", "submit", "--resume", run_dir).exit_code == 2  # still running
    backend.advance(10)
    assert run_cli("batch", "fetch", run_dir).exit_code == 0
    assert sorted(records(run_dir)) == ["one", "two"]


def test_watch_and_fetch_of_a_stopped_submit_point_to_resume(project, run_cli, openai_server):
    write_spec(project, "one")
    openai_server.batches.fail_creates = 1
    assert run_cli(*submit_args(openai_server.base_url, "--retries", "0")).exit_code == 1
    run_dir = latest_run(project)
    polls: list[BatchStatus] = []

    def sleep(seconds: float) -> None:
        raise AssertionError("watch kept polling a part that has no batch")

    watch_status(run_dir, 0.01, polls.append, sleep=sleep)
    assert polls[-1].not_created == 1
    resume = f"runner batch submit --resume {run_dir}"
    for args in (("status", run_dir, "--watch", "--interval", "0.01"), ("fetch", run_dir)):
        shown = run_cli("batch", *args).output
        assert resume in shown and "wait for their batch" not in shown, shown


@pytest.mark.parametrize("provider,prefix", [("groq", "/openai/v1"), ("openai", "/v1")])
def test_groq_and_openai_paths_and_the_key_stays_secret(
    project, run_cli, openai_server, provider, prefix
):
    write_specs(project)
    openai_server.api_key = KEY
    base_url = f"http://127.0.0.1:{openai_server.port}{prefix}"
    args = ["batch", "submit", "specs", "--provider", provider, "--base-url", base_url]
    submitted = run_cli(*args, "--api-key-env", KEY_ENV, "--json")
    assert submitted.exit_code == 0, submitted.output
    run_dir = Path(json.loads(submitted.stdout)["summary"]["run_dir"])
    openai_server.batches.advance(10)
    outputs = [
        submitted.output,
        run_cli("batch", "status", run_dir, "--watch", "--interval", "0.01").output,
        run_cli("batch", "fetch", run_dir).output,
    ]
    assert all(r["status"] == "ok" for r in records(run_dir).values())
    assert {record["provider"]["name"] for record in records(run_dir).values()} == {provider}
    paths = {path for _, path in openai_server.batches.calls}
    assert f"{prefix}/files" in paths and any(p.startswith(f"{prefix}/batches/") for p in paths)
    assert all(line["url"] == "/v1/chat/completions" for line in iter_input_lines(run_dir))
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert not any(KEY in text for text in outputs)
    # A wrong key is refused with the provider's reason, and still not printed.
    openai_server.api_key = "another"
    refused = run_cli(*args, "--api-key-env", KEY_ENV, "--no-cache")
    assert refused.exit_code == 1 and "HTTP 401" in refused.output and KEY not in refused.output


def test_a_batch_run_is_a_run_for_export_replay_and_resume(project, run_cli, openai_server):
    write_specs(project)
    openai_server.batches.fail_lines("review number 2", 500)
    run_dir = submit(run_cli, openai_server, "--no-cache")
    openai_server.batches.advance(10)
    assert run_cli("batch", "fetch", run_dir).exit_code == 1
    # runner run --resume sends the failed request synchronously, and only that one.
    before = openai_server.count
    resumed = run_cli("run", "--resume", run_dir, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert openai_server.count == before + 1
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"
    exported = run_cli("export", run_dir, "-o", "cassette.jsonl")
    assert exported.exit_code == 0, exported.output
    replay = ["--replay", "cassette.jsonl", "--base-url", openai_server.base_url, "--json"]
    replayed = run_cli("run", "specs", *replay)
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.stdout)["cached"] == 5
    report = run_cli("report", run_dir, "--format", "md")
    assert report.exit_code == 0, report.output
    assert "| **all** | 5 | 5 | 0 | 0 |" in report.output, report.output


SCALE_SPEC = """\
version: 1
name: scale
model: openai/gpt-oss-120b
max_completion_tokens: 64
cases: data/reviews.csv
messages:
  - role: user
    content: "Review {{ id }} of {{ product }}: {{ review }}"
"""


def _peak_submit_mb(folder: Path, rows: int, server) -> float:
    """Peak resident memory (MB) of a ``runner batch submit`` of ROWS cases, in a subprocess."""
    (folder / "specs" / "data").mkdir(parents=True)
    (folder / "pyproject.toml").write_text("")
    (folder / "specs" / "scale.yaml").write_text(SCALE_SPEC)
    with open(folder / "specs" / "data" / "reviews.csv", "w") as handle:
        handle.write("id,product,review\n")
        handle.writelines(f"r{i},product {i % 97},Review text number {i}.\n" for i in range(rows))
    env = {**os.environ, KEY_ENV: KEY, "PYTHONPATH": str(HERE.parent)}
    peak = folder / "peak.txt"
    args = submit_args(server.base_url, "--no-cache", "-q")
    done = subprocess.run(
        [sys.executable, "-c", PEAK_WRAPPER, str(peak), *args], cwd=folder, env=env, check=False
    )
    assert done.returncode == 0
    return int(peak.read_text()) / 1024


@LINUX_PROC
def test_submit_memory_does_not_grow_with_the_requests(tmp_path, openai_server):
    """bench/batch_scale.py submits 100,000 requests; here 500 against 8,000 (16x)."""
    openai_server.batches.keep_uploads = False
    small = _peak_submit_mb(tmp_path / "small", 500, openai_server)
    large = _peak_submit_mb(tmp_path / "large", 8000, openai_server)
    assert openai_server.batches.uploads[-1] > 16 * openai_server.batches.uploads[0] * 0.9
    assert large < 100
    assert large - small < 8, (small, large)


def test_the_completion_window_goes_to_the_provider_from_24h_to_7d(project, run_cli, openai_server):
    write_spec(project, "one")
    refused = run_cli(*submit_args(openai_server.base_url, "--completion-window", "2h"))
    assert refused.exit_code == 2 and "from 24h to 7d" in refused.output
    assert not (project / "runs").exists() and not openai_server.batches.calls
    submit(run_cli, openai_server, "--completion-window", "7d")
    assert [body["completion_window"] for body in openai_server.batches.created] == ["7d"]


def test_a_fetch_or_resubmit_of_a_run_another_process_writes_is_refused(
    project, run_cli, openai_server
):
    """One writer per run (issue 28.1): two fetches at once would both append records."""
    from runner.runs.lock import RunLock

    write_specs(project)
    run_dir = submit(run_cli, openai_server, "--no-cache")
    openai_server.batches.advance(10)
    held = RunLock.acquire(run_dir, "runner batch fetch")
    try:
        fetched = run_cli("batch", "fetch", run_dir)
        resubmitted = run_cli("batch", "submit", "--resume", run_dir)
    finally:
        held.release()

    for refused in (fetched, resubmitted):
        assert refused.exit_code == 2, refused.output
        assert "(runner batch fetch) is writing the run directory" in refused.output
    assert records(run_dir) == {}
    assert run_cli("batch", "fetch", run_dir).exit_code == 0
    assert len(records(run_dir)) == 5


def test_a_dry_run_lists_what_would_be_submitted_and_submits_nothing(
    project, run_cli, openai_server
):
    write_specs(project)
    result = run_cli(*submit_args(openai_server.base_url, "--dry-run", "--no-cache", "--json"))

    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["total"] == 5 and plan["counts"]["send"] == 5
    assert not (project / "runs").exists() and openai_server.count == 0
