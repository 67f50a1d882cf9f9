"""The Batch flow on the offline provider: submit, status and fetch complete locally, through
the same steps as on a real provider (runner/send/offline_batch.py)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import SENTIMENT, read_records, write_spec


def batch_json(run_cli, *args: str) -> dict:
    result = run_cli("batch", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_submit_status_fetch_on_the_offline_provider(project, run_cli, monkeypatch):
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    write_spec(project, "alpha", "Say hello.")
    write_spec(project, "beta", "Answer in JSON.", response_format=SENTIMENT)
    write_spec(
        project, "gamma", "Pick ({{ x }}).", cases=[{"id": "a", "x": 1}, {"id": "b", "x": 2}]
    )

    submitted = batch_json(run_cli, "submit", "specs", "--provider", "offline")
    run_dir = Path(submitted["summary"]["run_dir"])

    # Nothing is answered at submit time: the requests went into input files and batches.
    assert submitted["summary"]["total"] == 0 and submitted["waiting"] == 4
    assert [p["status"] for p in submitted["batch"]["parts"]] == ["in_progress"]
    assert len((run_dir / "batch" / "input-000.jsonl").read_text().splitlines()) == 4
    status = batch_json(run_cli, "status", "latest")
    assert [p["status"] for p in status["parts"]] == ["completed"]
    assert status["parts"][0]["request_counts"]["completed"] == 4

    fetched = batch_json(run_cli, "fetch", "latest")

    assert fetched["succeeded"] and fetched["summary"]["total"] == 4
    records = read_records(run_dir)
    assert sorted(records) == ["alpha", "beta", "gamma/a", "gamma/b"]
    assert all(r["offline"] and r["status"] == "ok" for r in records.values())
    assert (run_dir / "batch" / "output-000.jsonl").is_file()
    # The same answers a synchronous offline run gives: one provider, one code path.
    synchronous = json.loads(run_cli("run", "specs", "--provider", "offline", "--json").stdout)
    direct = read_records(Path(synchronous["run_dir"]))
    assert {i: r["output"] for i, r in records.items()} == {
        i: r["output"] for i, r in direct.items()
    }


def test_fetch_right_after_submit_completes_the_batch(project, run_cli):
    write_spec(project, "alpha", "Say hello.")
    batch_json(run_cli, "submit", "specs", "--provider", "offline")
    fetched = batch_json(run_cli, "fetch", "latest")
    assert fetched["succeeded"] and fetched["waiting"] == 0


def test_a_second_fetch_says_nothing_new_came_in(project, run_cli):
    write_spec(
        project, "gamma", "Pick ({{ x }}).", cases=[{"id": str(i), "x": i} for i in range(3)]
    )
    submitted = run_cli("batch", "submit", "specs", "--provider", "offline")
    assert submitted.stderr.startswith("submitted: every request went into a batch (none was")
    first = run_cli("batch", "fetch", "latest")
    assert first.exit_code == 0, first.output
    assert first.stderr.startswith("fetched: 3 records written now (3 ok,")
    before = (Path(project) / "runs").glob("*/results.jsonl")
    (results,) = list(before)
    lines = results.read_bytes()

    again = run_cli("batch", "fetch", "latest")

    assert again.exit_code == 0, again.output
    assert again.stderr.startswith("fetched: nothing new (the records of every batch"), again.stderr
    assert "written now" not in again.stderr
    assert results.read_bytes() == lines  # nothing written again
    assert batch_json(run_cli, "fetch", "latest")["summary"]["total"] == 0


def test_cancel_before_the_batch_ran(project, run_cli):
    write_spec(project, "alpha", "Say hello.")
    batch_json(run_cli, "submit", "specs", "--provider", "offline")
    cancelled = run_cli("batch", "cancel", "latest")
    assert cancelled.exit_code == 0, cancelled.output
    assert "cancelled" in cancelled.stdout
    fetched = run_cli("batch", "fetch", "latest", "--json")
    assert fetched.exit_code == 1  # the request has no answer
    assert json.loads(fetched.stdout)["summary"]["ok"] == 0
