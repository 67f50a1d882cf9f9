"""`runner run` end to end: the real CLI against a real local OpenAI-compatible server."""

from __future__ import annotations

import json

import pytest
from helpers import (
    KEY,
    KEY_ENV,
    POSIX_SIGNALS,
    SENTIMENT,
    WEATHER_TOOL,
    latest_run,
    read_records,
    run_args,
    write_spec,
)


@pytest.fixture
def run_against(run_cli, openai_server, project, monkeypatch):
    """Run the CLI on ``specs/`` against the local server; returns (result, records by id)."""
    monkeypatch.setenv(KEY_ENV, KEY)

    def run(*extra: str, paths: tuple[str, ...] = ("specs",)):
        result = run_cli(
            *run_args(openai_server.base_url, paths),
            "--backoff",
            "0.01",
            *extra,
        )
        return result, read_records(latest_run(project))

    return run


# ---- success


def test_one_request_per_spec_with_everything_needed_to_reproduce_it(
    project, openai_server, run_against
):
    write_spec(project, "alpha", temperature=0.2, seed=7)
    write_spec(project, "beta")

    result, records = run_against()

    assert result.exit_code == 0, result.stderr
    assert openai_server.count == 2
    assert set(records) == {"alpha", "beta"}
    alpha = records["alpha"]
    assert alpha["status"] == "ok"
    assert alpha["http_status"] == 200 and alpha["attempts"] == 1
    assert alpha["spec"]["path"] == "specs/alpha.yaml" and len(alpha["spec"]["sha256"]) == 64
    assert alpha["request"] == openai_server.bodies_containing("(alpha)")[0]
    assert alpha["request"]["seed"] == 7 and alpha["request"]["temperature"] == 0.2
    assert alpha["response"]["object"] == "chat.completion"
    assert alpha["output"]["content"] and alpha["output"]["finish_reason"] == "stop"
    assert alpha["usage"]["total_tokens"] > 0
    assert alpha["provider"] == {
        "name": "custom",
        "base_url": openai_server.base_url,
        "api_key_env": KEY_ENV,
    }
    assert "2 ok, 0 failed, 0 invalid output" in result.stderr


def test_requests_carry_the_key_and_a_json_body(project, openai_server, run_against):
    write_spec(project, "alpha")

    run_against()

    (received,) = openai_server.received
    assert received.path == "/v1/chat/completions"
    assert received.headers["authorization"] == f"Bearer {KEY}"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["user-agent"].startswith("runner/")


