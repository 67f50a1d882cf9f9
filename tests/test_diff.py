"""`runner diff`: two runs compared record by record, against the local server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import KEY, KEY_ENV, SENTIMENT, run_args, write_spec


@pytest.fixture
def run_specs(run_cli, openai_server, project, monkeypatch):
    """Run the CLI on ``specs/`` against the local server, never from the cache; the run dir."""
    monkeypatch.setenv(KEY_ENV, KEY)

    def run(*extra: str) -> Path:
        result = run_cli(
            *run_args(openai_server.base_url),
            "--json",
            "--no-cache",
            *extra,
        )
        return Path(json.loads(result.stdout)["run_dir"])

    return run


def test_added_missing_and_changed_records(project, openai_server, run_specs, run_cli):
    for name in ("a", "b", "c"):
        write_spec(project, name)
    openai_server.plan('reply:{"content": "one\\ntwo\\nthree"}', marker="(b)")
    run_a = run_specs()
    (project / "specs" / "a.yaml").unlink()
    write_spec(project, "d")
    openai_server.plan('reply:{"content": "one\\nTWO\\nthree"}', marker="(b)")
    run_b = run_specs()

    result = run_cli("diff", run_a, run_b)

    assert result.exit_code == 1
    out = result.stdout
    assert "changed b" in out.replace("  ", " ")
    assert "-two" in out and "+TWO" in out
    assert "added   d" in out and "missing a" in out
    assert "c" not in [line.split()[-1] for line in out.splitlines() if line.startswith("changed")]
    assert out.splitlines()[-1] == "2 paired: 1 changed, 1 unchanged; 1 added, 1 missing"


def test_json_output(project, openai_server, run_specs, run_cli):
    for name in ("a", "b", "c"):
        write_spec(project, name)
    run_a = run_specs()
    (project / "specs" / "a.yaml").unlink()
    write_spec(project, "d")
    openai_server.plan('reply:{"content": "Something else."}', marker="(b)")
    run_b = run_specs()

    result = run_cli("diff", run_a, run_b, "--json")

    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["identical"] is False
    assert data["counts"] == {"paired": 2, "changed": 1, "unchanged": 1, "added": 1, "missing": 1}
    assert data["added"] == ["d"] and data["missing"] == ["a"]
    (record,) = [r for r in data["records"] if r["differs"]]
    assert record["id"] == "b"
    content = next(c for c in record["changes"] if c["field"] == "content")
    assert content["after"] == "Something else."
    assert any(line.startswith("+Something") for line in content["detail"])
    assert "latency_ms" in [c["field"] for c in record["info"]]


def test_identical_runs_exit_0_whatever_the_latency(project, openai_server, run_specs, run_cli):
    for name in ("a", "b"):
        write_spec(project, name)
    run_a = run_specs()
    openai_server.latency = 0.05
    run_b = run_specs()

    result = run_cli("diff", run_a, run_b)
    as_json = run_cli("diff", run_a, run_b, "--json")

    assert result.exit_code == 0, result.stdout
    assert "2 paired: 0 changed, 2 unchanged; 0 added, 0 missing" in result.stdout
    assert "the runs give the same answers" in result.stdout
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["identical"] is True


def test_parsed_fields_status_and_finish_reason(project, openai_server, run_specs, run_cli):
    write_spec(project, "review", response_format=SENTIMENT)
    openai_server.plan('reply:{"content": "{\\"label\\": \\"positive\\", \\"score\\": 0.5}"}')
    run_a = run_specs()
    openai_server.plan(
        'reply:{"content": "{\\"label\\": \\"meh\\", \\"score\\": 0.5}", "finish_reason": "length"}'
    )
    run_b = run_specs()

    result = run_cli("diff", run_a, run_b, "--json")

    assert result.exit_code == 1
    (record,) = json.loads(result.stdout)["records"]
    changes = {c["field"]: c for c in record["changes"]}
    assert changes["status"]["before"] == "ok" and changes["status"]["after"] == "invalid_output"
    assert changes["parsed"]["detail"] == ["label"]
    assert changes["finish_reason"]["after"] == "length"
    assert changes["valid"]["before"] is True and changes["valid"]["after"] is False
    text = run_cli("diff", run_a, run_b).stdout
    assert "parsed: keys changed: label" in text and "status: ok -> invalid_output" in text


def test_a_failure_against_a_success(project, openai_server, run_specs, run_cli):
    write_spec(project, "alpha")
    run_a = run_specs()
    openai_server.plan("500")
    run_b = run_specs("--retries", "0")

    result = run_cli("diff", run_a, run_b)

    assert result.exit_code == 1
    assert "status: ok -> failed" in result.stdout and "http_status: 200 -> 500" in result.stdout


def test_a_folder_that_is_no_run_is_a_usage_error(project, run_specs, run_cli):
    write_spec(project, "alpha")
    run_a = run_specs()
    (project / "empty").mkdir()

    result = run_cli("diff", run_a, "empty")

    assert result.exit_code == 2
    assert "empty is not a run directory" in result.stderr and "Traceback" not in result.output
