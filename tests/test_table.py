"""The table export: `runner export --format csv|jsonl`, one flat row per record."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import KEY, KEY_ENV, SENTIMENT, WEATHER_TOOL, latest_run, run_args, write_spec

from runner.results.table import expectation_columns, order_columns, record_row

HARD_TEXT = 'Zoë said "hi, there",\nthen left: 日本語 — ok\r\nend'


@pytest.fixture
def server_run(project, openai_server, run_cli, monkeypatch):
    """A test-server run of four specs: plain text with a hard answer, JSON, tools, a matrix."""
    monkeypatch.setenv(KEY_ENV, KEY)
    write_spec(project, "hard", "Say something hard (hard).", vars={"who": 'Zoë, "the" tester'})
    write_spec(project, "json", "Answer in JSON (json).", response_format=SENTIMENT)
    write_spec(project, "tools", tools=[WEATHER_TOOL], tool_choice="auto")
    write_spec(
        project,
        "grid",
        "Pick one ({{ topic }}).",
        matrix={"model": ["m-small", "m-large"], "temperature": [0, 1]},
        cases=[{"id": "a", "topic": "cats"}, {"id": "b", "topic": "dogs"}],
    )
    openai_server.plan("reply:" + json.dumps({"content": HARD_TEXT}), marker="(hard)")
    result = run_cli(*run_args(openai_server.base_url), "--quiet")
    assert result.exit_code == 0, result.stderr
    return latest_run(project)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_csv_has_one_row_per_record_and_keeps_hard_text_intact(server_run, run_cli, project):
    result = run_cli("export", server_run, "--format", "csv", "-o", "out/table.csv")
    assert result.exit_code == 0, result.stderr
    assert "11 rows" in result.stderr
    rows = {row["id"]: row for row in read_csv(project / "out" / "table.csv")}
    assert len(rows) == 11
    hard = rows["hard"]
    assert hard["text"] == HARD_TEXT
    assert hard["var.who"] == 'Zoë, "the" tester'
    assert hard["status"] == "ok"
    assert hard["json.label"] == ""  # a column of another spec stays empty here
    structured = rows["json"]
    assert structured["json.label"] in {"positive", "negative"}
    assert 0 <= float(structured["json.score"]) <= 1
    tools = rows["tools"]
    assert tools["tool.names"] == "get_weather"
    assert isinstance(json.loads(tools["tool.arguments"])[0]["city"], str)
    assert int(tools["total_tokens"]) == int(tools["prompt_tokens"]) + int(
        tools["completion_tokens"]
    )
    grid = [row for row in rows.values() if row["spec"] == "grid"]
    assert sorted((r["case"], r["matrix.model"], r["matrix.temperature"]) for r in grid) == [
        (case, model, temperature)
        for case in ("a", "b")
        for model in ("m-large", "m-small")
        for temperature in ("0", "1")
    ]
    assert all(r["model"] == r["matrix.model"] for r in grid)


def test_csv_header_puts_groups_in_reading_order(server_run, run_cli, project):
    run_cli("export", server_run, "--format", "csv", "-o", "table.csv")
    with open(project / "table.csv", encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    position = {name: i for i, name in enumerate(header)}
    assert header[:3] == ["id", "spec", "case"]
    assert position["var.who"] < position["matrix.model"] < position["model"]
    assert position["text"] < position["json.label"] < position["tool.names"]
    assert position["latency_ms"] < position["expect.passed"]


def test_jsonl_keeps_native_values(server_run, run_cli, project):
    result = run_cli("export", server_run, "--format", "jsonl", "-o", "table.jsonl")
    assert result.exit_code == 0, result.stderr
    lines = (project / "table.jsonl").read_text(encoding="utf-8").splitlines()
    rows = {row["id"]: row for row in map(json.loads, lines)}
    assert len(rows) == 11
    assert rows["hard"]["text"] == HARD_TEXT
    assert isinstance(rows["json"]["json.score"], (int, float))
    assert rows["tools"]["tool.arguments"][0]["city"]
    assert rows["hard"]["expect.passed"] is None


def test_cassette_stays_the_default_export(server_run, run_cli, project):
    result = run_cli("export", server_run, "-o", "cassette.jsonl")
    assert result.exit_code == 0, result.stderr
    first = json.loads((project / "cassette.jsonl").read_text().splitlines()[0])
    assert set(first) == {"id", "key", "request", "response"}


def test_the_format_comes_from_the_file_name(server_run, run_cli, project):
    """-o results.csv without --format once wrote an empty cassette and exited 0."""
    result = run_cli("export", server_run, "-o", "results.csv")
    assert result.exit_code == 0, result.stderr
    assert "(csv)" in result.stderr
    assert len(read_csv(project / "results.csv")) == 11


@pytest.mark.parametrize(("name", "guess"), [("results.xlsx", "csv"), ("rows.json", "jsonl")])
def test_a_name_that_says_no_format_is_refused_with_a_guess(server_run, run_cli, name, guess):
    result = run_cli("export", server_run, "-o", name)
    assert result.exit_code == 2
    assert f"did you mean --format {guess}?" in result.stderr
    assert not Path(name).exists()


def test_excel_csv_starts_with_the_byte_order_mark(server_run, run_cli, project):
    result = run_cli("export", server_run, "-o", "excel.csv", "--excel")
    assert result.exit_code == 0, result.stderr
    raw = (project / "excel.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfid,spec,case")
    assert "Zoë" in raw.decode("utf-8-sig")
    plain = run_cli("export", server_run, "-o", "plain.csv")
    assert plain.exit_code == 0 and (project / "plain.csv").read_bytes().startswith(b"id,")
    refused = run_cli("export", server_run, "-o", "rows.jsonl", "--format", "jsonl", "--excel")
    assert refused.exit_code == 2 and "--excel is for CSV" in refused.stderr


def test_the_offline_column_labels_made_up_answers(server_run, project, run_cli):
    write_spec(project, "alpha")
    ran = run_cli("run", "specs/alpha.yaml", "--provider", "offline", "--out", "runs", "--json")
    run_cli("export", json.loads(ran.stdout)["run_dir"], "-o", "offline.csv")
    run_cli("export", server_run, "-o", "server.csv")
    assert {row["offline"] for row in read_csv(project / "offline.csv")} == {"True"}
    assert {row["offline"] for row in read_csv(project / "server.csv")} == {"False"}


def test_export_of_a_folder_that_is_not_a_run_is_a_usage_error(project, run_cli):
    (project / "empty").mkdir()
    result = run_cli("export", "empty", "--format", "csv", "-o", "t.csv")
    assert result.exit_code == 2
    assert "is not a run directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_expectation_columns_follow_the_shared_shape():
    expectations = {
        "passed": False,
        "total": 2,
        "failed": 1,
        "checks": [
            {"check": "equals", "target": "label", "expected": "a", "actual": "a", "passed": True},
            {
                "check": "regex",
                "target": "text",
                "expected": "^x",
                "actual": "y",
                "passed": False,
                "message": "text does not match ^x",
            },
        ],
    }
    assert expectation_columns(expectations) == {
        "expect.passed": False,
        "expect.total": 2,
        "expect.failed": 1,
        "expect.failures": "text does not match ^x",
    }
    assert set(expectation_columns(None).values()) == {None}


def test_a_failed_record_has_its_error_and_no_answer():
    row = record_row(
        {
            "id": "x",
            "spec": {"name": "s"},
            "status": "failed",
            "error": {"kind": "http", "message": "the provider answered 500"},
            "stream": {"ttft_ms": 12.5},
        }
    )
    assert row["status"] == "failed"
    assert row["error"] == "the provider answered 500"
    assert row["text"] is None and row["model"] is None
    assert row["ttft_ms"] == 12.5


def test_order_columns_keeps_first_seen_order_within_groups():
    names = ["json.b", "id", "var.z", "status", "json.a", "var.a", "new_column", "spec"]
    assert order_columns(names) == [
        "id",
        "spec",
        "var.z",
        "var.a",
        "status",
        "json.b",
        "json.a",
        "new_column",
    ]


def test_an_invalid_tool_call_fills_the_errors_column_and_the_summary(
    project, openai_server, run_cli, monkeypatch
):
    monkeypatch.setenv(KEY_ENV, KEY)
    write_spec(project, "tools", tools=[WEATHER_TOOL], tool_choice="auto")
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather"}}
    call["function"]["arguments"] = json.dumps({"town": "Paris"})
    openai_server.plan("reply:" + json.dumps({"tool_calls": [call]}))

    result = run_cli(*run_args(openai_server.base_url))

    assert result.exit_code == 1
    reason = "tool call get_weather: at /: 'city' is a required property"
    assert f"1 x invalid output: {reason}" in result.stderr  # not "output is not valid"
    exported = run_cli("export", latest_run(project), "--format", "csv", "-o", "t.csv")
    assert exported.exit_code == 0, exported.stderr
    (row,) = read_csv(project / "t.csv")
    assert row["status"] == "invalid_output"
    assert reason in row["errors"]
    assert "Additional properties are not allowed ('town' was unexpected)" in row["errors"]


FORMULAS = [
    '=HYPERLINK("http://evil","x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1)",
    "\tx",
    "\rx",
]


@pytest.mark.parametrize("raw", [False, True])
def test_csv_cells_a_spreadsheet_would_run_as_formulas_start_with_a_quote(
    project, openai_server, run_cli, monkeypatch, raw
):
    """Issue 22.4: answers and case values went into CSV raw, so `=HYPERLINK(...)` ran as a
    formula where the file was opened. Numbers stay numbers; --raw-text writes text as is."""
    monkeypatch.setenv(KEY_ENV, KEY)
    write_spec(
        project,
        "inject",
        "Answer ({{ v }}) (inject).",
        cases=[{"id": f"c{i}", "v": text, "n": -5, "s": "-3.5"} for i, text in enumerate(FORMULAS)],
    )
    reply = "reply:" + json.dumps({"content": "=1+1"})
    openai_server.plan(*[reply] * len(FORMULAS), marker="(inject)")
    assert run_cli(*run_args(openai_server.base_url), "--quiet").exit_code == 0
    args = ["export", latest_run(project), "-o", "t.csv", *(["--raw-text"] if raw else [])]
    result = run_cli(*args)
    assert result.exit_code == 0, result.stderr
    rows = read_csv(project / "t.csv")
    assert sorted(row["var.v"] for row in rows) == sorted(
        text if raw else "'" + text for text in FORMULAS
    )
    assert {row["text"] for row in rows} == {"=1+1" if raw else "'=1+1"}
    assert {(row["var.n"], row["var.s"]) for row in rows} == {("-5", "-3.5")}
    refused = run_cli("export", latest_run(project), "-o", "c.jsonl", "--raw-text")
    assert refused.exit_code == 2 and "--raw-text is for CSV" in refused.stderr
