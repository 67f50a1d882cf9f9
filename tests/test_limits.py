"""Long runs under Groq-style limits (tests/provider_limits.py), scaled down in time.

A "minute" or a "day" here lasts a second or two, so a budget runs out and comes back within a
test: fair retries under contention, a daily limit that stops the run and a resume after the
reset, token pacing, oversized requests, and two models that do not slow each other down.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import yaml
from helpers import KEY, KEY_ENV, latest_run, run_args
from provider_limits import ProviderLimits

from runner.runs.store import RunStore

MODEL = "openai/gpt-oss-120b"


def write_bulk_spec(project: Path, count: int, name: str = "bulk", **fields) -> None:
    """One spec with ``count`` cases (one request each)."""
    spec = {
        "version": 1,
        "name": name,
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello ({{ n }})."}],
        "cases": [{"id": f"c{i:04}", "n": i} for i in range(count)],
        **fields,
    }
    (project / "specs").mkdir(exist_ok=True)
    (project / "specs" / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


@pytest.fixture
def limited_run(run_cli, openai_server, project, monkeypatch):
    """``runner run specs`` against the server, whose limits the test sets."""
    monkeypatch.setenv(KEY_ENV, KEY)

    def run(*extra: str):
        return run_cli(*run_args(openai_server.base_url), "--backoff", "0.01", *extra)

    return run


def read_records(run_dir: Path) -> dict[str, dict]:
    return {record["id"]: record for record in RunStore.open(run_dir).records()}


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def test_1000_requests_at_concurrency_20_use_the_whole_budget_and_none_fails(
    project, openai_server, limited_run
):
    write_bulk_spec(project, 1000)
    limit, window = 500, 2.5  # a "minute" of 2.5 s; the client sends faster than 200/s
    limits = openai_server.provider_limits = ProviderLimits(rpm=(limit, window))
    openai_server.record = False

    result = limited_run("-c", "20", "--retries", "0", "--quiet")

    assert result.exit_code == 0, result.stderr
    counts = manifest(latest_run(project))["counts"]
    assert counts["ok"] == 1000 and counts["failed"] == 0 and counts["not_sent"] == 0
    admitted = limits.admitted[MODEL]
    assert len(admitted) == 1000  # nothing was sent twice once answered
    # The most a sliding window grants between the first and the last request let in.
    span = admitted[-1] - admitted[0]
    capacity = limit * (1 + math.floor(span / window))
    assert len(admitted) / capacity >= 0.95, (span, limits.refused)


def test_a_used_up_daily_limit_stops_the_run_and_resume_finishes_it(
    project, openai_server, limited_run, run_cli
):
    write_bulk_spec(project, 20)
    limits = openai_server.provider_limits = ProviderLimits(rpd=(12, 1.5))  # a 1.5 s "day"

    started = time.monotonic()
    result = limited_run("-c", "4", "--max-wait", "0.5")
    stopped_after = time.monotonic() - started

    assert result.exit_code == 75, result.stderr
    run_dir = latest_run(project).relative_to(project)
    assert f"the requests-per-day limit for {MODEL} is used up; it resets in" in result.stderr
    assert f"runner run --resume {run_dir}" in result.stderr
    assert "Traceback" not in result.stderr
    assert stopped_after < 5.0
    first = manifest(run_dir)
    assert first["status"] == "incomplete"
    assert first["counts"]["ok"] == 12 and first["counts"]["not_sent"] == 8
    stop = first["stopped"]
    assert stop["reason"] == "rate_limit" and stop["limit"] == "requests-per-day"
    assert stop["model"] == MODEL and stop["resets_at"].endswith("Z")
    assert 0 < stop["resets_in_s"] <= 1.5

    time.sleep(stop["resets_in_s"] + 0.1)
    resumed = run_cli("run", "--resume", str(run_dir))

    assert resumed.exit_code == 0, resumed.stderr
    records = read_records(project / run_dir)
    assert sorted(records) == [f"bulk/c{i:04}" for i in range(20)]
    assert all(r["status"] == "ok" for r in records.values())
    assert len(limits.admitted[MODEL]) == 20
    final = manifest(run_dir)
    assert final["status"] == "complete" and "stopped" not in final


def test_a_tokens_per_minute_limit_paces_the_run_instead_of_collecting_429s(
    project, openai_server, limited_run
):
    write_bulk_spec(project, 20, max_tokens=100)  # about 105 tokens a request
    limits = openai_server.provider_limits = ProviderLimits(tpm=(1200, 0.5))

    result = limited_run("-c", "8")

    assert result.exit_code == 0, result.stderr
    assert len(limits.admitted[MODEL]) == 20
    # Answers overtaking each other can leave the client's view a request behind now and
    # then; without pacing, 20 requests in a bucket of about 11 collect a 429 each beyond it.
    assert limits.refused.get("TPM", 0) <= 3


def test_a_request_larger_than_the_token_limit_fails_at_once(project, openai_server, limited_run):
    write_bulk_spec(project, 1, name="small", max_tokens=10)
    write_bulk_spec(project, 1, name="huge", max_tokens=5000)
    openai_server.provider_limits = ProviderLimits(tpm=(4000, 60.0))

    result = limited_run()

    records = read_records(latest_run(project))
    assert result.exit_code == 1
    assert records["small/c0000"]["status"] == "ok"
    huge = records["huge/c0000"]
    assert huge["http_status"] == 413 and huge["attempts"] == 1
    assert "can never fit" in huge["error"]["message"]

    first_run = latest_run(project)
    result = limited_run("--tpm", "4000")  # known before sending: nothing is sent

    (second_run,) = set((project / "runs").iterdir()) - {first_run}
    huge = read_records(second_run)["huge/c0000"]
    assert huge["attempts"] == 0 and huge["error"]["kind"] == "too_large"
    assert "can never be sent" in huge["error"]["message"]
    assert len(openai_server.bodies_containing("(0)")) == 2  # small from the cache next time


def test_one_models_limit_does_not_slow_the_other(project, openai_server, limited_run):
    write_bulk_spec(project, 6, matrix={"model": ["slow-model", "fast-model"]})
    limits = openai_server.provider_limits = ProviderLimits(
        per_model={"slow-model": {"rpm": (2, 0.5)}}
    )

    result = limited_run("-c", "4")

    assert result.exit_code == 0, result.stderr
    slow, fast = limits.admitted["slow-model"], limits.admitted["fast-model"]
    assert len(slow) == 6 and len(fast) == 6
    # The slow model needs three of its windows; the fast one is done before its second.
    assert max(fast) < slow[2]