def test_results_jsonl_and_manifest_describe_the_run(project, run_against):
    for name in ("a", "b", "c"):
        write_spec(project, name)

    run_against()

    run_dir = latest_run(project)
    lines = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == ["a", "b", "c"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["counts"] == {
        "total": 3,
        "ok": 3,
        "failed": 0,
        "invalid_output": 0,
        "not_sent": 0,
        "expectations": {"records": 0, "passed": 0, "failed": 0},
        # a local server: no catalogue prices its answers
        "cost": {"usd": 0, "by_model": {}, "unpriced": 3},
    }
    assert [s["path"] for s in manifest["specs"]] == [f"specs/{n}.yaml" for n in "abc"]
    assert manifest["runner_version"] and manifest["python"]


def test_json_summary_on_stdout(project, run_against):
    write_spec(project, "alpha")

    result, _ = run_against("--json")

    summary = json.loads(result.stdout)
    assert summary["ok"] == 1 and summary["total"] == 1 and summary["succeeded"] is True


def test_an_invalid_spec_sends_nothing(project, openai_server, run_against):
    write_spec(project, "good")
    write_spec(project, "bad", temprature=0.5)

    result, records = run_against()

    assert result.exit_code == 1
    assert "specs/bad.yaml:7:1" in result.stderr and "temperature" in result.stderr
    assert openai_server.count == 0 and records == {}


def test_a_missing_key_is_a_usage_error_before_anything_is_sent(
    project, run_cli, openai_server, monkeypatch
):
    write_spec(project, "alpha")
    monkeypatch.delenv("NOT_SET_KEY", raising=False)

    result = run_cli(
        "run", "specs", "--base-url", openai_server.base_url, "--api-key-env", "NOT_SET_KEY"
    )

    assert result.exit_code == 2
    assert "NOT_SET_KEY is not set" in result.stderr
    assert "Traceback" not in result.output
    assert openai_server.count == 0


# ---- retries


@pytest.mark.parametrize(
    "fault", ["429", "500", "502", "503", "529", "520", "reset", "html_error", "text_500"]
)
def test_a_passing_fault_is_retried(project, openai_server, run_against, fault):
    write_spec(project, "alpha")
    openai_server.plan(fault, fault)

    result, records = run_against()

    assert result.exit_code == 0, result.stderr
    assert records["alpha"]["status"] == "ok"
    assert records["alpha"]["attempts"] == 3
    assert openai_server.count == 3


def test_retries_stop_at_the_limit_and_the_failure_is_saved(project, openai_server, run_against):
    write_spec(project, "alpha")
    openai_server.plan(*["503"] * 10)

    result, records = run_against("--retries", "2")

    assert result.exit_code == 1
    assert openai_server.count == 3
    record = records["alpha"]
    assert record["status"] == "failed" and record["http_status"] == 503
    assert record["attempts"] == 3
    assert "HTTP 503" in record["error"]["message"]
    assert "runner run --resume" in result.stderr


@pytest.mark.parametrize("status", ["501", "505"])
def test_the_5xx_that_never_pass_are_not_retried(project, openai_server, run_against, status):
    write_spec(project, "alpha")
    openai_server.plan(status, "ok")

    result, records = run_against()

    assert result.exit_code == 1 and openai_server.count == 1
    assert records["alpha"]["http_status"] == int(status)


def test_a_text_500_body_is_kept_in_the_error(project, openai_server, run_against):
    write_spec(project, "alpha")
    openai_server.plan(*["text_500"] * 3)

    result, records = run_against("--retries", "2")

    assert result.exit_code == 1
    error = records["alpha"]["error"]["message"]
    assert error == (
        "the provider failed (HTTP 500) after every retry: upstream connect error or "
        "disconnect/reset before headers. reset: overflow"
    )


def test_an_html_error_page_is_named_by_its_title(project, openai_server, run_against):
    write_spec(project, "alpha")
    openai_server.plan(*["html_error"] * 3)

    _, records = run_against("--retries", "2")

    assert records["alpha"]["error"]["message"].endswith("after every retry: 502 Bad Gateway")


def test_429_waits_as_long_as_retry_after_ms_says(project, openai_server, run_against):
    write_spec(project, "alpha")
    openai_server.retry_after_ms = 300
    openai_server.plan("429")

    result, records = run_against()

    assert result.exit_code == 0
    first, second = openai_server.received
    assert second.at - first.at >= 0.3
    assert records["alpha"]["attempts"] == 2


@pytest.mark.parametrize("status", ["400", "401", "403", "404", "422"])
def test_request_errors_are_never_retried(project, openai_server, run_against, status):
    write_spec(project, "alpha")
    openai_server.plan(status, "ok")

    result, records = run_against()

    assert result.exit_code == 1
    assert openai_server.count == 1
    assert records["alpha"]["http_status"] == int(status)
    assert records["alpha"]["attempts"] == 1


def test_401_names_the_key_variable(project, openai_server, run_against):
    write_spec(project, "alpha")
    openai_server.api_key = "another-key"

    result, records = run_against()

    message = records["alpha"]["error"]["message"]
    assert f"check {KEY_ENV}" in message and "HTTP 401" in message
    assert message in result.stderr


def test_404_names_the_model_and_the_provider_message(project, openai_server, run_against):
    write_spec(project, "alpha")
    openai_server.plan("404")

    _, records = run_against()

    message = records["alpha"]["error"]["message"]
    assert "unknown model 'openai/gpt-oss-120b'" in message
    assert "does not exist" in message


def test_400_gives_the_provider_message_and_the_spec_path(project, openai_server, run_against):
    write_spec(project, "alpha")
    openai_server.plan("400")

    _, records = run_against()

    message = records["alpha"]["error"]["message"]
    assert "specs/alpha.yaml" in message and "must contain at least one message" in message


def test_a_slow_answer_times_out_then_the_retry_succeeds(project, openai_server, run_against):
    write_spec(project, "alpha")
    openai_server.slow_seconds = 2.0
    openai_server.plan("slow")
    # The timed-out answer is written after runner hung up: a broken pipe nobody should print
    # (it would land in the output of whichever test runs then).
    openai_server.handle_error = lambda request, client_address: None

    result, records = run_against("--timeout", "0.3")

    assert result.exit_code == 0, result.stderr
    assert records["alpha"]["attempts"] == 2


def test_an_answer_that_never_comes_fails_with_the_timeout_named(
    project, openai_server, run_against
):
    write_spec(project, "alpha")
    openai_server.slow_seconds = 1.0
    openai_server.plan("slow", "slow")
    openai_server.handle_error = lambda request, client_address: None  # as above

    result, records = run_against("--timeout", "0.2", "--retries", "1")

    assert result.exit_code == 1
    record = records["alpha"]
    assert record["status"] == "failed" and record["http_status"] is None
    assert "--timeout" in record["error"]["message"] and record["error"]["limit"] == "--timeout"
    assert record["attempts"] == 2


def test_connection_refused_is_explained(project, run_cli, monkeypatch):
    write_spec(project, "alpha")
    monkeypatch.setenv(KEY_ENV, KEY)

    result = run_cli(
        "run",
        "specs",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--api-key-env",
        KEY_ENV,
        "--retries",
        "0",
        "--out",
        "runs",
    )

    assert result.exit_code == 1
    assert "connection refused" in read_records(latest_run(project))["alpha"]["error"]["message"]


# ---- malformed answers


@pytest.mark.parametrize(
    ("fault", "kind", "words"),
    [
        ("truncated_json", "malformed", "not JSON"),
        ("wrong_content_type", "malformed", "text/plain"),
        ("error_200", "provider", "had an error"),
        ("missing_choices", "malformed", "choices"),
    ],
)
def test_malformed_answers_are_saved_as_failures(
    project, openai_server, run_against, fault, kind, words
):
    write_spec(project, "alpha")
    openai_server.plan(fault)

    result, records = run_against()

    assert result.exit_code == 1
    record = records["alpha"]
    assert record["status"] == "failed"
    assert record["error"]["kind"] == kind
    assert words in record["error"]["message"]
    assert "Traceback" not in result.output


def test_a_large_answer_is_saved_whole(project, openai_server, run_against):
    write_spec(project, "alpha")
    openai_server.large_bytes = 3_000_000
    openai_server.plan("large")

    result, records = run_against()

    assert result.exit_code == 0
    assert len(records["alpha"]["output"]["content"]) == 3_000_000


# ---- structured output and tools


def test_structured_output_is_parsed_and_validated(project, openai_server, run_against):
    write_spec(project, "good", response_format=SENTIMENT)
    write_spec(project, "bad", response_format=SENTIMENT)
    write_spec(project, "prose", response_format=SENTIMENT)
    openai_server.plan(
        'reply:{"content": "{\\"label\\": \\"meh\\", \\"score\\": 2}"}', marker="(bad)"
    )
    openai_server.plan('reply:{"content": "I think it is positive."}', marker="(prose)")

    result, records = run_against()

    assert result.exit_code == 1
    good = records["good"]
    assert good["status"] == "ok" and good["output"]["valid"] is True
    assert set(good["output"]["parsed"]) == {"label", "score"}
    bad = records["bad"]
    assert bad["status"] == "invalid_output"
    assert bad["output"]["parsed"] == {"label": "meh", "score": 2}
    assert any("'meh' is not one of" in e for e in bad["output"]["errors"])
    assert any("2 is greater than the maximum of 1" in e for e in bad["output"]["errors"])
    prose = records["prose"]
    assert prose["status"] == "invalid_output"
    assert any("not valid JSON" in e for e in prose["output"]["errors"])
    assert "1 invalid output" not in result.stderr and "2 invalid output" in result.stderr


def test_json_mode_needs_an_object(project, openai_server, run_against):
    write_spec(
        project,
        "alpha",
        response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Reply in JSON (alpha)."}],
    )
    openai_server.plan('reply:{"content": "[1, 2]"}')

    _, records = run_against()

    assert records["alpha"]["status"] == "invalid_output"


def tool_reply(name: str, arguments: str) -> str:
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
    return "reply:" + json.dumps({"tool_calls": [call]})


def test_tool_arguments_are_parsed_and_validated(project, openai_server, run_against):
    for name in ("good", "wrong-args", "bad-json", "unknown-tool"):
        write_spec(project, name, tools=[WEATHER_TOOL], tool_choice="auto")
    openai_server.plan(
        tool_reply("get_weather", '{"city": "Oslo", "unit": "k"}'), marker="(wrong-args)"
    )
    openai_server.plan(tool_reply("get_weather", '{"city": "Os'), marker="(bad-json)")
    openai_server.plan(tool_reply("get_time", "{}"), marker="(unknown-tool)")

    _, records = run_against()

    good = records["good"]
    assert good["status"] == "ok"
    (call,) = good["output"]["tool_calls"]
    assert call["name"] == "get_weather" and isinstance(call["arguments"]["city"], str)
    wrong = records["wrong-args"]["output"]["tool_calls"][0]
    assert wrong["valid"] is False and any("'k' is not one of" in e for e in wrong["errors"])
    assert records["wrong-args"]["status"] == "invalid_output"
    assert records["bad-json"]["status"] == "invalid_output"
    assert records["unknown-tool"]["status"] == "invalid_output"
    unknown = records["unknown-tool"]["output"]["tool_calls"][0]
    assert any("get_time" in e for e in unknown["errors"])


def test_length_finish_is_flagged_as_truncated(project, openai_server, run_against):
    write_spec(project, "alpha")
    openai_server.plan('reply:{"content": "Once upon a", "finish_reason": "length"}')

    _, records = run_against()

    assert records["alpha"]["output"]["truncated"] is True


# ---- rate limits


def test_the_rpm_limit_paces_requests(project, openai_server, run_against):
    """End to end, --rpm reaches the limiter and every request goes once; the spacing itself
    is checked on the limiter's own schedule (test_lifecycle.py), not on wall-clock arrival
    times, which a busy machine stretches and squeezes (issue 27.13)."""
    for i in range(4):
        write_spec(project, f"s{i}")

    result, records = run_against("--rpm", "600", "-c", "4")

    assert result.exit_code == 0, result.stderr
    assert sorted(records) == ["s0", "s1", "s2", "s3"] and openai_server.count == 4
    settings = json.loads((latest_run(project) / "manifest.json").read_text())["settings"]
    assert settings["rpm"] == 600


def test_a_server_budget_is_respected_without_failures(project, openai_server, run_against):
    for i in range(12):
        write_spec(project, f"s{i:02}")
    openai_server.limit_rate(4, 0.5)

    # Six workers race for four slots each window, with no retries at all: a 429 sends the
    # request back to the limiter, where the oldest request goes first.
    result, records = run_against("-c", "6", "--retries", "0")

    assert result.exit_code == 0, result.stderr
    assert all(r["status"] == "ok" for r in records.values()) and len(records) == 12
    assert openai_server.statuses[200] == 12


# ---- secrets


def test_the_key_is_in_no_file_of_the_run(project, openai_server, run_against):
    write_spec(project, "alpha")
    write_spec(project, "failing")
    openai_server.plan("401", marker="(failing)")

    result, _ = run_against("--json")

    assert KEY not in result.output
    files = [p for p in latest_run(project).rglob("*") if p.is_file()]
    assert sorted(p.name for p in files) == ["manifest.json", "results.jsonl"]
    for path in files:
        assert KEY not in path.read_text(errors="replace"), path


def test_a_redirect_is_not_followed(project, openai_server, run_against):
    from openai_server import FakeOpenAI

    other = FakeOpenAI().start()
    try:
        write_spec(project, "alpha")
        target = f"http://localhost:{other.port}/v1/chat/completions"
        openai_server.plan(f"redirect:{target}")

        result, records = run_against()

        assert other.count == 0 and openai_server.count == 1
        assert result.exit_code == 1
        message = records["alpha"]["error"]["message"]
        assert "HTTP 307" in message and target in message and "--base-url" in message
    finally:
        other.stop()


@POSIX_SIGNALS
def test_ctrl_c_when_every_request_is_handed_out_still_sends_no_more(project, openai_server):
    """Four requests, eight workers: all are handed out at once and three wait for --rpm when
    Ctrl-C comes. They give up: nothing is sent that is not saved, and the rest can resume."""
    import os
    import signal
    import subprocess
    import sys
    import time

    for i in range(4):
        write_spec(project, f"s{i}")
    command = [sys.executable, "-m", "runner", *run_args(openai_server.base_url), "--rpm", "6"]
    env = {**os.environ, KEY_ENV: KEY}
    process = subprocess.Popen(command, cwd=project, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while openai_server.count < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    saved = read_records(latest_run(project))
    assert len(saved) == openai_server.count < 4, stderr


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("reset", "closed the connection before answering"),
        ("drop_mid_body", "cut off"),
    ],
)
def test_dropped_connections_are_explained_in_a_sentence(
    project, openai_server, run_against, fault, words
):
    write_spec(project, "alpha")
    openai_server.plan(fault, fault)

    result, records = run_against("--retries", "1")

    assert result.exit_code == 1
    message = records["alpha"]["error"]["message"]
    assert words in message, message
    assert "Error(" not in message


