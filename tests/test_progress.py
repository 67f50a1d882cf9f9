"""What a run shows while it goes (runner/progress.py) and the failures summary at its end."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time

from helpers import KEY, KEY_ENV, run_args, write_spec
from provider_limits import ProviderLimits

MODEL = "openai/gpt-oss-120b"
WAIT_LINE = re.compile(
    rf"waiting \d+(\.\d)? s for the requests-per-minute limit of {re.escape(MODEL)}"
)


def slow_budget_specs(project, openai_server, count: int = 8) -> None:
    """COUNT specs against a budget of 4 requests per 1.2 s: the run waits over a second."""
    for i in range(count):
        write_spec(project, f"s{i:02}")
    openai_server.provider_limits = ProviderLimits(rpm=(4, 1.2))


def test_without_a_terminal_a_line_every_few_seconds_says_how_far_the_run_is(
    project, openai_server, run_cli, monkeypatch
):
    slow_budget_specs(project, openai_server)
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv("RUNNER_PROGRESS_EVERY", "0.2")

    result = run_cli(*run_args(openai_server.base_url), "-c", "4")

    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("progress: ")]
    assert len(lines) >= 2, result.stderr
    assert any(WAIT_LINE.search(line) for line in lines), lines
    assert any(
        re.search(r"\d/8 \(\d+%\), [\d.]+/s, ETA [^;]+; \d ok, 0 failed, 0 invalid", line)
        for line in lines
    ), lines
    assert lines[-1].startswith("progress: 8/8 (100%)")

    quiet = run_cli(*run_args(openai_server.base_url), "-c", "4", "--quiet", "--no-cache")

    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_on_a_terminal_the_bar_shows_counts_and_the_wait(project, openai_server):
    slow_budget_specs(project, openai_server)
    command = [sys.executable, "-m", "runner", *run_args(openai_server.base_url), "-c", "4"]
    env = {**os.environ, KEY_ENV: KEY, "COLUMNS": "200"}
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        command, cwd=project, env=env, stderr=terminal, stdout=subprocess.DEVNULL
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the run ended and closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)

    assert process.wait(timeout=30) == 0
    text = shown.decode()
    assert "\r" in text and "[####################]  8/8 (100%)" in text
    assert WAIT_LINE.search(text), text
    assert "8 ok, 0 failed, 0 invalid" in text
    assert "progress: " not in text  # the bar, not the log lines


def test_failures_are_grouped_by_cause(project, openai_server, run_cli, monkeypatch):
    for i in range(15):
        write_spec(project, f"s{i:02}")
    openai_server.plan(*["multiline_400"] * 15)
    monkeypatch.setenv(KEY_ENV, KEY)

    result = run_cli(*run_args(openai_server.base_url))

    assert result.exit_code == 1
    stderr = result.stderr
    assert "failures by cause:" in stderr
    assert stderr.count("HTTP 400") == 1, stderr
    # The provider's message spans three lines; the summary shows it on one, with the path of
    # the example's spec (never a placeholder).
    found = re.search(
        r"  15 x the provider rejected the request from (specs/s\d\d\.yaml) \(HTTP 400\): "
        r"Invalid request: - messages\.0\.content: too long - temperature: > 2\n"
        r"      e\.g\. (specs/s\d\d\.yaml) \(record s\d\d\)\n",
        stderr,
    )
    assert found and found[1] == found[2], stderr
    assert "<spec>" not in stderr


def test_a_missing_key_is_named_once(project, openai_server, run_cli):
    for i in range(15):
        write_spec(project, f"s{i:02}")
    openai_server.api_key = KEY

    result = run_cli("run", "specs", "--base-url", openai_server.base_url, "--out", "runs")

    assert result.exit_code == 1
    assert result.stderr.count("HTTP 401") == 1, result.stderr
    assert "the provider refused the request without an API key (HTTP 401" in result.stderr
    assert "--api-key-env NAME" in result.stderr and "api_key_env" in result.stderr
    assert openai_server.count <= 5  # every request would fail alike: the rest wait unsent


def test_a_run_whose_requests_fail_and_are_retried_is_not_silent(
    project, openai_server, run_cli, monkeypatch
):
    """Before any record is saved, each attempt sent again shows in the progress lines."""
    write_spec(project, "alpha")
    openai_server.plan("529", "529", "529")
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv("RUNNER_PROGRESS_EVERY", "0")

    result = run_cli(*run_args(openai_server.base_url), "--backoff", "0.01")

    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("progress: ")]
    assert lines[0].startswith("progress: 0/1 (0%)")
    assert lines[0].endswith("; 1 attempt sent again, the last after HTTP 529"), lines
    assert "0/1 (0%)" in lines[2] and "3 attempts sent again" in lines[2], lines


def test_off_a_terminal_a_line_comes_even_when_nothing_happens():
    """A heartbeat: with every request stuck, lines still come, each saying how far it is."""
    import io

    from runner.runs.progress import RunProgress

    shown = io.StringIO()
    progress = RunProgress(shown, terminal=False, every=0.05)
    progress.start(3)
    deadline = time.monotonic() + 10
    while shown.getvalue().count("\n") < 2:
        assert time.monotonic() < deadline, "no heartbeat"
        time.sleep(0.01)
    progress.close()
    lines = shown.getvalue().splitlines()
    assert all(line.startswith("progress: 0/3 (0%), 0.0/s; 0 ok") for line in lines), lines


def test_different_causes_are_counted_apart(project, openai_server, run_cli, monkeypatch):
    for i in range(6):
        write_spec(project, f"s{i:02}")
    for i in (0, 1, 2):
        openai_server.plan("400", marker=f"(s{i:02})")
    openai_server.plan("404", marker="(s05)")
    monkeypatch.setenv(KEY_ENV, KEY)

    result = run_cli(*run_args(openai_server.base_url), "--json")

    groups = {g["cause"]: g for g in json.loads(result.stdout)["failures"]}
    assert sorted(g["count"] for g in groups.values()) == [1, 3]
    rejected = next(g for cause, g in groups.items() if "HTTP 400" in cause)
    assert rejected["count"] == 3 and "<spec>" not in rejected["cause"]
    assert f"from {rejected['example']['spec']} (HTTP 400)" in rejected["cause"]
    assert rejected["example"]["spec"] == f"specs/{rejected['example']['record']}.yaml"


def test_on_a_narrow_terminal_the_bar_line_fits_and_so_redraws_in_place():
    """A line wider than the terminal wraps, and each redraw of a wrapped line scrolls the
    screen instead of overwriting the line: the text is cut to the terminal's width."""
    script = (
        "from runner.runs.progress import RunProgress\n"
        "from runner.send.ratelimit import Wait\n"
        "p = RunProgress()\n"
        "p.start(10)\n"
        "p.waiting(Wait('tokens-per-minute', 'qwen/qwen3.8-27b', 12))\n"
        "p({'status': 'ok'}, 1, 10)\n"
        "p.close()\n"
    )
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        env={**os.environ, "COLUMNS": "80"},
        stderr=terminal,
        stdout=subprocess.DEVNULL,
    )
    os.close(terminal)
    shown = b""
    while chunk := _read(controller):
        shown += chunk
    os.close(controller)

    assert process.wait(timeout=30) == 0
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode())  # cursor hide and show
    drawn = [line for line in re.split(r"[\r\n]", plain) if line.strip()]
    assert any("waiting 12 s" in line for line in drawn), drawn
    assert max(len(line.rstrip()) for line in drawn) < 80, drawn


def _read(controller: int) -> bytes:
    try:
        return os.read(controller, 65536)
    except OSError:  # the child ended and closed the terminal
        return b""
