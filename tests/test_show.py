"""Answers in the terminal: `runner show` and `runner run` after a small run
(runner/results/show.py)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import write_spec

TRIAGE_SCHEMA = {
    "type": "object",
    "properties": {
        "team": {"type": "string", "enum": ["billing", "platform", "docs"]},
        "summary": {"type": "string"},
    },
    "required": ["team", "summary"],
    "additionalProperties": False,
}


def write_triage(project: Path) -> None:
    """A structured-output spec with two cases, each expecting a team."""
    spec = {
        "version": 1,
        "name": "triage",
        "model": "openai/gpt-oss-120b",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "triage", "strict": True, "schema": TRIAGE_SCHEMA},
        },
        "cases": [
            {"id": "refund", "ticket": "Please refund me.", "team": "billing"},
            {"id": "outage", "ticket": "Nothing loads.", "team": "platform"},
        ],
        "expect": [{"equals": "{{ team }}", "path": "team"}, {"regex": "\\S", "path": "summary"}],
        "messages": [{"role": "user", "content": "Route this ticket: {{ ticket }}"}],
    }
    (project / "specs").mkdir(exist_ok=True)
    (project / "specs" / "triage.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def write_tools(project: Path) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    write_spec(project, "weather", "Weather in Lisbon?", tools=[tool])


def headings(out: str) -> list[str]:
    """The first line of each record shown (the answers below it are indented)."""
    return [line for line in out.splitlines() if line and not line.startswith(" ")]


def offline_run(run_cli, *extra: str) -> Path:
    result = run_cli("run", "specs", "--provider", "offline", "--json", *extra)
    return Path(json.loads(result.stdout)["run_dir"])


def test_show_prints_text_json_tool_calls_and_failed_checks(project, run_cli):
    write_spec(project, "hello", "Say hello.")
    write_triage(project)
    write_tools(project)
    run_dir = offline_run(run_cli)

    result = run_cli("show", run_dir)

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "hello  [ok, offline]\n  [offline] Say hello.\n" in out
    assert '  {\n    "team": ' in out  # structured output, indented JSON
    assert '  calls get_weather {"city": ' in out
    # One case of the two expects another team than the one answered.
    assert out.count("FAIL equals team: expected ") >= 1
    assert "3 of 4 records shown" not in out and "4 of 4 records shown" in result.stderr


def test_show_failed_id_and_limit(project, run_cli):
    write_spec(project, "hello", "Say hello.")
    write_triage(project)
    run_dir = offline_run(run_cli)
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    failing = [
        r["id"] for r in records if r.get("expectations") and not r["expectations"]["passed"]
    ]

    failed = run_cli("show", run_dir, "--failed")
    assert failed.exit_code == 0
    assert [line.split()[0] for line in headings(failed.stdout)] == failing

    by_case = run_cli("show", "--id", "outage")  # the latest run by default; a case id
    assert by_case.stdout.splitlines()[0].startswith("triage/outage  [")

    limited = run_cli("show", "--limit", "1")
    assert headings(limited.stdout) == ["hello  [ok, offline]"]
    assert "the first 1 record shown" in limited.stderr


def test_show_streams_from_the_first_record_of_a_run_still_going(project, run_cli):
    write_spec(project, "hello", "Say hello.")
    run_dir = offline_run(run_cli)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest.pop("results", None)  # as while a run goes: lines in completion order
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    result = run_cli("show", "latest")
    assert result.stdout.startswith("hello  [ok, offline]")


def _run_on_a_terminal(project: Path, *args: str) -> str:
    """``runner ARGS`` with stdout and stderr on a pseudo-terminal; what the terminal received."""
    main, child = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "RUNNER_OUT": str(project / "runs")}
    with subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=project,
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
        env=env,
    ) as process:
        os.close(child)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def test_a_small_run_on_a_terminal_shows_its_answers(project):
    write_triage(project)
    out = _run_on_a_terminal(project, "run", "specs", "--provider", "offline")
    assert "triage/refund  [ok, " in out and "triage/outage  [ok, " in out
    assert '"team": ' in out


def test_no_show_and_quiet_show_nothing(project):
    write_triage(project)
    for flag in ("--no-show", "--quiet"):
        out = _run_on_a_terminal(project, "run", "specs", "--provider", "offline", flag)
        assert "triage/refund  [" not in out


def test_off_a_terminal_answers_are_shown_only_when_asked(project, run_cli):
    write_triage(project)
    plain = run_cli("run", "specs", "--provider", "offline")
    assert "triage/refund  [" not in plain.stdout
    shown = run_cli("run", "specs", "--provider", "offline", "--show")
    assert "triage/refund  [" in shown.stdout


@pytest.mark.no_render_audit
def test_a_run_of_more_than_20_records_is_not_shown_on_a_terminal(project):
    cases = [{"id": f"c{i}", "x": str(i)} for i in range(21)]
    write_spec(project, "many", "Say {{ x }}.", cases=cases)
    out = _run_on_a_terminal(project, "run", "specs", "--provider", "offline")
    assert "many/c0  [" not in out
    assert "runner show" in out  # the summary says how to see them


def test_control_characters_of_an_answer_do_not_reach_the_terminal(tmp_path, run_cli):
    """A run folder may come from anyone: an answer holding escape sequences must not clear
    the screen or retitle the window of whoever reads it."""
    from runner.runs.store import RunStore

    store = RunStore.create(tmp_path / "runs")
    store.write_manifest({"run_id": store.run_id, "status": "complete"})
    hostile = "before\x1b[2J\x1b]0;owned\x07after\r\x9b"
    store.save_record({"id": "evil\x1b[31m", "status": "ok", "output": {"content": hostile}})
    store.finish_results(["evil\x1b[31m"])

    result = run_cli("show", store.root)

    assert result.exit_code == 0
    assert not any(ch in result.stdout for ch in "\x1b\x07\r\x9b")
    assert "before\\x1b[2J\\x1b]0;owned\\x07after\\x0d\\x9b" in result.stdout
    assert result.stdout.startswith("evil\\x1b[31m  [ok]")


def test_fields_of_the_wrong_type_are_shown_without_a_traceback(tmp_path, run_cli):
    from runner.runs.store import RunStore

    store = RunStore.create(tmp_path / "runs")
    store.write_manifest({"run_id": store.run_id, "status": "complete"})
    odd = {"content": "text", "errors": "boom", "tool_calls": "call", "parsed": None}
    store.save_record(
        {
            "id": "odd",
            "status": "invalid_output",
            "output": odd,
            "expectations": {"passed": False, "checks": "x"},
            "error": "nope",
        }
    )
    store.finish_results(["odd"])

    result = run_cli("show", store.root)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:2] == ["odd  [invalid_output, checks failed]", "  text"]
    assert "invalid output: b" not in result.stdout