@POSIX_SIGNALS
@pytest.mark.parametrize(
    ("name", "code", "words"), [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "terminated")]
)
def test_ctrl_c_saves_what_was_answered_and_says_how_to_resume(
    project, openai_server, name, code, words
):
    """Ctrl-C, and SIGTERM (timeout, a cancelled CI job, docker stop), alike."""
    import os
    import signal
    import subprocess
    import sys
    import time

    for i in range(40):
        write_spec(project, f"s{i:02}")
    openai_server.latency = 0.05
    command = [sys.executable, "-m", "runner", *run_args(openai_server.base_url), "-c", "2"]
    env = {**os.environ, KEY_ENV: KEY}
    process = subprocess.Popen(command, cwd=project, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while openai_server.count < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(getattr(signal, name))
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == code, stderr
    assert "Traceback" not in stderr and words in stderr
    run_dir = latest_run(project)
    assert f"runner run --resume {run_dir.relative_to(project)}" in stderr
    saved = read_records(run_dir)
    assert 0 < len(saved) < 40
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "incomplete"
    assert manifest["counts"]["not_sent"] == 40 - len(saved)
    assert manifest["stopped"] == {
        "reason": "interrupted",
        "signal": name,
        "message": f"{name} received",
    }

    resumed = subprocess.run(
        [sys.executable, "-m", "runner", "run", "--resume", str(run_dir)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert resumed.returncode == 0, resumed.stderr
    assert len(read_records(run_dir)) == 40
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["not_sent"] == 0
    assert "stopped" not in manifest
