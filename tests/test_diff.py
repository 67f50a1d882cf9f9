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
    assert '  label: "positive" -> "meh"' in text and "status: ok -> invalid_output" in text
    assert "answer:" not in text  # a JSON answer is shown by its keys, not again as text


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


def saved_run(folder: Path, records: list[dict]) -> Path:
    """A finished run directory holding RECORDS in this order (written through the store)."""
    from runner.runs.store import RunStore

    store = RunStore.create(folder)
    store.write_manifest({"run_id": store.run_id, "status": "complete"})
    for record in records:
        store.save_record(record)
    store.finish_results(r["id"] for r in records)
    return store.root


def answer(record_id: str, content: str) -> dict:
    return {"id": record_id, "status": "ok", "output": {"content": content}, "latency_ms": 1}


@pytest.mark.parametrize("order", ["same", "shuffled"])
def test_large_runs_pair_by_id_whatever_their_order(tmp_path, run_cli, order):
    """Runs of the same plan are walked side by side; runs in another order (or with other ids)
    go through an on-disk index. Both must give what a naive dict comparison gives."""
    import random

    ids = [f"s/r{i}" for i in range(400)]
    run_a = saved_run(tmp_path / "a", [answer(i, "same") for i in ids])
    ids_b = ids[:150] + [f"s/new{i}" for i in range(20)] + ids[160:]
    if order == "shuffled":
        random.Random(7).shuffle(ids_b)
    records_b = [answer(i, "other" if i.endswith("7") else "same") for i in ids_b]
    run_b = saved_run(tmp_path / "b", records_b)

    result = run_cli("diff", run_a, run_b, "--json")
    text = run_cli("diff", run_a, run_b)

    data = json.loads(result.stdout)
    changed = sorted(r["id"] for r in data["records"] if r["differs"])
    assert changed == sorted(i for i in set(ids) & set(ids_b) if i.endswith("7"))
    assert data["missing"] == ids[150:160]
    assert sorted(data["added"]) == sorted(f"s/new{i}" for i in range(20))
    assert data["counts"] == {
        "paired": 390,
        "changed": len(changed),
        "unchanged": 390 - len(changed),
        "added": 20,
        "missing": 10,
    }
    assert data["identical"] is False and result.exit_code == text.exit_code == 1
    assert text.stdout.splitlines()[-1] == (
        f"390 paired: {len(changed)} changed, {390 - len(changed)} unchanged; 20 added, 10 missing"
    )
    from runner.results.diff import diff_runs

    assert diff_runs(run_a, run_b).to_json() == data


def test_records_that_differ_only_in_timings_are_the_same_and_the_rest_still_counts(tmp_path):
    """Lines equal but for attempts, latency and times are compared without parsing; any other
    difference, even inside a field after the timings, is parsed and shown."""
    from runner.results.diff import diff_runs

    def record(record_id, content="same", latency=1.5, when="2026-11-26T00:00:00.000Z", **more):
        stream = more.pop("stream", None)
        return {
            "id": record_id,
            "status": "ok",
            "output": {"content": content},
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
            "attempts": 1,
            "latency_ms": latency,
            "stream": stream,
            "started_at": when,
            "finished_at": when,
            **more,
        }

    late = {"latency": 2e-05, "when": "2026-11-27T09:00:00.000Z", "stream": {"ttft_ms": 3.5}}
    passed = {"expectations": {"passed": True, "checks": [{"check": "equals", "passed": True}]}}
    failed = {"expectations": {"passed": False, "checks": [{"check": "equals", "passed": False}]}}
    run_a = saved_run(
        tmp_path / "a",
        [record("timing"), record("content"), record("verdict", **passed), record("retried")],
    )
    run_b = saved_run(
        tmp_path / "b",
        [
            record("timing", **late),
            record("content", "other", **late),
            record("verdict", **late, **failed),
            record("retried", attempts=2),
        ],
    )

    result = diff_runs(run_a, run_b)

    assert sorted(r.id for r in result.changed) == ["content", "verdict"]
    assert result.unchanged == 2 and result.paired == 4
    # The timing-only pair took the byte comparison, not the parser.
    from runner.results.diff import _same_answer

    line_a, line_b = (
        (run / "results.jsonl").read_bytes().split(b"\n")[0] for run in (run_a, run_b)
    )
    assert _same_answer(line_a, line_b)


