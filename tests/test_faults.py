"""Every fault the local server can inject, mixed into one run: each spec ends with one record.

One run of 30 specs against one server. Markers in each spec's message (``(f07)``) route faults
to single specs, so a 429 storm, a 503 storm, dropped connections, malformed answers, a slow
answer and a very large one all happen at once, with concurrency 8. Whatever happens, every spec
must end with exactly one record whose status is ok, or failed / invalid_output with an error a
person can act on; the run must finish and write results.jsonl with one line per spec.
"""

from __future__ import annotations

import json

from helpers import read_records, run_args
from helpers import write_json_spec as write_spec

KEY_ENV = "RUNNER_TEST_KEY"
KEY = "sk-test-faults-5b4a39281706"
RETRIES = 3

JSON_MODE = {"type": "json_object"}
BAD_JSON_REPLY = 'reply:{"content": "I would rather not answer in JSON."}'

# name -> (faults queued for that spec's requests, expected status, words in the error message)
# Each fault kind the server knows appears at least once; "exhausted" cases get more faults
# than the run has attempts (RETRIES + 1), so the failure is what is saved.
CASES: dict[str, tuple[tuple[str, ...], str, str | None]] = {
    "reset-then-ok": (("reset",), "ok", None),
    "reset-exhausted": (("reset",) * (RETRIES + 1), "failed", "connection"),
    "drop-mid-body-then-ok": (("drop_mid_body",), "ok", None),
    "drop-mid-body-exhausted": (("drop_mid_body",) * (RETRIES + 1), "failed", "connection"),
    "truncated-json": (("truncated_json",), "failed", "not JSON"),
    "wrong-content-type": (("wrong_content_type",), "failed", "text/plain"),
    "html-error-then-ok": (("html_error",), "ok", None),
    "html-error-exhausted": (("html_error",) * (RETRIES + 1), "failed", "HTTP 502"),
    "error-200": (("error_200",), "failed", "had an error"),
    "missing-choices": (("missing_choices",), "failed", "choices"),
    "slow-then-ok": (("slow",), "ok", None),
    "large": (("large",), "ok", None),
    "500-exhausted": (("500",) * (RETRIES + 1), "failed", "HTTP 500"),
    "503-exhausted": (("503",) * (RETRIES + 1), "failed", "HTTP 503"),
    "invalid-json-mode": ((BAD_JSON_REPLY,), "invalid_output", None),
    "400-not-retried": (("400", "ok"), "failed", "must contain at least one message"),
    **{f"storm-429-{i:02}": (("429", "429"), "ok", None) for i in range(10)},
    **{f"storm-503-{i:02}": (("503", "503"), "ok", None) for i in range(4)},
}

# Faults that make the runner try again; the others are the answer it keeps.
RETRIED = frozenset({"reset", "drop_mid_body", "html_error", "slow", "429", "500", "503"})

FAULT_KINDS = sorted(
    {fault.split(":")[0] for faults, _, _ in CASES.values() for fault in faults} | {"ok"}
)


def sends(faults: tuple[str, ...]) -> int:
    """How many requests a spec with these faults queued makes."""
    retried = sum(fault in RETRIED for fault in faults)
    return min(retried + 1, RETRIES + 1)


def quiet_server(server) -> None:
    """The server's own tracebacks (a client that hung up on it) are not the runner's output."""
    server.handle_error = lambda request, client_address: None


def test_thirty_specs_with_every_fault_kind_end_with_one_record_each(
    project, run_cli, openai_server, monkeypatch
):
    assert len(CASES) == 30
    monkeypatch.setenv(KEY_ENV, KEY)
    quiet_server(openai_server)
    openai_server.slow_seconds = 0.6
    openai_server.large_bytes = 2_000_000
    openai_server.retry_after_ms = 20
    for name, (faults, _, _) in CASES.items():
        extra = {"response_format": JSON_MODE} if name == "invalid-json-mode" else {}
        write_spec(project, name, **extra)
        openai_server.plan(*faults, marker=f"({name})")

    result = run_cli(
        *run_args(openai_server.base_url),
        "-c",
        "8",
        "--retries",
        str(RETRIES),
        "--backoff",
        "0.01",
        "--timeout",
        "0.3",
        "--json",
    )

    assert "Traceback" not in result.output, result.output[-3000:]
    assert result.exit_code == 1, result.output
    (run_dir,) = (project / "runs").iterdir()
    records = read_records(run_dir)
    assert set(records) == set(CASES)
    for name, (faults, status, words) in CASES.items():
        record = records[name]
        assert record["id"] == name
        assert record["status"] == status, (name, record["error"])
        if status == "ok":
            assert record["error"] is None and record["output"]["content"]
            assert record["attempts"] == sends(faults), name
        elif status == "failed":
            message = record["error"]["message"]
            assert words in message, (name, message)
            assert len(message) > 20 and "Traceback" not in message
        else:
            assert record["output"]["errors"], name
    assert len(records["large"]["output"]["content"]) == 2_000_000

    lines = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == sorted(CASES)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["finished_at"] and manifest["status"] in ("complete", "incomplete")
    expected = {s: sum(c[1] == s for c in CASES.values()) for s in ("ok", "failed")}
    assert manifest["counts"]["total"] == 30
    assert manifest["counts"]["ok"] == expected["ok"]
    assert manifest["counts"]["failed"] == expected["failed"]
    assert manifest["counts"]["invalid_output"] == 1
    summary = json.loads(result.stdout)
    assert summary["total"] == 30 and summary["ok"] == expected["ok"]

    # Every request the server saw belongs to one spec, and no spec got more than it needed.
    for name, (faults, _, _) in CASES.items():
        sent = openai_server.bodies_containing(f"({name})")
        assert len(sent) == sends(faults), (name, len(sent))
    assert len(FAULT_KINDS) >= 14


def test_a_429_storm_on_every_request_of_a_run_recovers(
    project, run_cli, openai_server, monkeypatch
):
    monkeypatch.setenv(KEY_ENV, KEY)
    openai_server.retry_after_ms = 10
    names = [f"s{i:02}" for i in range(30)]
    for name in names:
        write_spec(project, name)
        openai_server.plan("429", "429", marker=f"({name})")

    result = run_cli(
        *run_args(openai_server.base_url),
        "-c",
        "8",
        "--backoff",
        "0.01",
    )

    assert result.exit_code == 0, result.output
    (run_dir,) = (project / "runs").iterdir()
    records = list(read_records(run_dir).values())
    assert sorted(r["id"] for r in records) == names
    assert all(r["status"] == "ok" and r["attempts"] == 3 for r in records)
    assert openai_server.statuses[429] == 60 and openai_server.statuses[200] == 30
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == names