@pytest.mark.no_render_audit
def test_a_reader_that_goes_away_ends_the_diff_quietly(project, run_cli):
    """`runner diff A B | head`: SIGPIPE ends runner at its next write, with no traceback
    and no message (it exited 1 through click's broken-pipe handling)."""
    import signal
    import subprocess
    import sys

    cases = [{"id": f"c{i:03}", "x": str(i)} for i in range(400)]
    write_spec(project, "many", "Say {{ x }} once.", cases=cases)
    run_a = json.loads(run_cli("run", "specs", "--provider", "offline", "--json").stdout)
    write_spec(project, "many", "Say {{ x }} twice.", cases=cases)
    run_b = json.loads(run_cli("run", "specs", "--provider", "offline", "--json").stdout)
    command = [sys.executable, "-m", "runner", "diff", run_a["run_dir"], run_b["run_dir"]]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline().startswith(b"comparing ")
        process.stdout.close()  # as head does after its lines
        errors = process.stderr.read()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGPIPE
    assert errors == b""


def test_the_diff_leads_with_what_changed_and_keeps_tokens_for_verbose(project, run_cli):
    """An offline run of a changed prompt: each changed record says old -> new per key; token
    and latency changes (most of the lines before) wait for --verbose."""
    schema = {
        "type": "object",
        "properties": {"team": {"type": "string", "enum": ["billing", "platform", "docs"]}},
        "required": ["team"],
        "additionalProperties": False,
    }
    fields = {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "t", "strict": True, "schema": schema},
        },
        "cases": [{"id": f"t{i}", "ticket": f"ticket {i}"} for i in range(8)],
    }
    write_spec(project, "triage", "Route: {{ ticket }}", **fields)
    run_a = json.loads(run_cli("run", "specs", "--provider", "offline", "--json").stdout)
    write_spec(project, "triage", "Route this ticket to a team: {{ ticket }}", **fields)
    run_b = json.loads(run_cli("run", "specs", "--provider", "offline", "--json").stdout)

    plain = run_cli("diff", run_a["run_dir"], run_b["run_dir"])
    verbose = run_cli("diff", run_a["run_dir"], run_b["run_dir"], "--verbose")

    lines = plain.stdout.splitlines()
    changed = [i for i, line in enumerate(lines) if line.startswith("changed ")]
    assert changed, plain.stdout
    first = changed[0]
    assert lines[first].endswith("  (openai/gpt-oss-120b)")
    assert lines[first + 1].startswith('  team: "') and " -> " in lines[first + 1]
    assert "(info)" not in plain.stdout and "tokens" not in plain.stdout.split("\n8 paired")[0]
    assert "(info)" in verbose.stdout and "latency_ms" in verbose.stdout
    assert len(verbose.stdout.splitlines()) > len(lines)


def test_unchanged_records_with_other_token_counts_are_counted_not_listed(tmp_path, run_cli):
    def record(record_id: str, tokens: int) -> dict:
        usage = {"prompt_tokens": 3, "completion_tokens": tokens, "total_tokens": 3 + tokens}
        return {
            "id": record_id,
            "status": "ok",
            "output": {"content": "same"},
            "usage": usage,
            "latency_ms": 1,
        }

    run_a = saved_run(tmp_path / "a", [record(f"r{i:02}", 4) for i in range(24)])
    run_b = saved_run(tmp_path / "b", [record(f"r{i:02}", 5) for i in range(24)])

    plain = run_cli("diff", run_a, run_b)
    verbose = run_cli("diff", run_a, run_b, "-v")

    assert plain.exit_code == 0 and plain.stdout.splitlines()[1:] == [
        "24 paired: 0 changed, 24 unchanged; 0 added, 0 missing; the runs give the same answers",
        "24 unchanged records used other token counts "
        "(--verbose shows them, and every token and latency change)",
    ]
    assert len(verbose.stdout.splitlines()) > 24 * 2
